"""Prints the cross-size Markdown table of docs/performance.md from bench/results/*.json."""

import json
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def main(engine: str = "embedded") -> None:
    runs = sorted(
        (json.loads(p.read_text()) for p in RESULTS.glob(f"{engine}-*.json")),
        key=lambda r: r["events"],
    )
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
