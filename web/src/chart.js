// The main chart (uPlot): one metric per time bucket, the comparison range dashed behind it.

import uPlot from "uplot";
import { bucketLabel } from "./dates.js";
import { formatMetric, h } from "./format.js";

const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

/** Draws into `box`; returns the chart (to destroy on the next draw). */
export function drawChart(box, { metric, unit, buckets, values, previous }) {
  const xs = buckets.map((_, i) => i);
  const series = [
    {},
    {
      label: "This period",
      stroke: css("--accent"),
      fill: css("--accent-fill"),
      width: 2,
      points: { show: buckets.length <= 31 },
      value: (_, v) => formatMetric(metric, v),
    },
  ];
  const data = [xs, values];
  if (previous) {
    series.push({
      label: "Comparison",
      stroke: css("--muted"),
      dash: [6, 4],
      width: 1.5,
      points: { show: false },
      value: (_, v) => formatMetric(metric, v),
    });
    data.push(previous);
  }
  const axis = { stroke: css("--muted"), grid: { stroke: css("--grid"), width: 1 }, ticks: { show: false } };
  const width = Math.max(box.clientWidth, 280);
  const opts = {
    width,
    height: width < 500 ? 200 : 280,
    series,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false }, y: { range: (_, __, max) => [0, max > 0 ? max * 1.1 : 1] } },
    axes: [
      {
        ...axis,
        values: (_, ticks) => ticks.map((i) => (Number.isInteger(i) && buckets[i] ? bucketLabel(buckets[i], unit) : "")),
        space: 60,
        size: 32,
      },
      { ...axis, size: 56, values: (_, ticks) => ticks.map((v) => formatMetric(metric, v)) },
    ],
  };
  return new uPlot(opts, data, box);
}

/** The chart's numbers as a table for screen readers (and the tests). */
export function chartTable(metric, unit, buckets, values, previous) {
  // In a div: a table does not clip its own content, so it would widen the page.
  return h("div", { class: "sr-only" }, h(
    "table",
    { id: "chart-data" },
    h("caption", {}, `${metric} per ${unit}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Bucket"), h("th", { scope: "col" }, metric), previous && h("th", { scope: "col" }, "Comparison"))),
    h(
      "tbody",
      {},
      buckets.map((b, i) =>
        h("tr", {}, h("th", { scope: "row" }, b), h("td", {}, String(values[i])), previous && h("td", {}, String(previous[i]))),
      ),
    ),
  ));
}
