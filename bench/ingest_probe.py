"""Ingestion throughput through Envoy: concurrent POST /v1/collect and 1,000-event imports.

Every collect and import is acknowledged once the durable ingest log has
fsync'd it (stored in the events store within about a second), so the rates
are of durable events. A 404 (an older server) is reported as not available.
A Python client shares the 2 cores with the server: `bench/ingest_wire.py`
drives the same routes with wrk, beside a no-op floor, before and after.
"""

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select
from weldpulse.storage import accounts, engines
from weldpulse.storage.schema import sites

CLIENTS = 32
COLLECTS_PER_CLIENT = 100
IMPORTS = 20
IMPORT_SIZE = 1000


UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)


def _collect_body(site_key: str, i: int) -> dict[str, Any]:
    return {"site_key": site_key, "name": "pageview", "url": f"https://big.example/c/{i % 50}"}


def _headers(i: int) -> dict[str, str]:
    # Through Envoy the visitor IP is the peer's, so visitors differ by user agent here.
    return {"User-Agent": f"{UA} probe/{i % 500}", "Content-Type": "application/json"}


def _site_key(info: dict[str, Any]) -> str:
    meta = engines.connect(info["meta_url"])
    with meta.connect() as conn:
        key = conn.execute(
            select(sites.c.site_key).where(sites.c.id == info["sites"][0])
        ).scalar_one()
    meta.dispose()
    return str(key)


def probe_collect(base: str, info: dict[str, Any]) -> dict[str, Any]:
    site_key = _site_key(info)
    with httpx.Client(base_url=base, timeout=30) as client:
        first = client.post("/v1/collect", json=_collect_body(site_key, 0), headers=_headers(0))
        if first.status_code == 404:
            return {"available": False, "status": 404}

    def worker(c: int) -> Counter:
        statuses: Counter = Counter()
        with httpx.Client(base_url=base, timeout=30) as client:
            for k in range(COLLECTS_PER_CLIENT):
                i = c * COLLECTS_PER_CLIENT + k
                r = client.post("/v1/collect", json=_collect_body(site_key, i), headers=_headers(i))
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
    meta = engines.connect(info["meta_url"])
    with meta.begin() as conn:
        key = accounts.create_api_key(conn, info["project"], ["events:write"])["key"]
    meta.dispose()
    now = datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    headers = {"Authorization": f"Bearer {key}"}

    def body(n: int) -> dict[str, Any]:
        return {
            "site_id": info["sites"][0],
            "events": [
                {"name": "pageview", "timestamp": now, "url": f"https://big.example/imp/{i % 100}",
                 "visitor_id": f"imp-{n}-{i % 300}", "user_agent": UA, "ip": "203.0.113.9",
                 "referrer": "https://www.google.com/"}
                for i in range(IMPORT_SIZE)
            ],
        }  # fmt: skip

    statuses: Counter = Counter()
    accepted = 0
    with httpx.Client(base_url=base, timeout=60) as client:
        first = client.post("/v1/import", json=body(0), headers=headers)
        if first.status_code == 404:
            return {"available": False, "status": 404}
        bodies = [body(n) for n in range(1, IMPORTS + 1)]
        started = time.perf_counter()
        for b in bodies:
            resp = client.post("/v1/import", json=b, headers=headers)
            statuses[resp.status_code] += 1
            accepted += resp.json().get("accepted", 0) if resp.status_code == 200 else 0
        elapsed = time.perf_counter() - started
    return {
        "available": True, "imports": IMPORTS, "size": IMPORT_SIZE, "accepted": accepted,
        "statuses": dict(statuses), "events_per_s": round(accepted / elapsed),
    }  # fmt: skip


def probe_ingestion(http_port: int, info: dict[str, Any]) -> dict[str, Any]:
    base = f"http://127.0.0.1:{http_port}"
    return {"collect": probe_collect(base, info), "import": probe_import(base, info)}
