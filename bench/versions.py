"""Two builds side by side on copies of one bench store: every query shape and GET preset,
one request of each per build in turn, so before/after medians share the machine's load.

    cd bench && python versions.py results/data-embedded-1000000 /tmp/before/server

The second argument is the `server/` directory of the other build (e.g. `git archive
<commit> server | tar -x -C /tmp/before`); it runs with that directory first on
PYTHONPATH, on a copy of the store (DuckDB allows one process per file).
"""

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from queries import RATIOS, SHAPES
from run import ENDPOINTS, WINDOWS, Server, summary, windows
from weldpulse.storage import accounts, engines


def _calls(info: dict[str, Any], server: Server, window: str) -> dict[str, Callable[[], None]]:
    meta = engines.connect(info["meta_url"])
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=120)
    site = info["sites"][0]
    start, end = windows()[window]
    calls: dict[str, Callable[[], None]] = {}

    def key() -> dict[str, str]:  # a key per series: the per-key rate limit must not bite
        with meta.begin() as conn:
            made = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
        return {"Authorization": f"Bearer {made}"}

    def post(body: dict, headers: dict[str, str]) -> Callable[[], None]:
        def call() -> None:
            http.post("/v1/query", json=body, headers=headers).raise_for_status()

        return call

    def get(path: str, params: dict, headers: dict[str, str]) -> Callable[[], None]:
        def call() -> None:
            http.get(path, params=params, headers=headers).raise_for_status()

        return call

    for name, shape in SHAPES.items():
        calls[name] = post(shape.body(site, WINDOWS[window]), key())
    for preset in dict.fromkeys(s.preset for s in SHAPES.values() if s.preset):
        params = dict(ENDPOINTS[preset][2], site_id=site)
        params |= {"start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
        calls[f"get:{preset}"] = get(f"/v1/{preset}", params, key())
    meta.dispose()
    return calls


def main(data_dir: str, other_server: str, requests: int = 20, warmup: int = 3) -> None:
    data = Path(data_dir)
    copy = data.with_name(data.name + "-before")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data, copy)
    info = json.loads((data / "load.json").read_text())
    info_before = {k: v.replace(data.name, copy.name) if k.endswith("_url") else v
                   for k, v in info.items()}  # fmt: skip
    os.environ["PYTHONPATH"] = other_server
    before = Server(info_before, copy)
    del os.environ["PYTHONPATH"]
    after = Server(info, data)
    builds = {"before": (info_before, before), "after": (info, after)}
    out: dict[str, Any] = {}
    try:
        for window in WINDOWS:
            calls = {f"{b}:{name}": call for b, (i, s) in builds.items()
                     for name, call in _calls(i, s, window).items()}  # fmt: skip
            for _ in range(warmup):
                for call in calls.values():
                    call()
            times: dict[str, list[float]] = {label: [] for label in calls}
            for _ in range(requests):
                for label, call in calls.items():
                    started = time.perf_counter()
                    call()
                    times[label].append((time.perf_counter() - started) * 1000)
            for label, series in times.items():
                out[f"{label}/{window}"] = summary(series)
    finally:
        before.stop()
        after.stop()
    print(json.dumps(out))
    report(out)


def report(out: dict[str, Any]) -> None:
    names = [*SHAPES, *(f"get:{p}" for p in dict.fromkeys(s.preset for s in SHAPES.values()
                                                           if s.preset))]  # fmt: skip
    cols = " | ".join(f"before {w} | after {w} | after/before" for w in WINDOWS)
    print(f"| shape | {cols} |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for n in names:
        cells = []
        for w in WINDOWS:
            b, a = out[f"before:{n}/{w}"]["p50"], out[f"after:{n}/{w}"]["p50"]
            cells += [f"{b:.0f}", f"{a:.0f}", f"{a / b:.2f}"]
        print(f"| {n} | " + " | ".join(cells) + " |")
    print("\n| ratio | allowed | before 30 d | after 30 d | before 90 d | after 90 d |")
    print("|---|---:|---:|---:|---:|---:|")
    for shape, (twin, allowed) in RATIOS.items():
        cells = [f"{out[f'{b}:{shape}/{w}']['p50'] / out[f'{b}:{twin}/{w}']['p50']:.2f}"
                 for w in WINDOWS for b in ("before", "after")]  # fmt: skip
        print(f"| {shape} / {twin} | {allowed} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *(int(a) for a in sys.argv[3:]))
