"""Two ingest servers on one NATS JetStream log and one PostgreSQL store: kill -9 loses nothing."""

import signal
import socket
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
ACKED_BEFORE_KILL = 600
ACKED_TOTAL = 1500
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


def _nats_running() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 4222), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def stream() -> Iterator[str]:
    if not _nats_running():
        pytest.skip("NATS JetStream at 127.0.0.1:4222 is not running")
    name = f"WELDPULSE_TEST_{uuid.uuid4().hex[:8].upper()}"
    yield name
    log = NatsLog(NATS_URL, name)
    log._run(log._js.delete_stream(name))
    log.close()


def test_two_ingest_servers_on_nats_one_killed_lose_nothing_acknowledged(stream: str) -> None:
    pg = _postgres_database()
    url = next(pg)
    try:
        _run(url, stream)
    finally:
        next(pg, None)


def _run(url: str, stream: str) -> None:
    meta, store = engines.open_stores(url, url)
    assert store is not None
    with meta.begin() as conn:
        site = accounts.create_site(conn, accounts.create_project(conn, "nats"), "nats.example")
    tmp = Path(tempfile.mkdtemp(prefix="weldpulse-nats-"))
    env = {"WELDPULSE_INGEST_NATS_URL": NATS_URL, "WELDPULSE_INGEST_NATS_STREAM": stream}
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
        log = NatsLog(NATS_URL, stream)
        try:
            _wait(lambda: log.backlog() == 0, "the surviving server to apply the log")
        finally:
            log.close()
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
