"""Ingestion throughput through Envoy: concurrent POST /v1/collect and 1,000-event imports.

The routes belong to the ingestion work (issue 3); when Envoy answers 404 the
probe reports them as not available instead of failing the run.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from weldpulse import accounts, db

CLIENTS = 32
COLLECTS_PER_CLIENT = 100
IMPORTS = 20
IMPORT_SIZE = 1000


def _collect_body(i: int) -> dict[str, Any]:
    return {"domain": "big.example", "name": "pageview", "url": f"https://big.example/c/{i % 50}"}


def _headers(i: int) -> dict[str, str]:
    return {
        "User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0 Safari/537.36",
        "X-Forwarded-For": f"10.{i // 65536 % 256}.{i // 256 % 256}.{i % 256}",
        "Content-Type": "application/json",
    }


def probe_collect(base: str) -> dict[str, Any]:
    with httpx.Client(base_url=base, timeout=30) as client:
        first = client.post("/v1/collect", json=_collect_body(0), headers=_headers(0))
        if first.status_code == 404:
            return {"available": False, "status": 404}

    def worker(c: int) -> Counter:
        statuses: Counter = Counter()
        with httpx.Client(base_url=base, timeout=30) as client:
            for k in range(COLLECTS_PER_CLIENT):
                i = c * COLLECTS_PER_CLIENT + k
                r = client.post("/v1/collect", json=_collect_body(i), headers=_headers(i))
                statuses[r.status_code] += 1
        return statuses

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        statuses = sum(pool.map(worker, range(CLIENTS)), Counter())
    elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "available": True, "clients": CLIENTS, "requests": sum(statuses.values()),
        "statuses": dict(statuses), "per_s": round(ok / elapsed),
    }  # fmt: skip


def probe_import(base: str, info: dict[str, Any]) -> dict[str, Any]:
    meta = db.connect(info["meta_url"])
    with meta.begin() as conn:
        key = accounts.create_api_key(conn, info["project"], ["events:write"])["key"]
    meta.dispose()
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    headers = {"Authorization": f"Bearer {key}"}

    def body(n: int) -> dict[str, Any]:
        return {
            "site_id": info["sites"][0],
            "events": [
                {"name": "pageview", "timestamp": now, "pathname": f"/imp/{i % 100}",
                 "visitor_id": f"imp-{n}-{i % 300}", "referrer_source": "Direct / None"}
                for i in range(IMPORT_SIZE)
            ],
        }  # fmt: skip

    statuses: Counter = Counter()
    with httpx.Client(base_url=base, timeout=60) as client:
        first = client.post("/v1/import", json=body(0), headers=headers)
        if first.status_code == 404:
            return {"available": False, "status": 404}
        started = time.perf_counter()
        for n in range(1, IMPORTS + 1):
            statuses[client.post("/v1/import", json=body(n), headers=headers).status_code] += 1
        elapsed = time.perf_counter() - started
    ok = sum(n for s, n in statuses.items() if 200 <= s < 300)
    return {
        "available": True, "imports": IMPORTS, "size": IMPORT_SIZE,
        "statuses": dict(statuses), "events_per_s": round(ok * IMPORT_SIZE / elapsed),
    }  # fmt: skip


def probe_ingestion(http_port: int, info: dict[str, Any]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{http_port}"
    return {"collect": probe_collect(base), "import": probe_import(base, info)}
