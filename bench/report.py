"""Writes a benchmark result as JSON and a Markdown table, and charts latency vs. event count."""

import json
from pathlib import Path
from typing import Any

from funnel_shapes import funnel_lines
from queries import RATIOS, SHAPES

# Targets of issue 4, in ms of p50/p95 through Envoy, per engine and window.
TARGETS = {
    ("embedded", "30d"): (100, 250),
    ("embedded", "90d"): (250, None),
    ("embedded", "now"): (20, None),
    ("postgres", "30d"): (500, None),
}


def verdict(engine: str, endpoint: str, window: str, p50: float, p95: float) -> str:
    if endpoint == "sites":
        return ""
    if endpoint == "realtime" and engine == "postgres":
        return ""
    p50_max, p95_max = TARGETS.get((engine, window), (None, None))
    if p50_max is None:
        return ""
    ok = p50 <= p50_max and (p95_max is None or p95 <= p95_max)
    limits = f"p50 ≤ {p50_max}" + (f", p95 ≤ {p95_max}" if p95_max else "")
    return f"{'met' if ok else 'MISSED'} ({limits})"


def query_verdict(engine: str, shape: str, window: str, p50: float) -> str:
    """Issue 10's target for the shape: its own on the embedded engine, 1 s on PostgreSQL."""
    if engine == "postgres":
        target = 1000.0 if window == "30d" else None
    else:
        target = SHAPES[shape].targets[0 if window == "30d" else 1]
    if target is None:
        return ""
    return f"{'met' if p50 <= target else 'MISSED'} (≤ {target:g})"


def query_lines(result: dict[str, Any]) -> list[str]:
    """The query shapes beside their GET presets, and the ratios measured in the same run."""
    queries = result.get("query") or {}
    if not queries:
        return []
    lines = [
        "",
        "### POST /v1/query shapes through Envoy (ms)",
        "",
        "Per window, each shape and GET preset in turn, one request each per round.",
        "",
        "| shape | dimensions | window | p50 | p95 | rows | GET preset p50 | query/GET | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, q in queries.items():
        shape, window = key.split("/")
        if shape.startswith("get:"):
            continue
        dims = ", ".join(SHAPES[shape].dimensions) or "-"
        if q.get("status") != 200:
            lines.append(f"| {shape} | {dims} | {window} | **{q.get('status')}** | | | | | |")
            continue
        preset = SHAPES[shape].preset
        get = queries.get(f"get:{preset}/{window}") if preset else None
        ratio = f"{q['p50'] / get['p50']:.2f}" if get else "-"
        lines.append(
            f"| {shape} | {dims} | {window} | {q['p50']} | {q['p95']} | {q['rows']} "
            f"| {get['p50'] if get else '-'} | {ratio} "
            f"| {query_verdict(result['engine'], shape, window, q['p50'])} |"
        )
    lines += [
        "",
        "| shape | against | window | p50 ratio | allowed | |",
        "|---|---|---|---:|---:|---|",
    ]
    for shape, (twin, allowed) in RATIOS.items():
        for window in ("30d", "90d"):
            a, b = queries.get(f"{shape}/{window}"), queries.get(f"{twin}/{window}")
            if not (a and b and a.get("status") == b.get("status") == 200):
                continue
            ratio = a["p50"] / b["p50"]
            lines.append(
                f"| {shape} | {twin} | {window} | {ratio:.2f} | {allowed} "
                f"| {'met' if ratio <= allowed else 'MISSED'} |"
            )
    return lines


def markdown(result: dict[str, Any]) -> str:
    load, ing = result["load"], result["ingestion"]
    lines = [
        f"## {result['engine']} engine, {result['events']:,} events "
        f"({result['requests']} timed requests after {result['warmup']} warm-up, ms)",
        "",
        "| endpoint | window | floor p50 | gRPC p50 | gRPC p95 | Envoy p50 | Envoy p95 "
        "| Envoy/floor | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for key, envoy in result["api"].items():
        endpoint, window, transport = key.split("/")
        if transport != "envoy":
            continue
        direct = result["api"][f"{endpoint}/{window}/grpc"]
        base = result["floor"].get(f"{endpoint}/{window}")
        ratio = f"{envoy['p50'] / base['p50']:.2f}" if base and base["p50"] else "-"
        lines.append(
            f"| {endpoint} | {window} | {base['p50'] if base else '-'} | {direct['p50']} "
            f"| {direct['p95']} | {envoy['p50']} | {envoy['p95']} | {ratio} "
            f"| {verdict(result['engine'], endpoint, window, envoy['p50'], envoy['p95'])} |"
        )
    lines += query_lines(result)
    lines += funnel_lines(result)
    collect, imports = ing.get("collect"), ing.get("import")
    lines += [
        "",
        f"- load through `ingest.record`: {load['record_bulk_events_per_s']:,} events/s in "
        f"{load['record_bulk_batch']:,}-event batches; {load['record_1000_events_per_s']:,} "
        f"events/s in 1,000-event batches ({load['record_1000_events']:,} events)",
        f"- rolling the finished days into the day rollups: "
        f"{result['roll']['site_days']:,} site-days in {result['roll']['seconds']} s",
    ]
    if collect and imports:  # --skip ingestion leaves them out
        lines += [
            "- `POST /v1/collect` through Envoy, "
            + (
                f"{collect['clients']} clients: {collect['per_s']:,}/s, "
                f"statuses {collect['statuses']}"
                if collect["available"]
                else "not available (404)"
            ),
            "- `POST /v1/import` of 1,000 events: "
            + (
                f"{imports['events_per_s']:,} events/s, statuses {imports['statuses']}"
                if imports["available"]
                else "not available (404)"
            ),
        ]
    lines += [
        f"- server RSS (max while serving): {result['server_max_rss_mib']} MiB",
        "",
    ]
    return "\n".join(lines)


def chart(out: Path, engine: str) -> Path | None:
    """p50 through Envoy, 30-day window, per endpoint against the event count of each run."""
    runs = sorted(
        (json.loads(p.read_text()) for p in out.glob(f"{engine}-*.json")),
        key=lambda r: r["events"],
    )
    if not runs:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    sizes = [r["events"] for r in runs]
    endpoints = sorted({k.split("/")[0] for r in runs for k in r["api"]} - {"sites"})
    for endpoint in endpoints:
        window = "now" if endpoint == "realtime" else "30d"
        values = [r["api"].get(f"{endpoint}/{window}/envoy", {}).get("p50") for r in runs]
        ax.plot(sizes, values, marker="o", label=endpoint)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("events in the store")
    ax.set_ylabel("p50 latency through Envoy, ms (30-day window)")
    ax.set_title(f"weldpulse /v1 latency vs. data size ({engine} engine)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / f"latency-vs-events-{engine}.png"
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def write_reports(result: dict[str, Any], out: Path, label: str = "") -> str:
    """Writes {engine}-{events}[-label].json/.md and the chart; returns the Markdown."""
    stem = out / f"{result['engine']}-{result['events']}{'-' + label if label else ''}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    text = markdown(result)
    stem.with_suffix(".md").write_text(text)
    chart(out, result["engine"])
    return text
