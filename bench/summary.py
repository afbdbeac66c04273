"""Prints the Markdown tables of docs/performance.md from bench/results/*.json.

`summary.py [engine]`: every endpoint across the run sizes; `summary.py engine
queries`: the query shapes of the largest run, with their targets and ratios;
`summary.py compare A.json B.json ...`: p50s of the shapes and presets of
several runs (e.g. before and after an engine change, or 10M and 100M) side by side.
"""

import json
import sys
from pathlib import Path
from typing import Any

from queries import RATIOS, SHAPES
from report import query_verdict

RESULTS = Path(__file__).resolve().parent / "results"


def _filter(node: dict[str, Any]) -> str:
    if "and" in node:
        return " and ".join(_filter(child) for child in node["and"])
    case = "" if node.get("case_sensitive", True) else " (any case)"
    return f"{node['dimension']} {node['op']} {','.join(node['values'])}{case}"


def _describe(shape: str) -> str:
    s = SHAPES[shape]
    parts = [", ".join(s.dimensions) or "no dimension"]
    if s.filters is not None:
        parts.append(f"`{_filter(s.filters)}`")
    parts += [f"{k} {v['mode'] if isinstance(v, dict) else v}" for k, v in s.extra.items()]
    return "; ".join(parts)


def queries(run: dict[str, Any]) -> None:
    q, engine = run["query"], run["engine"]

    def p50(key: str) -> str:
        return f"{q[key]['p50']:,.0f}" if q.get(key, {}).get("p50") else "-"

    print("| shape | dimensions, filters | 30 d p50 | 90 d p50 | GET preset p50 30 d / 90 d "
          "| target (30 d / 90 d) | |")  # fmt: skip
    print("|---|---|---:|---:|---|---|---|")
    for name, shape in SHAPES.items():
        if name in RATIOS:
            continue
        preset = shape.preset
        get = f"{preset} {p50(f'get:{preset}/30d')} / {p50(f'get:{preset}/90d')}" if preset else "-"
        targets = (
            " / ".join(f"{t:g}" for t in shape.targets if t) if engine == "embedded" else "1000"
        )
        verdicts = [
            query_verdict(engine, name, w, q[f"{name}/{w}"]["p50"])
            for w in ("30d", "90d")
            if q.get(f"{name}/{w}", {}).get("p50")
        ]
        verdict = "missed" if any("MISSED" in v for v in verdicts) else "met" if verdicts else ""
        print(f"| {name} | {_describe(name)} | {p50(f'{name}/30d')} | {p50(f'{name}/90d')} "
              f"| {get} | {targets or '-'} | {verdict} |")  # fmt: skip
    print("\n| shape | against | 30 d ratio | 90 d ratio | allowed | |")
    print("|---|---|---:|---:|---:|---|")
    for name, (twin, allowed) in RATIOS.items():
        ratios = [q[f"{name}/{w}"]["p50"] / q[f"{twin}/{w}"]["p50"] for w in ("30d", "90d")]
        verdict = "met" if max(ratios) <= allowed else "missed"
        print(f"| {name} ({_describe(name)}) | {twin} | {ratios[0]:.2f} | {ratios[1]:.2f} "
              f"| {allowed} | {verdict} |")  # fmt: skip


def compare(paths: list[str]) -> None:
    """One row per query shape or GET preset and window, one p50 column per run, ms."""
    runs = [json.loads(Path(p).read_text()) for p in paths]
    names = [Path(p).stem for p in paths]
    print("| shape | window | " + " | ".join(f"{n} p50" for n in names) + " |")
    print("|---|---|" + "---:|" * len(runs))
    keys = dict.fromkeys(k for r in runs for k in r["query"])
    for key in keys:
        name, window = key.split("/")
        cells = []
        for r in runs:
            q = r["query"].get(key, {})
            cells.append(f"{q['p50']:,.0f}" if "p50" in q else str(q.get("status", "-")))
        print(f"| {name} | {window} | " + " | ".join(cells) + " |")


def main(engine: str = "embedded", table: str = "endpoints", *more: str) -> None:
    if engine == "compare":
        compare([table, *more])
        return
    runs = sorted(
        (json.loads(p.read_text()) for p in RESULTS.glob(f"{engine}-*.json")),
        key=lambda r: r["events"],
    )
    if table == "queries":
        queries(runs[-1])
        return
    small, big = runs[0], runs[-1]
    sizes = [f"{r['events'] / 1e6:g}M" for r in runs]
    print(
        "| endpoint | window | "
        + " | ".join(f"{s} p50" for s in sizes)
        + f" | {sizes[-1]} p95 | {sizes[-1]} gRPC p50 | {sizes[-1]} floor p50"
        + f" | Envoy/floor | {sizes[-1]}/{sizes[0]} |"
    )
    print("|---|---|" + "---:|" * (len(runs) + 5))
    for key, last in big["api"].items():
        endpoint, window, transport = key.split("/")
        if transport != "envoy":
            continue
        p50s = " | ".join(f"{r['api'][key]['p50']:,.0f}" for r in runs)
        base = big["floor"].get(f"{endpoint}/{window}")
        floor = f"{base['p50']:,.0f}" if base else "-"
        ratio = f"{last['p50'] / base['p50']:.2f}" if base else "-"
        growth = last["p50"] / small["api"][key]["p50"]
        direct = big["api"][f"{endpoint}/{window}/grpc"]["p50"]
        print(
            f"| {endpoint} | {window} | {p50s} | {last['p95']:,.0f} | {direct:,.0f} | {floor} "
            f"| {ratio} | {growth:.1f}x |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
