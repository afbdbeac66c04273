// The whole view lives in the URL's query string, so a link reproduces it (never the key: that is the fragment's).

const DEFAULTS = {
  site: "",
  range: "30d",
  from: "",
  to: "",
  cmp: "",
  metric: "visitors",
  pages: "page",
  sources: "source",
  places: "country",
  devices: "device_type",
  events: "event_name",
  prop: "",
  funnel: "",
};

export const OPS = {
  is: "is",
  is_not: "is not",
  contains: "contains",
  not_contains: "does not contain",
  starts_with: "starts with",
  matches: "matches",
  not_matches: "does not match",
};

function validFilter(f) {
  return (
    f &&
    typeof f.dimension === "string" &&
    f.op in OPS &&
    Array.isArray(f.values) &&
    f.values.every((v) => typeof v === "string")
  );
}

/** The view in the current URL, defaults filled in. */
export function read() {
  const params = new URLSearchParams(location.search);
  const state = { ...DEFAULTS, filters: [] };
  for (const name of Object.keys(DEFAULTS)) {
    if (params.has(name)) state[name] = params.get(name);
  }
  try {
    const filters = JSON.parse(params.get("f") ?? "[]");
    if (Array.isArray(filters)) state.filters = filters.filter(validFilter);
  } catch {
    // A hand-edited link: show the view without its filters.
  }
  return state;
}

/** Writes the view into the URL (only what differs from the defaults). */
export function write(state, { replace = false } = {}) {
  const params = new URLSearchParams();
  for (const [name, fallback] of Object.entries(DEFAULTS)) {
    if (state[name] && state[name] !== fallback) params.set(name, state[name]);
  }
  if (state.filters.length) params.set("f", JSON.stringify(state.filters));
  const search = params.toString();
  const url = `${location.pathname}${search ? "?" + search : ""}`;
  if (url !== `${location.pathname}${location.search}`) {
    history[replace ? "replaceState" : "pushState"](null, "", url);
  }
}

/** The query API's filter expression for the view's filters (and any extra conditions). */
export function filterExpression(filters, extra = []) {
  const all = [...filters, ...extra].map((f) => {
    const cond = { dimension: f.dimension, op: f.op, values: f.values };
    if (f.case_sensitive === false) cond.case_sensitive = false;
    return cond;
  });
  if (all.length === 0) return undefined;
  return all.length === 1 ? all[0] : { and: all };
}
