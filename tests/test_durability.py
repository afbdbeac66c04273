"""kill -9 of the server during 10,000 acknowledged collects loses and repeats none of them.

The server acknowledges from its durable log; after the kill a restarted
server replays what the log holds and the store is not yet given.
"""

import signal
import sqlite3
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from conftest import _postgres_database
from servers import spawn
from sqlalchemy import func, select
from weldpulse.config import default_log_path
from weldpulse.storage import accounts, engines
from weldpulse.storage.schema import events
from weldpulse.v1 import ingest_pb2, ingest_pb2_grpc

ACKED_BEFORE_KILL = 10_000
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"


@pytest.fixture(params=["embedded", "postgres"])
def urls(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    if request.param == "postgres":
        pg = _postgres_database()
        url = next(pg)
        yield url, url
        next(pg, None)
    else:
        tmp = tempfile.mkdtemp(prefix="weldpulse-kill-")
        yield f"sqlite:///{tmp}/metadata.sqlite3", f"duckdb:///{tmp}/events.duckdb"


def test_kill_9_loses_no_acknowledged_collect(urls: tuple[str, str]) -> None:
    meta_url, events_url = urls
    meta, store = engines.open_stores(meta_url, events_url)
    with meta.begin() as conn:
        site = accounts.create_site(conn, accounts.create_project(conn, "kill"), "kill.example")
    meta.dispose()
    assert store is not None
    store.dispose()  # DuckDB: one process at a time

    folder = Path(tempfile.mkdtemp())
    server = spawn(meta_url, events_url, folder / "server.log")
    port = server.port
    acked = 0
    acked_paths: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()

    def client(worker: int) -> None:
        nonlocal acked
        options = [("grpc.primary_user_agent", UA)]  # gRPC's way to set the user agent
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=options) as chan:
            stub = ingest_pb2_grpc.IngestServiceStub(chan)
            for i in range(5000):
                if stop.is_set():
                    return
                request = ingest_pb2.CollectRequest(
                    site_key=site["site_key"],
                    name="pageview",
                    url=f"https://kill.example/{worker}/{i}",
                )
                try:
                    stub.Collect(request, timeout=5)
                except grpc.RpcError:
                    return  # the server is gone
                with lock:
                    acked += 1
                    acked_paths.add(f"/{worker}/{i}")

    try:
        workers = [threading.Thread(target=client, args=(w,)) for w in range(8)]
        for w in workers:
            w.start()
        deadline = time.monotonic() + 180
        while acked < ACKED_BEFORE_KILL and time.monotonic() < deadline:
            time.sleep(0.05)
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(10)
        stop.set()
        for w in workers:
            w.join(10)
    finally:
        server.kill()

    # A restart replays the log; killed once more mid-replay, the next start resumes.
    log_path = default_log_path(folder, events_url)
    for kill_again in (True, False):
        server = spawn(meta_url, events_url, folder / "server.log")
        try:
            deadline = time.monotonic() + 60
            while _backlog(log_path) and time.monotonic() < deadline and not kill_again:
                time.sleep(0.1)
            assert kill_again or _backlog(log_path) == 0, "the restarted server did not replay"
        finally:
            if kill_again:
                server.proc.send_signal(signal.SIGKILL)
                server.proc.wait(10)
            else:
                server.terminate()
                server.proc.wait(30)
            server.kill()

    meta, store = engines.open_stores(meta_url, events_url)
    assert store is not None
    with store.connect() as conn:
        stored = conn.execute(
            select(events.c.pathname, func.count())
            .where(events.c.site_id == site["id"])
            .group_by(events.c.pathname)
        ).all()
    store.dispose()
    meta.dispose()
    counts: dict[str, int] = {r[0]: r[1] for r in stored}
    print(f"kill -9: {acked} acknowledged, {sum(counts.values())} stored")
    assert acked >= ACKED_BEFORE_KILL, "the server acknowledged too few collects before the kill"
    assert acked == len(acked_paths)
    assert not acked_paths - counts.keys(), "acknowledged collects were lost"
    assert all(n == 1 for n in counts.values()), "collects were stored twice"
    # At most the 8 in flight at the kill were stored without an answer.
    assert len(counts) <= acked + 8


def _backlog(log_path: Path) -> int:
    """Events the durable log holds that are not yet in the store."""
    with sqlite3.connect(f"file:{log_path}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT total(events) FROM records").fetchone()[0])
