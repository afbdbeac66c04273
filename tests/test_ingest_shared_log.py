"""Two ingest servers on one log (NATS JetStream, or one box's shared file) and one PostgreSQL
store: kill -9 of one mid-stream loses nothing acknowledged."""

import signal
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import _postgres_database
from servers import behind_envoy
from sqlalchemy import func, select
from weldpulse.ingest.nats_log import NatsLog
from weldpulse.storage import accounts, engines
from weldpulse.storage.schema import events

NATS_URL = "nats://127.0.0.1:4222"
ACKED_BEFORE_KILL = 400
ACKED_TOTAL = 1000
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _nats_running() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(params=["nats", "shared file"])
def log_kind(request: pytest.FixtureRequest) -> Iterator[str]:
    """The log's kind; for NATS a stream of the test's own, deleted after it."""
    if request.param == "shared file":
        yield "shared file"
        return
    if not _nats_running():
        pytest.skip("NATS JetStream at 127.0.0.1:4222 is not running")
    name = f"WELDPULSE_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield name
    log = NatsLog(NATS_URL, name)
    log._run(log._js.delete_stream(name))
    log.close()


def test_two_ingest_servers_on_one_log_one_killed_lose_nothing_acknowledged(log_kind: str) -> None:
    pg = _postgres_database()
    url = next(pg)
    try:
        _run(url, log_kind)
    finally:
        next(pg, None)


def _backlog(log_kind: str, tmp: Path) -> int:
    if log_kind == "shared file":  # both servers' WELDPULSE_DATA_DIR (tests/servers.py)
        path = tmp / "ingest-log.sqlite3"
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT total(events) FROM records").fetchone()[0])
    log = NatsLog(NATS_URL, log_kind)
    try:
        return log.backlog()
    finally:
        log.close()


def _run(url: str, log_kind: str) -> None:
    meta, store = engines.open_stores(url, url)
    assert store is not None
    with meta.begin() as conn:
        site = accounts.create_site(conn, accounts.create_project(conn, "nats"), "nats.example")
    tmp = Path(tempfile.mkdtemp(prefix="weldpulse-nats-"))
    env = (
        {"WELDPULSE_INGEST_NATS_URL": NATS_URL, "WELDPULSE_INGEST_NATS_STREAM": log_kind}
        if log_kind != "shared file"
        else {}
    )
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    with behind_envoy(url, url, tmp, count=2, **env) as (servers, envoy):
        base = f"http://127.0.0.1:{envoy.http_port}"

        def client(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    path = f"/{worker}/{i}"
                    body = {"site_key": site["site_key"], "name": "pageview",
                            "url": f"https://nats.example{path}"}  # fmt: skip
                    resp = http.post("/v1/collect", json=body, headers={"User-Agent": UA})
                    if resp.status_code == 202:
                        with lock:
                            acked.add(path)

        workers = [threading.Thread(target=client, args=(w,)) for w in range(6)]
        for w in workers:
            w.start()
        try:
            _wait(lambda: len(acked) >= ACKED_BEFORE_KILL, "collects before the kill")
            servers[0].proc.send_signal(signal.SIGKILL)  # it may hold the applier lock
            servers[0].proc.wait(10)
            _wait(lambda: len(acked) >= ACKED_TOTAL, "collects after the kill")
        finally:
            stop.set()
            for w in workers:
                w.join(20)
        _wait(lambda: _backlog(log_kind, tmp) == 0, "the surviving server to apply the log")
    with store.connect() as conn:
        rows = conn.execute(
            select(events.c.pathname, func.count())
            .where(events.c.site_id == site["id"])
            .group_by(events.c.pathname)
        ).all()
    meta.dispose()
    store.dispose()
    stored = {r[0]: r[1] for r in rows}
    assert acked <= stored.keys(), f"{len(acked - stored.keys())} acknowledged collects lost"
    assert all(n == 1 for n in stored.values()), "collects stored twice"


def _wait(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
