"""The durable ingest log: same answers as direct writes, backpressure and a full log → 503."""

import dataclasses
import json
import random
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from conftest import Stack, Tenant
from servers import OPEN_EDGE
from sqlalchemy import func, select
from test_collect import CHROME_MAC, read
from weldpulse.app import build_server
from weldpulse.config import IngestOptions
from weldpulse.domain import Event, columns_of
from weldpulse.envoy import Envoy
from weldpulse.ingest.collector import Collector, _continue_sessions, decode, encode
from weldpulse.ingest.hits import Enriched
from weldpulse.storage import accounts, locks, rollups, writer
from weldpulse.storage.schema import events

DAY = datetime(2024, 5, 1)
RANGE = {"start": "2024-04-30", "end": "2024-05-02"}
ENDPOINTS = ("/v1/stats", "/v1/pages", "/v1/referrers", "/v1/timeseries", "/v1/events",
             "/v1/geo", "/v1/devices")  # fmt: skip
OLD_BATCH = 32  # what the group commit of concurrent collects stored at once


def _event_set(site: str, seed: int, n: int = 600) -> list[Enriched]:
    """Events around a midnight, some continuing yesterday's visitor (the previous-day id)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        ts = DAY - timedelta(minutes=40) + timedelta(seconds=i * 9 + rng.randrange(9))
        visitor = rng.randrange(40)
        after_midnight = ts >= DAY and ts - DAY <= timedelta(minutes=30)
        previous = 1000 + visitor if after_midnight else None
        event = Event(
            site_id=site,
            ts=ts,
            name=rng.choice(("pageview", "pageview", "pageview", "signup")),
            visitor_id=(1000 + visitor) if ts < DAY else (2000 + visitor),
            pathname=rng.choice(("/", "/a", "/b", "/c/d")),
            referrer_source=rng.choice(("Direct / None", "Google", "news.example")),
            country=rng.choice(("DE", "NL", "")),
            device_type=rng.choice(("Desktop", "Mobile")),
            browser=rng.choice(("Chrome", "Firefox")),
            os=rng.choice(("Linux", "iOS")),
            props={"plan": "pro"} if rng.random() < 0.2 else {},
            utm_source=rng.choice(("", "newsletter")),
        )
        out.append(Enriched(event, previous))
    # Arrival order: shuffled within each window the old path committed at once.
    for lo in range(0, n, OLD_BATCH):
        window = out[lo : lo + OLD_BATCH]
        rng.shuffle(window)
        out[lo : lo + OLD_BATCH] = window
    return out


def _site(stack: Stack, tenant: Tenant) -> str:
    with stack.metadata.begin() as conn:
        return str(accounts.create_site(conn, tenant.project_id, f"new.{tenant.domain}")["id"])


@pytest.mark.parametrize("seed", [1, 2])
def test_the_log_path_answers_exactly_as_direct_commits(
    stack: Stack, tenant: Tenant, seed: int
) -> None:
    old_site, new_site = tenant.site_id, _site(stack, tenant)
    # The old path: each group commit of up to 32 collects straight into the store.
    old = _event_set(old_site, seed)
    for lo in range(0, len(old), OLD_BATCH):
        window = _columns(old[lo : lo + OLD_BATCH])
        writer.record_columns(stack.events, _continue_sessions(stack.events, window))
    # The new path: one submission per collect through the log, acknowledged
    # while the store is held, then applied in one run (a window as wide as
    # the backlog: arrival order within it does not matter).
    collector = Collector(stack.events, ack="durable")
    try:
        with store_held(stack):
            for item in _event_set(new_site, seed):
                collector.submit([item]).result()
    finally:
        collector.close()  # applies what the log holds
    raw = {path: _answers(stack, tenant, path, old_site, new_site) for path in ENDPOINTS}
    rollups.roll_pending(stack.events, DAY.date() + timedelta(days=2))
    rolled = {path: _answers(stack, tenant, path, old_site, new_site) for path in ENDPOINTS}
    for path in ENDPOINTS:
        assert raw[path][0] == raw[path][1], path
        assert rolled[path][0] == rolled[path][1] == raw[path][0], path
    assert raw["/v1/stats"][0][0]["pageviews"] > 300


def test_records_json_dumps_wrote_before_orjson_still_replay() -> None:
    items = _event_set("s", 3, n=40)
    odd = dataclasses.replace(
        items[0].event, ts=DAY + timedelta(microseconds=7), pathname="/ü/\u2028", props={"k": "ß"}
    )
    items.append(Enriched(odd, 2**63 - 1))
    fields = [f.name for f in dataclasses.fields(Event)]
    rows = [[*(getattr(i.event, n) for n in fields), i.previous_visitor_id] for i in items]
    old = json.dumps(rows, default=datetime.isoformat, separators=(",", ":")).encode()
    # Beside them, events as rows (a collect's record) and as columns (an import's).
    bodies = [old, encode(items[:3]), encode(_columns(items[3:5])), encode(items[5:6])]
    assert decode(bodies) == _columns(items + items[:6])


def _columns(items: list[Enriched]) -> dict[str, list]:
    cols = columns_of([i.event for i in items])
    return {**cols, "previous_visitor_id": [i.previous_visitor_id for i in items]}


def _answers(stack: Stack, tenant: Tenant, path: str, *sites: str) -> list[list[dict]]:
    return [read(stack, tenant, path, site_id=site, **RANGE) for site in sites]


@contextmanager
def own_server(stack: Stack, options: IngestOptions) -> Iterator[httpx.Client]:
    server, port = build_server(stack.metadata, stack.events, ingest=options)
    envoy = Envoy(port, limits=OPEN_EDGE).start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=30) as http:
            yield http
    finally:
        envoy.stop()
        server.stop(grace=5).wait()


@contextmanager
def store_held(stack: Stack) -> Iterator[None]:
    """The store falls behind: an exclusive write (as a long roll takes) holds the applier."""
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with locks.write_transaction(stack.events, exclusive=True):
            entered.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    assert entered.wait(10)
    try:
        yield
    finally:
        release.set()
        holder.join()


def _fill_until_503(
    http: httpx.Client, tenant: Tenant, limit: int
) -> tuple[set[str], httpx.Response]:
    acked: set[str] = set()
    for i in range(limit):
        path = f"/fill/{i}"
        resp = http.post(
            "/v1/collect",
            json={"site_key": tenant.site_key, "name": "pageview",
                  "url": f"https://{tenant.domain}{path}"},
            headers={"User-Agent": CHROME_MAC},
        )  # fmt: skip
        if resp.status_code != 202:
            return acked, resp
        acked.add(path)
    raise AssertionError(f"no 503 after {limit} collects")


def _stored_paths(stack: Stack, site: str) -> dict[str, int]:
    with stack.events.connect() as conn:
        rows = conn.execute(
            select(events.c.pathname, func.count())
            .where(events.c.site_id == site)
            .group_by(events.c.pathname)
        )
        return {r[0]: r[1] for r in rows}


@pytest.mark.parametrize("cap", ["backlog", "log size"])
def test_a_store_falling_behind_gets_503_with_retry_after_and_loses_nothing(
    stack: Stack, tenant: Tenant, cap: str
) -> None:
    log_path = Path(tempfile.mkdtemp(prefix="weldpulse-log-")) / "ingest-log.sqlite3"
    options = (
        IngestOptions(log_path=str(log_path), max_backlog=100)
        if cap == "backlog"
        else IngestOptions(log_path=str(log_path), log_max_bytes=128 * 1024)
    )
    with own_server(stack, options) as http:
        with store_held(stack):
            acked, refused = _fill_until_503(http, tenant, 5000)
            assert refused.status_code == 503, refused.text
            body = refused.json()
            assert body["code"] == "SERVICE_UNAVAILABLE"
            assert ("100 events" if cap == "backlog" else "log is full") in body["error"]
            assert refused.headers["retry-after"] == "1"
            assert len(acked) >= 50
        # Once the store catches up, collects are taken again.
        for _ in range(100):
            again = http.post(
                "/v1/collect",
                json={"site_key": tenant.site_key, "name": "pageview",
                      "url": f"https://{tenant.domain}/again"},
                headers={"User-Agent": CHROME_MAC},
            )  # fmt: skip
            if again.status_code == 202:
                break
            threading.Event().wait(0.2)
        assert again.status_code == 202, again.text
    # Acknowledged once logged: the stopped server's writer stores the rest in its own time.
    stored = _stored_paths(stack, tenant.site_id)
    for _ in range(100):
        if acked | {"/again"} <= stored.keys():
            break
        threading.Event().wait(0.1)
        stored = _stored_paths(stack, tenant.site_id)
    assert acked <= stored.keys(), "acknowledged collects were lost"
    assert all(n == 1 for n in stored.values()), "a collect was stored twice"
    assert stored.keys() - acked == {"/again"}, "a refused collect was stored"
