// The dashboard page: sign-in, controls, tiles, chart, panels, goals, funnels and live, all from the public JSON API.

import { ApiError, call, key, query } from "./api.js";
import { chartTable, drawChart } from "./chart.js";
import { RANGES, formatRange, interval, resolveRange } from "./dates.js";
import { askFilter, chips } from "./filters.js";
import { METRICS, formatChange, formatMetric, h } from "./format.js";
import { startLive } from "./live.js";
import { PANELS, ROWS_SHOWN, exportCsv, rowsTable, tabQuery } from "./panels.js";
import { filterExpression, read, write } from "./state.js";

const TILES = ["visitors", "pageviews", "sessions", "bounce_rate", "avg_duration", "views_per_session"];
const COMPARE = [["", "No comparison"], ["previous_period", "Previous period"], ["year_over_year", "Year over year"]];

const app = document.getElementById("app");
let state = read();
let sites = [];
let site = null;
let controller = null;
let stopLive = () => {};
let chart = null;
let ui = {};
// Per site: its goals and saved funnels, or null where the server has no such routes.
const extras = new Map();
// Work in flight, for the tests and the Performance API marks.
let pending = 0;
let views = 0;

function busy(delta) {
  pending += delta;
  document.documentElement.dataset.pending = String(pending);
  if (pending === 0) performance.mark("weldpulse:idle");
}

// ---- sign-in -------------------------------------------------------------

/** Takes a key from a `#key=…` link; true when there was one. */
function takeKeyFromFragment() {
  const match = /(?:^|&)key=([^&]+)/.exec(location.hash.slice(1));
  if (!match) return false;
  key.set(decodeURIComponent(match[1]));
  // The fragment never reaches a server; dropped from the address bar too.
  history.replaceState(null, "", location.pathname + location.search);
  return true;
}

function signIn(message) {
  stopLive();
  controller?.abort();
  key.clear();
  const input = h("input", { id: "key", name: "key", type: "password", autocomplete: "off", required: true, spellcheck: "false", placeholder: "ak_live_…" });
  const form = h(
    "form",
    { class: "card signin", id: "signin" },
    h("h1", {}, "weldpulse"),
    h("p", {}, "Sign in with an API key that can read stats (scope stats:read). It stays in this tab only."),
    message && h("p", { class: "error", role: "alert", id: "signin-error" }, message),
    h("p", { class: "field" }, h("label", { for: "key" }, "API key"), input),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const value = input.value.trim();
    // A header carries printable ASCII only: anything else cannot be a key.
    if (!/^[\x21-\x7e]{1,200}$/.test(value)) return signIn("That does not look like an API key (ak_live_…).");
    key.set(value);
    start();
  });
  app.replaceChildren(h("main", { class: "center" }, form));
  input.focus();
}

let retryStart = 0;

async function start() {
  clearTimeout(retryStart);
  try {
    sites = (await call("/v1/sites")).data;
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) return signIn("That key was not accepted: it is unknown, revoked, or lacks stats:read.");
    if (e instanceof ApiError && e.status === 403) return signIn("This key's project has no sites yet.");
    if (e instanceof ApiError && e.status === 429) {
      const wait = e.retryAfter || 5;
      app.replaceChildren(h("main", { class: "center" }, h("p", { class: "notice", role: "status" }, `Rate limited: retrying in ${wait} s.`)));
      retryStart = setTimeout(start, wait * 1000);
      return;
    }
    return signIn(`The server did not answer: ${e.message}`);
  }
  if (sites.length === 0) return signIn("This key's project has no sites yet.");
  buildShell();
  selectSite(state.site, { replace: true });
}

// ---- errors ----------------------------------------------------------------

/** Shows an error in a widget; true when the whole page is done (signed out). */
function failed(box, e, retry) {
  if (e.name === "AbortError") return true;
  if (e instanceof ApiError && e.status === 401) {
    signIn("Your key was revoked or is no longer valid. Sign in with another key.");
    return true;
  }
  if (!box) return false;
  if (e instanceof ApiError && e.status === 429) {
    const wait = e.retryAfter || 5;
    box.replaceChildren(h("p", { class: "notice", role: "status" }, `Rate limited: retrying in ${wait} s.`));
    if (retry) setTimeout(retry, wait * 1000);
    return false;
  }
  box.replaceChildren(h("p", { class: "error" }, `Could not load: ${e.message}`));
  return false;
}

async function load(box, work) {
  busy(1);
  try {
    await work();
  } catch (e) {
    failed(box, e, () => load(box, work));
  } finally {
    busy(-1);
  }
}

// ---- the shell -------------------------------------------------------------

function select(id, label, options, value, onChange) {
  const el = h("select", { id, onchange: () => onChange(el.value) }, options.map(([v, text]) => h("option", { value: v }, text)));
  el.value = value;
  return h("label", { class: "control" }, h("span", {}, label), el);
}

function buildShell() {
  const siteSelect = select("site", "Site", sites.map((s) => [s.id, s.name || s.domain]), state.site, (v) => {
    state.site = v;
    state.filters = [];
    state.funnel = "";
    selectSite(v);
  });
  const range = select("range", "Range", RANGES, state.range, (v) => {
    state.range = v;
    if (v === "custom" && !state.from) Object.assign(state, fromTo(resolveRange("30d", site.timezone)));
    update();
  });
  const from = h("input", { type: "date", id: "from", "aria-label": "From" });
  const to = h("input", { type: "date", id: "to", "aria-label": "To" });
  const custom = h(
    "form",
    { class: "custom", id: "custom" },
    from,
    h("span", { "aria-hidden": "true" }, "–"),
    to,
    h("button", { type: "submit", class: "secondary" }, "Apply"),
  );
  custom.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!from.value || !to.value || from.value > to.value) return;
    Object.assign(state, { from: from.value, to: to.value });
    update();
  });
  const compare = select("cmp", "Compare", COMPARE, state.cmp, (v) => ((state.cmp = v), update()));
  const addFilter = h("button", { type: "button", id: "add-filter", class: "secondary", onclick: openFilterDialog }, "+ Filter");
  const signOut = h("button", { type: "button", class: "link", id: "sign-out", onclick: () => signIn("Signed out.") }, "Sign out");
  ui = {
    from,
    to,
    custom,
    chips: h("div", { class: "chips", id: "chips", role: "group", "aria-label": "Filters" }),
    note: h("p", { class: "muted range-note", id: "range-note" }),
    tiles: h("section", { class: "tiles", id: "tiles", "aria-label": "Totals" }),
    chart: h("div", { class: "chart", id: "chart" }),
    chartBox: null,
    live: h("div", { id: "live" }),
    panels: {},
    goals: h("div", { id: "goals-body" }),
    funnels: h("div", { id: "funnels-body" }),
  };
  ui.chartBox = h("section", { class: "card chart-card", "aria-label": "Chart" }, ui.chart);
  const panels = PANELS.map((p) => {
    ui.panels[p.id] = { body: h("div", { class: "panel-body" }), tabs: h("div", { class: "tabs", role: "group", "aria-label": `${p.title} breakdown` }) };
    return h(
      "section",
      { class: "card panel", id: `panel-${p.id}`, "aria-labelledby": `h-${p.id}` },
      h(
        "header",
        {},
        h("h2", { id: `h-${p.id}` }, p.title),
        ui.panels[p.id].tabs,
        h("button", { type: "button", class: "link csv", "aria-label": `Export ${p.title} as CSV`, onclick: () => csv(p) }, "CSV"),
      ),
      ui.panels[p.id].body,
    );
  });
  app.replaceChildren(
    h(
      "header",
      { class: "top" },
      h("a", { class: "brand", href: location.pathname }, "weldpulse"),
      h("div", { class: "controls" }, siteSelect, range, compare, addFilter, custom),
      signOut,
    ),
    h("main", {}, h("div", { class: "filterbar" }, ui.chips), ui.note, ui.tiles, ui.chartBox,
      h("div", { class: "grid" },
        h("section", { class: "card panel live", id: "panel-live", "aria-labelledby": "h-live" }, h("header", {}, h("h2", { id: "h-live" }, "Live")), ui.live),
        ...panels,
        h("section", { class: "card panel", id: "panel-goals", "aria-labelledby": "h-goals" }, h("header", {}, h("h2", { id: "h-goals" }, "Goals")), ui.goals),
        h("section", { class: "card panel", id: "panel-funnels", "aria-labelledby": "h-funnels" }, h("header", {}, h("h2", { id: "h-funnels" }, "Funnels")), ui.funnels),
      )),
  );
}

const fromTo = ({ start, end }) => ({ from: start, to: end });

function selectSite(id, { replace = false } = {}) {
  site = sites.find((s) => s.id === id) ?? sites[0];
  state.site = site.id;
  document.getElementById("site").value = site.id;
  restartLive();
  update({ replace });
}

function restartLive() {
  stopLive();
  stopLive = startLive(ui.live, site, (e) => failed(null, e));
}

// ---- one view ---------------------------------------------------------------

/** What every query of the view shares: site, local days, zone, filters. */
function base() {
  return {
    site_id: site.id,
    timezone: site.timezone,
    date_range: resolveRange(state.range, site.timezone, state.from, state.to),
    filters: filterExpression(state.filters),
  };
}

/** Writes the state into the URL and redraws everything. */
function update({ replace = false } = {}) {
  write(state, { replace });
  controller?.abort();
  controller = new AbortController();
  performance.mark("weldpulse:update");
  document.documentElement.dataset.views = String(++views);
  syncControls();
  const signal = controller.signal;
  tiles(signal);
  mainChart(signal);
  for (const panel of PANELS) panelRows(panel, signal);
  goals(signal);
  funnels(signal);
}

function syncControls() {
  const { start, end } = base().date_range;
  document.getElementById("range").value = state.range;
  document.getElementById("cmp").value = state.cmp;
  ui.custom.hidden = state.range !== "custom";
  ui.from.value = start;
  ui.to.value = end;
  ui.chips.replaceChildren(
    ...chips(state.filters, (i) => {
      state.filters.splice(i, 1);
      update();
      document.getElementById("add-filter").focus();
    }),
  );
  ui.note.textContent = `${formatRange(start, end)} · ${site.timezone}`;
  for (const panel of PANELS) {
    const current = state[panel.id];
    ui.panels[panel.id].tabs.replaceChildren(
      ...panel.tabs.map((tab) =>
        h("button", {
          type: "button",
          class: "tab",
          "aria-pressed": String(tab.key === current),
          onclick: () => {
            state[panel.id] = tab.key;
            write(state);
            syncControls();
            panelRows(panel, controller.signal);
          },
        }, tab.label),
      ),
    );
  }
}

function compare() {
  return state.cmp ? { mode: state.cmp } : undefined;
}

function tiles(signal) {
  return load(ui.tiles, async () => {
    const answer = await query({ ...base(), metrics: TILES, compare: compare() }, signal);
    const row = answer.results[0];
    const cmp = answer.meta.comparison_date_range;
    const { start, end } = base().date_range;
    ui.note.textContent = `${formatRange(start, end)} · ${site.timezone}` +
      (cmp ? ` · compared with ${formatRange(cmp.start.slice(0, 10), cmp.end.slice(0, 10))}` : "");
    ui.tiles.replaceChildren(
      ...TILES.map((metric, i) => {
        const change = row.comparison ? formatChange(metric, row.comparison.change[i]) : null;
        return h(
          "button",
          {
            type: "button",
            class: "tile",
            "aria-pressed": String(state.metric === metric),
            dataset: { metric },
            onclick: () => {
              state.metric = metric;
              write(state);
              for (const t of ui.tiles.children) t.setAttribute("aria-pressed", String(t.dataset.metric === metric));
              mainChart(controller.signal);
            },
          },
          h("span", { class: "tile-label" }, METRICS[metric]),
          h("span", { class: "tile-value", dataset: { value: String(row.metrics[i]) } }, formatMetric(metric, row.metrics[i])),
          change &&
            h("span", {
              class: `delta ${change.good === null ? "" : change.good ? "good" : "bad"}`,
              dataset: { change: String(row.comparison.change[i]) },
            }, change.text),
        );
      }),
    );
    requestAnimationFrame(() => performance.mark("weldpulse:tiles"));
  });
}

function mainChart(signal) {
  return load(ui.chart, async () => {
    const metric = TILES.includes(state.metric) ? state.metric : "visitors";
    const { start, end } = base().date_range;
    const unit = interval(start, end);
    const answer = await query({ ...base(), metrics: [metric], dimensions: [`time:${unit}`], compare: compare(), limit: 10000 }, signal);
    const buckets = answer.results.map((r) => r.dimensions[0]);
    const values = answer.results.map((r) => r.metrics[0]);
    const previous = compare() ? answer.results.map((r) => r.comparison.metrics[0]) : null;
    chart?.destroy();
    ui.chart.replaceChildren(h("h2", { class: "chart-title" }, `${METRICS[metric]} per ${unit}`));
    chart = drawChart(ui.chart, { metric, unit, buckets, values, previous });
    ui.chart.append(chartTable(metric, unit, buckets, values, previous));
  });
}

function currentTab(panel) {
  return panel.tabs.find((t) => t.key === state[panel.id]) ?? panel.tabs[0];
}

function tabDimension(panel, tab) {
  return tab.key === "prop" ? (state.prop ? `prop:${state.prop}` : null) : tab.key;
}

function panelRows(panel, signal) {
  const box = ui.panels[panel.id].body;
  const tab = currentTab(panel);
  const dimension = tabDimension(panel, tab);
  const extra = tab.key === "prop" ? propForm() : null;
  if (!dimension) {
    box.replaceChildren(extra, h("p", { class: "empty" }, "Name a property to break custom events down by its values."));
    return;
  }
  return load(box, async () => {
    const answer = await query(tabQuery(base(), tab, dimension, ROWS_SHOWN), signal);
    const rows = answer.results;
    box.replaceChildren(
      ...[extra, rows.length
        ? rowsTable(dimension, tab.metrics, rows, (value) => addFilter({ dimension, op: "is", values: [value] }))
        : h("p", { class: "empty" }, state.filters.length ? "No data for these filters." : "No data for this range yet.")].filter(Boolean),
    );
    box.dataset.loaded = dimension;
  });
}

function propForm() {
  const input = h("input", { id: "prop-key", value: state.prop, maxlength: "200", autocomplete: "off", placeholder: "e.g. plan" });
  const form = h("form", { class: "inline" }, h("label", { for: "prop-key" }, "Property"), input, h("button", { type: "submit", class: "secondary" }, "Show"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state.prop = input.value.trim();
    update();
  });
  return form;
}

function addFilter(filter) {
  performance.mark("weldpulse:filter");
  // One `is` filter per dimension from clicks: a new click replaces it.
  state.filters = state.filters.filter((f) => !(f.dimension === filter.dimension && f.op === "is" && filter.op === "is"));
  state.filters.push(filter);
  update();
}

async function openFilterDialog() {
  const known = await siteExtras().catch(() => null);
  const filter = await askFilter(Boolean(known?.goals?.length));
  if (filter) {
    state.filters.push(filter);
    update();
  }
  document.getElementById("add-filter").focus();
}

function csv(panel) {
  const tab = currentTab(panel);
  const dimension = tabDimension(panel, tab);
  if (!dimension) return;
  const { start, end } = base().date_range;
  const name = `${site.domain}-${dimension.replace(":", "-")}-${start}-${end}.csv`;
  load(ui.panels[panel.id].body, () => exportCsv(tabQuery(base(), tab, dimension, 1000), name));
}

// ---- goals and funnels (routes other servers may not have yet) ---------------

/** The site's goals and saved funnels (fetched once per site; null where the route is missing). */
function siteExtras() {
  if (!extras.has(site.id)) {
    const list = async (what) => {
      try {
        return (await call(`/v1/sites/${encodeURIComponent(site.id)}/${what}`)).data;
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) return null;
        throw e;
      }
    };
    const id = site.id;
    const both = Promise.all([list("goals"), list("funnels")]).then(([goals, funnels]) => ({ goals, funnels }));
    // A failure is not remembered: the next view asks again.
    both.catch(() => extras.delete(id));
    extras.set(id, both);
  }
  return extras.get(site.id);
}

const unavailable = (what) => h("p", { class: "empty" }, `${what} are not available on this server yet.`);

function goals(signal) {
  return load(ui.goals, async () => {
    const { goals: list } = await siteExtras();
    if (list === null) return ui.goals.replaceChildren(unavailable("Goals"));
    if (list.length === 0) return ui.goals.replaceChildren(h("p", { class: "empty" }, "No goals yet. Create one with POST /v1/sites/{site}/goals."));
    const metrics = ["visitors", "events", "conversion_rate"];
    const answer = await query({ ...base(), metrics, dimensions: ["goal"], limit: 100 }, signal);
    ui.goals.replaceChildren(
      answer.results.length
        ? rowsTable("goal", metrics, answer.results, (value) => addFilter({ dimension: "goal", op: "is", values: [value] }))
        : h("p", { class: "empty" }, "No conversions in this range."),
    );
  });
}

function funnels(signal) {
  return load(ui.funnels, async () => {
    const { funnels: list } = await siteExtras();
    if (list === null) return ui.funnels.replaceChildren(unavailable("Funnels"));
    if (list.length === 0) return ui.funnels.replaceChildren(h("p", { class: "empty" }, "No saved funnels yet. Save one with POST /v1/sites/{site}/funnels."));
    const chosen = list.find((f) => f.id === state.funnel) ?? list[0];
    const picker = select("funnel", "Funnel", list.map((f) => [f.id, f.name]), chosen.id, (v) => {
      state.funnel = v;
      write(state);
      funnels(controller.signal);
    });
    const b = base();
    const answer = await call("/v1/funnel", {
      method: "POST",
      // Goal conditions are the funnel's steps, not a filter of its events: the route takes none.
      body: { site_id: b.site_id, date_range: b.date_range, timezone: b.timezone, funnel_id: chosen.id, filters: filterExpression(state.filters.filter((f) => f.dimension !== "goal")) },
      signal,
    });
    const first = answer.steps[0]?.visitors || 1;
    ui.funnels.replaceChildren(
      picker,
      h("ol", { class: "funnel" }, answer.steps.map((s) => {
        const bar = h("span", { class: "bar", "aria-hidden": "true" });
        bar.style.width = `${(100 * s.visitors) / first}%`;
        const numbers = { label: s.label, visitors: String(s.visitors), conversion: String(s.conversion_rate), dropoff: String(s.dropoff) };
        return h("li", { dataset: numbers },
          h("span", { class: "label" }, bar, h("span", {}, s.label)),
          h("span", { class: "num" }, `${formatMetric("visitors", s.visitors)} · ${formatMetric("conversion_rate", s.conversion_rate)}`),
          s.dropoff
            ? h("span", { class: "muted drop" }, `−${formatMetric("visitors", s.dropoff)} dropped off (${formatMetric("conversion_rate", 1 - s.step_conversion_rate)} of the step before)`)
            : null);
      })),
    );
  });
}

// ---- go ---------------------------------------------------------------------

window.addEventListener("popstate", () => {
  if (!site) return;
  const siteBefore = site.id;
  state = read();
  if (state.site !== siteBefore) return selectSite(state.site, { replace: true });
  update({ replace: true });
});
window.addEventListener("resize", () => {
  if (chart) chart.setSize({ width: Math.max(ui.chart.clientWidth, 280), height: ui.chart.clientWidth < 500 ? 200 : 280 });
});

// A page kept in the back/forward cache would keep its stream open, and with it one of the
// browser's six connections to this origin: close it on leaving, open it again on coming back.
window.addEventListener("pagehide", () => stopLive());
window.addEventListener("pageshow", (e) => {
  if (e.persisted && site) restartLive();
});

// A share link opened in a tab already on the page changes only the fragment.
window.addEventListener("hashchange", () => {
  if (takeKeyFromFragment()) {
    state = read();
    start();
  }
});

takeKeyFromFragment();
if (key.get()) start();
else signIn();
