// Date ranges as local days ("YYYY-MM-DD") of the site's time zone, and the chart interval for each.

const DAY = 86400000;

/** Today's date in an IANA time zone. */
export function today(timezone) {
  const parts = new Intl.DateTimeFormat("en-CA", {
    timeZone: timezone,
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
  }).formatToParts(new Date());
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

// Plain dates computed as UTC midnights, so the browser's own zone never shifts a day.
const toTime = (date) => Date.parse(`${date}T00:00:00Z`);
const fromTime = (time) => new Date(time).toISOString().slice(0, 10);
export const addDays = (date, n) => fromTime(toTime(date) + n * DAY);
export const daysBetween = (start, end) => Math.round((toTime(end) - toTime(start)) / DAY) + 1;

function addMonths(date, n) {
  const d = new Date(toTime(date.slice(0, 8) + "01"));
  d.setUTCMonth(d.getUTCMonth() + n);
  return fromTime(d.getTime());
}

export const RANGES = [
  ["today", "Today"],
  ["yesterday", "Yesterday"],
  ["7d", "Last 7 days"],
  ["30d", "Last 30 days"],
  ["mtd", "Month to date"],
  ["lastmonth", "Last month"],
  ["12mo", "Last 12 months"],
  ["custom", "Custom range"],
];

/** {start, end} local dates of a named range (custom: from/to as given). */
export function resolveRange(range, timezone, from, to) {
  const t = today(timezone);
  switch (range) {
    case "today":
      return { start: t, end: t };
    case "yesterday":
      return { start: addDays(t, -1), end: addDays(t, -1) };
    case "7d":
      return { start: addDays(t, -6), end: t };
    case "mtd":
      return { start: t.slice(0, 8) + "01", end: t };
    case "lastmonth": {
      const first = addMonths(t, -1);
      return { start: first, end: addDays(addMonths(t, 0), -1) };
    }
    case "12mo":
      return { start: addMonths(t, -11), end: t };
    case "custom":
      if (isDate(from) && isDate(to) && from <= to) return { start: from, end: to };
      return { start: addDays(t, -29), end: t };
    default:
      return { start: addDays(t, -29), end: t };
  }
}

export const isDate = (s) => typeof s === "string" && /^\d{4}-\d{2}-\d{2}$/.test(s) && !isNaN(toTime(s));

/** A bucket size that gives a readable number of points (about 7–90). */
export function interval(start, end) {
  const days = daysBetween(start, end);
  if (days <= 2) return "hour";
  if (days <= 92) return "day";
  if (days <= 210) return "week";
  return "month";
}

/** How a bucket label ("YYYY-MM-DDTHH:MM:SS", local) reads on an axis. */
export function bucketLabel(bucket, unit) {
  const [date, time] = bucket.split("T");
  const d = new Date(`${date}T00:00:00Z`);
  const month = d.toLocaleString("en", { month: "short", timeZone: "UTC" });
  if (unit === "minute" || unit === "hour") return time.slice(0, 5);
  if (unit === "month") return `${month} ${date.slice(0, 4)}`;
  return `${d.getUTCDate()} ${month}`;
}

/** "1 Nov – 30 Nov 2026", "30 Nov 2026": a range as people write it. */
export function formatRange(start, end) {
  const fmt = (date, withYear) => {
    const d = new Date(`${date}T00:00:00Z`);
    const text = `${d.getUTCDate()} ${d.toLocaleString("en", { month: "short", timeZone: "UTC" })}`;
    return withYear ? `${text} ${d.getUTCFullYear()}` : text;
  };
  if (start === end) return fmt(end, true);
  return `${fmt(start, start.slice(0, 4) !== end.slice(0, 4))} – ${fmt(end, true)}`;
}
