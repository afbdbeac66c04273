// The live panel: current visitors from the stream (or polling /v1/realtime where there is none), the last 30 minutes.

import { ApiError, call, query, stream } from "./api.js";
import { bucketLabel } from "./dates.js";
import { formatMetric, h } from "./format.js";

const POLL_MS = 5000;
const HISTORY_MS = 60000;

/** Starts the live panel in `box` for one site; returns a stop function. */
export function startLive(box, site, onError) {
  const controller = new AbortController();
  const { signal } = controller;
  const count = h("span", { class: "live-count", id: "live-count", dataset: { value: "" } }, "–");
  const when = h("span", { class: "muted" });
  const bars = h("div", { class: "spark", role: "img", "aria-label": "Visitors per minute, last 30 minutes" });
  const status = h("p", { class: "notice", role: "status" });
  box.replaceChildren(
    h("div", { class: "live-head" }, h("span", { class: "dot", "aria-hidden": "true" }), count, h("span", {}, " current visitors "), when),
    bars,
    h("p", { class: "muted spark-caption" }, "Visitors per minute, last 30 minutes"),
    status,
  );

  // True when the page is done with this panel (signed out); else says what happened.
  const trouble = (e) => {
    if (signal.aborted || onError(e)) return true;
    status.textContent =
      e instanceof ApiError && e.status === 429
        ? `Rate limited: live updates resume in ${e.retryAfter || 5} s.`
        : `Live updates paused: ${e.message}`;
    return false;
  };

  // Which source the numbers come from ("stream" or "poll"), for the reader and the tests.
  const show = (rows, source) => {
    const n = rows.reduce((sum, r) => sum + r.current_visitors, 0);
    count.textContent = formatMetric("visitors", n);
    count.dataset.value = String(n);
    count.dataset.source = source;
    when.textContent = `· updated ${new Date().toLocaleTimeString("en-GB")}`;
    status.textContent = "";
  };

  async function poll() {
    while (!signal.aborted) {
      try {
        show((await call("/v1/realtime", { params: { site_id: site.id }, signal })).data, "poll");
      } catch (e) {
        if (trouble(e)) return;
        await sleep(Math.max(POLL_MS, (e.retryAfter || 0) * 1000), signal);
        continue;
      }
      await sleep(POLL_MS, signal);
    }
  }

  async function live() {
    while (!signal.aborted) {
      try {
        // One update a second: the server sends one snapshot per tick to every stream.
        await stream("/v1/realtime/stream", { site_id: site.id, interval_seconds: 1 }, (u) => show(u.data, "stream"), signal);
      } catch (e) {
        // No stream route on this server: poll the realtime route instead.
        if (e instanceof ApiError && e.status === 404) return poll();
        if (trouble(e)) return;
      }
      await sleep(POLL_MS, signal);
    }
  }

  async function history() {
    while (!signal.aborted) {
      const end = new Date();
      const start = new Date(end.getTime() - 29 * 60000);
      start.setUTCSeconds(0, 0);
      try {
        const answer = await query(
          {
            site_id: site.id,
            timezone: site.timezone,
            date_range: { start: start.toISOString(), end: end.toISOString() },
            metrics: ["visitors"],
            dimensions: ["time:minute"],
            limit: 100,
          },
          signal,
        );
        drawBars(bars, answer.results);
      } catch (e) {
        if (trouble(e)) return;
      }
      await sleep(HISTORY_MS, signal);
    }
  }

  live();
  history();
  return () => controller.abort();
}

function drawBars(box, results) {
  const max = Math.max(...results.map((r) => r.metrics[0]), 1);
  box.replaceChildren(
    ...results.map((r) => {
      const bar = h("span", { title: `${bucketLabel(r.dimensions[0], "minute")}: ${r.metrics[0]}` });
      bar.style.height = `${Math.max((100 * r.metrics[0]) / max, 2)}%`;
      return bar;
    }),
  );
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
  });
