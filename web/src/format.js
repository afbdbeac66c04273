// How numbers, metrics and dimensions read on the page.

export const METRICS = {
  visitors: "Visitors",
  pageviews: "Pageviews",
  sessions: "Sessions",
  bounce_rate: "Bounce rate",
  avg_duration: "Visit duration",
  views_per_session: "Views per visit",
  events: "Events",
  conversion_rate: "Conversion rate",
  time_on_page: "Time on page",
};

export const DIMENSIONS = {
  page: "Page",
  entry_page: "Entry page",
  exit_page: "Exit page",
  hostname: "Hostname",
  event_name: "Event",
  source: "Source",
  referrer: "Referrer",
  channel: "Channel",
  utm_source: "UTM source",
  utm_medium: "UTM medium",
  utm_campaign: "UTM campaign",
  utm_content: "UTM content",
  utm_term: "UTM term",
  country: "Country",
  region: "Region",
  city: "City",
  device_type: "Device",
  browser: "Browser",
  os: "OS",
  goal: "Goal",
};

export const dimensionLabel = (d) =>
  d.startsWith("prop:") ? `Property ${d.slice(5)}` : (DIMENSIONS[d] ?? d);

// Metrics where a rise is bad news (the delta shows red).
const LOWER_IS_BETTER = new Set(["bounce_rate"]);
// Metrics whose change the API gives in percentage points.
const POINTS = new Set(["bounce_rate", "percentage", "conversion_rate"]);

const whole = new Intl.NumberFormat("en");
const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 1 });

export function formatMetric(metric, value) {
  if (value === null || value === undefined) return "–";
  if (metric === "bounce_rate" || metric === "conversion_rate" || metric === "percentage") {
    return `${(value * 100).toFixed(1).replace(/\.0$/, "")}%`;
  }
  if (metric === "avg_duration" || metric === "time_on_page") return duration(value);
  if (metric === "views_per_session") return value.toFixed(2);
  return value >= 100000 ? compact.format(value) : whole.format(value);
}

export function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A change as the API gives it: text, and whether it is good news. */
export function formatChange(metric, change) {
  if (change === null || change === undefined) return { text: "new", good: null };
  const unit = POINTS.has(metric) ? " pp" : "%";
  const sign = change > 0 ? "↑" : change < 0 ? "↓" : "";
  const good = change === 0 ? null : (change > 0) !== LOWER_IS_BETTER.has(metric);
  return { text: `${sign} ${Math.abs(change)}${unit}`.trim(), good };
}

/** `(none)` and "" read as something a person understands. */
export function dimensionValue(dimension, value) {
  if (value === "") return dimension === "source" ? "Direct / None" : "(unknown)";
  return value;
}

/** An element with attributes and children (strings become text: nothing is parsed as HTML). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
  return el;
}
