"""Two builds side by side on copies of one loaded store: each query shape timed on both in
turn, the order swapped every round, so the two see the same load on a shared machine.

    python ab.py BEFORE_SERVER_DIR DATA_A DATA_B [--shapes q_stats,c_stats] [--requests 5]

BEFORE_SERVER_DIR holds the other build's `weldpulse` package (e.g. `git archive main
server | tar -x -C /tmp/before`): its server runs with it first on PYTHONPATH, on DATA_A;
this checkout's server on DATA_B. DATA_A and DATA_B are copies of a `make bench` data
folder (load.json naming their own files). Prints JSON: p50 per build, ratio, the median
CPU ms the server spent per call, RSS max.
"""

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from queries import GOALS, SHAPES
from run import ROOT, WINDOWS, Server
from weldpulse.storage import accounts, engines, goals


def _calls(
    info: dict[str, Any], server: Server, shapes: list[str], windows: list[str]
) -> dict[str, Callable]:
    """A POST per shape and window, each with its own key (the per-key rate limit)."""
    meta = engines.connect(info["meta_url"])
    site = info["sites"][0]
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=120)
    out: dict[str, Callable] = {}
    with meta.begin() as conn:
        have = {r.name for r in conn.execute(goals.site_goals_stmt([site]))}
        for goal in GOALS:
            if goal["name"] not in have:
                goals.create_goal(conn, site, **goal)
        for name in shapes:
            for window in windows:
                days = WINDOWS[window]
                key = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
                body = SHAPES[name].body(site, days)
                headers = {"Authorization": f"Bearer {key}"}
                out[f"{name}/{window}"] = lambda b=body, h=headers: http.post(
                    "/v1/query", json=b, headers=h
                ).raise_for_status()
    meta.dispose()
    return out


def _cpu(server: Server) -> float:
    """CPU seconds the server process has used (its DuckDB threads too): under a shared
    machine's load a call's CPU time varies less than its wall time."""
    t = server.ps.cpu_times()
    return float(t.user + t.system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("data_a", type=Path)
    parser.add_argument("data_b", type=Path)
    parser.add_argument("--shapes", default=",".join(SHAPES))
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--windows", default=",".join(WINDOWS), help="e.g. 30d")
    args = parser.parse_args()
    shapes = args.shapes.split(",")
    infos = [json.loads((d / "load.json").read_text()) for d in (args.data_a, args.data_b)]
    path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = f"{args.before}:{ROOT / 'gen' / 'python'}"
    servers = [Server(infos[0], args.data_a)]
    os.environ["PYTHONPATH"] = path
    servers.append(Server(infos[1], args.data_b))
    loads: list[float] = []
    try:
        calls = [
            _calls(info, s, shapes, args.windows.split(","))
            for info, s in zip(infos, servers, strict=True)
        ]
        times: dict[str, list[list[float]]] = {label: [[], []] for label in calls[0]}
        failed = {label: [0, 0] for label in calls[0]}
        cpus: dict[str, list[list[float]]] = {label: [[], []] for label in calls[0]}
        for round_ in range(args.warmup + args.requests):
            for label in calls[0]:
                for build in (0, 1) if round_ % 2 == 0 else (1, 0):
                    cpu = _cpu(servers[build])
                    started = time.perf_counter()
                    try:
                        calls[build][label]()
                    except httpx.HTTPStatusError as error:  # past the time budget under load
                        print(f"ab: {label} on {build}: {error.response.text}", flush=True)
                        failed[label][build] += 1
                        continue
                    if round_ >= args.warmup:
                        times[label][build].append((time.perf_counter() - started) * 1000)
                        cpus[label][build].append((_cpu(servers[build]) - cpu) * 1000)
                    servers[build].sample_rss()
            loads.append(os.getloadavg()[0])
            print(f"ab: round {round_ + 1} done, load {loads[-1]:.1f}", flush=True)
    finally:
        for s in servers:
            s.stop()
    out: dict[str, Any] = {}
    for label, (a, b) in times.items():
        if not a or not b:
            out[label] = {"failed": failed[label]}
            continue
        pa, pb = statistics.median(a), statistics.median(b)
        ca, cb = statistics.median(cpus[label][0]), statistics.median(cpus[label][1])
        out[label] = {"before": round(pa, 1), "after": round(pb, 1),
                      "after/before": round(pb / pa, 2), "failed": failed[label],
                      "cpu_before": round(ca, 1), "cpu_after": round(cb, 1)}  # fmt: skip
    out["rss_mib"] = {
        "before": round(servers[0].max_rss / 2**20),
        "after": round(servers[1].max_rss / 2**20),
    }
    out["load_avg_1m"] = {"min": min(loads), "median": statistics.median(loads), "max": max(loads)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
