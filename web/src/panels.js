// The breakdown panels: which dimension and metrics each tab asks /v1/query for, rows as a table, CSV export.

import { query } from "./api.js";
import { DIMENSIONS, METRICS, dimensionLabel, dimensionValue, formatMetric, h } from "./format.js";

const NOT_PAGEVIEWS = { dimension: "event_name", op: "is_not", values: ["pageview"] };

export const PANELS = [
  {
    id: "pages",
    title: "Pages",
    tabs: [
      { key: "page", label: "Top pages", metrics: ["visitors", "pageviews"] },
      { key: "entry_page", label: "Entry", metrics: ["visitors", "bounce_rate"] },
      { key: "exit_page", label: "Exit", metrics: ["visitors", "sessions"] },
    ],
  },
  {
    id: "sources",
    title: "Sources",
    tabs: [
      { key: "source", label: "Sources", metrics: ["visitors", "bounce_rate"] },
      { key: "channel", label: "Channels", metrics: ["visitors", "bounce_rate"] },
      { key: "utm_medium", label: "Medium", metrics: ["visitors", "bounce_rate"] },
      { key: "utm_source", label: "UTM source", metrics: ["visitors", "bounce_rate"] },
      { key: "utm_campaign", label: "Campaign", metrics: ["visitors", "bounce_rate"] },
    ],
  },
  {
    id: "places",
    title: "Locations",
    tabs: [
      { key: "country", label: "Countries", metrics: ["visitors", "pageviews"] },
      { key: "region", label: "Regions", metrics: ["visitors", "pageviews"] },
      { key: "city", label: "Cities", metrics: ["visitors", "pageviews"] },
    ],
  },
  {
    id: "devices",
    title: "Devices",
    tabs: [
      { key: "device_type", label: "Devices", metrics: ["visitors", "pageviews"] },
      { key: "browser", label: "Browsers", metrics: ["visitors", "pageviews"] },
      { key: "os", label: "OS", metrics: ["visitors", "pageviews"] },
    ],
  },
  {
    id: "events",
    title: "Custom events",
    tabs: [
      { key: "event_name", label: "Events", metrics: ["visitors", "events"], extra: [NOT_PAGEVIEWS] },
      { key: "prop", label: "Properties", metrics: ["visitors", "events"], extra: [NOT_PAGEVIEWS] },
    ],
  },
];

export const ROWS_SHOWN = 9;

/** The query of one tab: `base` is site, range, zone and filters. */
export function tabQuery(base, tab, dimension, limit) {
  const filters = [base.filters, ...(tab.extra ?? [])].filter(Boolean);
  return {
    ...base,
    filters: filters.length > 1 ? { and: flatten(filters) } : filters[0],
    metrics: tab.metrics,
    dimensions: [dimension],
    limit,
  };
}

// The goal rule: goal conditions must sit directly under the top-level `and`.
const flatten = (exprs) => exprs.flatMap((e) => (e.and ? e.and : [e]));

/** Rows as a table whose first column filters by that value on click. */
export function rowsTable(dimension, metrics, rows, onPick) {
  const max = Math.max(...rows.map((r) => r.metrics[0]), 1);
  return h(
    "table",
    { class: "rows" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, dimensionLabel(dimension)),
        metrics.map((m) => h("th", { scope: "col", class: "num" }, METRICS[m] ?? m)),
      ),
    ),
    h(
      "tbody",
      {},
      rows.map((row) => {
        const value = row.dimensions[0];
        const shown = dimensionValue(dimension, value);
        const bar = h("span", { class: "bar", "aria-hidden": "true" });
        bar.style.width = `${(100 * row.metrics[0]) / max}%`;
        return h(
          "tr",
          { dataset: { value } },
          h(
            "td",
            { class: "label" },
            bar,
            onPick
              ? h("button", { class: "pick", type: "button", title: `Filter by ${dimensionLabel(dimension)}: ${shown}`, onclick: () => onPick(value) }, shown)
              : h("span", { class: "pick" }, shown),
          ),
          row.metrics.map((v, i) => h("td", { class: "num", dataset: { metric: metrics[i], value: String(v) } }, formatMetric(metrics[i], v))),
        );
      }),
    ),
  );
}

// CSV fields quoted when needed; a leading =+-@ is prefixed so spreadsheets never run it as a formula.
function csvField(value) {
  let s = String(value);
  if (/^[=+\-@]/.test(s)) s = `'${s}`;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** Every row of a tab (up to 10,000, following the pages) as a CSV download. */
export async function exportCsv(body, fileName) {
  const rows = [];
  let token = "";
  do {
    const page = await query({ ...body, limit: 1000, page_token: token || undefined });
    rows.push(...page.results);
    token = page.meta.next_page_token;
  } while (token && rows.length < 10000);
  const header = [...body.dimensions.map(dimensionLabel), ...body.metrics].map(csvField).join(",");
  const lines = rows.map((r) => [...r.dimensions, ...r.metrics].map(csvField).join(","));
  const blob = new Blob([[header, ...lines].join("\r\n") + "\r\n"], { type: "text/csv" });
  const link = h("a", { href: URL.createObjectURL(blob), download: fileName });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

export const KNOWN_DIMENSIONS = Object.keys(DIMENSIONS);
