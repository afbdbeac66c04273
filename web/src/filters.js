// The filter bar (a chip per filter) and the dialog that adds a filter on any dimension with any operator.

import { DIMENSIONS, dimensionLabel, dimensionValue, h } from "./format.js";
import { OPS } from "./state.js";

export function filterText(f) {
  const values = f.values.map((v) => dimensionValue(f.dimension, v)).join(" or ");
  return `${dimensionLabel(f.dimension)} ${OPS[f.op]} ${values}`;
}

/** The chips of the current filters; `onRemove(index)` drops one. */
export function chips(filters, onRemove) {
  return filters.map((f, i) => {
    const text = filterText(f);
    return h(
      "span",
      { class: "chip", dataset: { dimension: f.dimension } },
      h("span", {}, text),
      h("button", { type: "button", class: "chip-remove", "aria-label": `Remove filter: ${text}`, onclick: () => onRemove(i) }, "×"),
    );
  });
}

/** A modal dialog; resolves with the new filter, or null when cancelled. */
export function askFilter(hasGoals) {
  const dims = Object.keys(DIMENSIONS).filter((d) => d !== "goal" || hasGoals);
  const dimension = h("select", { id: "fd-dimension", name: "dimension" },
    dims.map((d) => h("option", { value: d }, DIMENSIONS[d])),
    h("option", { value: "prop:" }, "Custom property…"));
  const prop = h("input", { id: "fd-prop", name: "prop", maxlength: "200", autocomplete: "off" });
  const propRow = h("p", { class: "field", hidden: true }, h("label", { for: "fd-prop" }, "Property key"), prop);
  const op = h("select", { id: "fd-op", name: "op" }, Object.entries(OPS).map(([v, label]) => h("option", { value: v }, label)));
  const values = h("textarea", { id: "fd-values", name: "values", rows: "3", required: true, maxlength: "20000" });
  const insensitive = h("input", { id: "fd-case", type: "checkbox", name: "case" });
  const error = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    { method: "dialog" },
    h("h2", { id: "fd-title" }, "Add a filter"),
    h("p", { class: "field" }, h("label", { for: "fd-dimension" }, "Dimension"), dimension),
    propRow,
    h("p", { class: "field" }, h("label", { for: "fd-op" }, "Operator"), op),
    h("p", { class: "field" }, h("label", { for: "fd-values" }, "Values, one per line"), values),
    h("p", { class: "check" }, insensitive, h("label", { for: "fd-case" }, "Ignore case")),
    error,
    h("div", { class: "actions" },
      h("button", { type: "button", value: "cancel", class: "secondary", id: "fd-cancel" }, "Cancel"),
      h("button", { type: "submit", value: "add", id: "fd-add" }, "Add filter")),
  );
  const dialog = h("dialog", { "aria-labelledby": "fd-title", class: "filter-dialog" }, form);
  dimension.addEventListener("change", () => (propRow.hidden = dimension.value !== "prop:"));
  document.body.append(dialog);
  return new Promise((resolve) => {
    let result = null;
    form.querySelector("#fd-cancel").addEventListener("click", () => dialog.close());
    form.addEventListener("submit", (event) => {
      const list = values.value.split("\n").map((v) => v.trim()).filter(Boolean);
      const name = dimension.value === "prop:" ? `prop:${prop.value.trim()}` : dimension.value;
      const problem =
        name === "prop:" ? "Name the property." : list.length === 0 ? "Give at least one value." : list.length > 100 ? "At most 100 values." : "";
      if (problem) {
        event.preventDefault();
        error.textContent = problem;
        return;
      }
      result = { dimension: name, op: op.value, values: list };
      if (insensitive.checked) result.case_sensitive = false;
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(result);
    });
    dialog.showModal();
  });
}
