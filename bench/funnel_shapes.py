"""The funnel shapes of issue 11's "Fast" section: POST /v1/funnel bodies, targets, timing.

Per window, each shape in turn, one request each per round (as the query
shapes), so the session and 60-minute series see the same load.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from generate import END
from weldpulse.storage import accounts, engines

# Four steps the generated sessions do walk through (Zipf paths, 5% custom events).
STEPS = [{"page_path": "/"}, {"page_path": "/pricing"}, {"page_path": "/docs"},
         {"page_path": "/blog"}]  # fmt: skip


@dataclass(frozen=True)
class Funnel:
    window: dict[str, Any]
    # p50 through Envoy at 30 / 90 days, ms, at 10M events (issue 11); None: no target
    targets: tuple[float | None, float | None]

    def body(self, site: str, days: int) -> dict[str, Any]:
        """The request for the last `days` whole days before END."""
        start, end = END - timedelta(days=days), END - timedelta(days=1)
        return {
            "site_id": site,
            "date_range": {"start": start.date().isoformat(), "end": end.date().isoformat()},
            "steps": STEPS,
            "window": self.window,
        }


FUNNELS = {
    "session4": Funnel({"mode": "session"}, (300.0, 800.0)),
    "minutes60_4": Funnel({"mode": "minutes", "minutes": 60}, (500.0, None)),
}


def time_funnels(
    info: dict[str, Any], http_port: int, windows: dict[str, int], warmup: int, requests: int,
    summary: Callable[[list[float]], dict[str, float]],
) -> dict[str, Any]:  # fmt: skip
    """p50/p95 of every funnel shape through Envoy, with each step's visitors."""
    meta = engines.connect(info["meta_url"])
    http = httpx.Client(base_url=f"http://127.0.0.1:{http_port}", timeout=120)
    site = info["sites"][0]
    out: dict[str, Any] = {}
    try:
        for window, days in windows.items():
            calls: dict[str, Callable[[], None]] = {}
            for name, funnel in FUNNELS.items():
                with meta.begin() as conn:  # a key per series: the rate limit stays out of the way
                    key = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
                body, headers = funnel.body(site, days), {"Authorization": f"Bearer {key}"}
                first = http.post("/v1/funnel", json=body, headers=headers)
                if first.status_code != 200:
                    out[f"{name}/{window}"] = {"status": first.status_code, "error": first.text}
                    print(f"bench: {name}/{window}: {first.status_code} {first.text}", flush=True)
                    continue
                out[f"{name}/{window}"] = {
                    "status": 200, "visitors": [s["visitors"] for s in first.json()["steps"]]
                }  # fmt: skip

                def call(body: dict = body, headers: dict = headers) -> None:
                    http.post("/v1/funnel", json=body, headers=headers).raise_for_status()

                calls[name] = call
            for _ in range(warmup):
                for c in calls.values():
                    c()
            times: dict[str, list[float]] = {name: [] for name in calls}
            for _ in range(requests):
                for name, c in calls.items():
                    started = time.perf_counter()
                    c()
                    times[name].append((time.perf_counter() - started) * 1000)
            for name, series in times.items():
                out[f"{name}/{window}"] |= summary(series)
    finally:
        http.close()
        meta.dispose()
    return out


def funnel_lines(result: dict[str, Any]) -> list[str]:
    """The funnel shapes' table for the Markdown report."""
    funnels = result.get("funnel") or {}
    if not funnels:
        return []
    lines = [
        "",
        "### POST /v1/funnel through Envoy (ms): 4 steps (/ → /pricing → /docs → /blog)",
        "",
        "| funnel | window | p50 | p95 | visitors per step | target at 10M |",
        "|---|---|---:|---:|---|---|",
    ]
    for key, f in funnels.items():
        name, window = key.split("/")
        if f.get("status") != 200:
            lines.append(f"| {name} | {window} | **{f.get('status')}** | | | |")
            continue
        target = FUNNELS[name].targets[0 if window == "30d" else 1]
        verdict = ""
        if target is not None and result["events"] >= 10_000_000:
            verdict = f"{'met' if f['p50'] <= target else 'MISSED'} (≤ {target:g})"
        elif target is not None:
            verdict = f"(≤ {target:g})"
        lines.append(f"| {name} | {window} | {f['p50']} | {f['p95']} "
                     f"| {', '.join(map(str, f['visitors']))} | {verdict} |")  # fmt: skip
    return lines
