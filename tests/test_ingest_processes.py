"""Ingest-only processes (WELDPULSE_INGEST_PROCESSES) behind Envoy beside the one process that
owns the events store: kill -9 of one mid-stream loses nothing acknowledged, on both engines."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from conftest import _postgres_database
from servers import OPEN_EDGE, spawn
from sqlalchemy import func, select
from weldpulse.envoy import Envoy
from weldpulse.ingest.processes import IngestProcesses
from weldpulse.storage import accounts, engines
from weldpulse.storage.schema import events

ACKED_BEFORE_KILL = 200
ACKED_TOTAL = 600
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"


@pytest.fixture(params=["duckdb", "postgres"])
def urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(metadata URL, events URL): SQLite + a DuckDB file, or one PostgreSQL database."""
    if request.param == "duckdb":
        yield f"sqlite:///{tmp_path}/metadata.sqlite3", f"duckdb:///{tmp_path}/events.duckdb"
        return
    pg = _postgres_database()
    url = next(pg)
    yield url, url
    next(pg, None)


def test_kill_9_of_an_ingest_only_process_loses_nothing_acknowledged(
    urls: tuple[str, str], tmp_path: Path
) -> None:
    meta_url, events_url = urls
    meta, store = engines.open_stores(meta_url, events_url)
    assert store is not None
    with meta.begin() as conn:
        site = accounts.create_site(conn, accounts.create_project(conn, "p"), "multi.example")
    store.dispose()  # the main server owns a DuckDB file alone
    log_path = str(tmp_path / "ingest-log.sqlite3")
    env = {"WELDPULSE_INGEST_LOG": log_path}
    main = spawn(meta_url, events_url, tmp_path / "main.log", **env)
    ingest = IngestProcesses(
        2,
        log_path,
        {**_env(meta_url, events_url, tmp_path), **env},
    )
    envoy = None
    acked: set[str] = set()
    lock = threading.Lock()
    stop = threading.Event()
    try:
        ingest.start()
        envoy = Envoy(
            main.port, log_path=tmp_path / "envoy.log", limits=OPEN_EDGE, ingest_ports=ingest.ports
        ).start()
        base = f"http://127.0.0.1:{envoy.http_port}"

        def client(worker: int) -> None:
            with httpx.Client(base_url=base, timeout=10) as http:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    path = f"/{worker}/{i}"
                    body = {"site_key": site["site_key"], "name": "pageview",
                            "url": f"https://multi.example{path}"}  # fmt: skip
                    resp = http.post("/v1/collect", json=body, headers={"User-Agent": UA})
                    if resp.status_code == 202:
                        with lock:
                            acked.add(path)

        workers = [threading.Thread(target=client, args=(w,)) for w in range(6)]
        for w in workers:
            w.start()
        try:
            _wait(lambda: len(acked) >= ACKED_BEFORE_KILL, "collects before the kill")
            ingest.procs[0].send_signal(signal.SIGKILL)
            ingest.procs[0].wait(10)
            _wait(lambda: len(acked) >= ACKED_TOTAL, "collects after the kill")
        finally:
            stop.set()
            for w in workers:
                w.join(20)
        # The collects went to the ingest-only processes, not to the main server.
        assert _stat(envoy, "cluster.grpc_ingest.upstream_rq_2xx") >= len(acked)
        assert _stat(envoy, "cluster.grpc_server.upstream_rq_total") == 0
        ingest.stop()
        main.terminate()  # a graceful stop stores everything logged first
        main.proc.wait(30)
    finally:
        if envoy:
            envoy.stop()
        ingest.stop()
        main.kill()
    meta, store = engines.open_stores(meta_url, events_url)
    assert store is not None
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


def _env(meta_url: str, events_url: str, tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "WELDPULSE_METADATA_URL": meta_url,
        "WELDPULSE_EVENTS_URL": events_url,
        "WELDPULSE_DATA_DIR": str(tmp),
    }


def _stat(envoy: Envoy, name: str) -> int:
    admin = envoy.admin_path.read_text().strip()
    with urllib.request.urlopen(f"http://{admin}/stats?format=json&filter=^{name}$") as resp:
        stats = json.load(resp)["stats"]
    assert len(stats) == 1, f"no stat {name}"
    return int(stats[0]["value"])


def _wait(done: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


WELDPULSE = str(Path(sys.executable).with_name("weldpulse"))


def test_up_with_ingest_processes_stores_their_collects_and_stops_them(tmp_path: Path) -> None:
    env = {**os.environ, "WELDPULSE_DATA_DIR": str(tmp_path), "WELDPULSE_GRPC_PORT": "0",
           "WELDPULSE_HTTP_PORT": "0", "WELDPULSE_INGEST_PROCESSES": "1"}  # fmt: skip
    meta, store = engines.open_stores(
        f"sqlite:///{tmp_path}/metadata.sqlite3", f"duckdb:///{tmp_path}/events.duckdb"
    )
    assert store is not None
    with meta.begin() as conn:
        site = accounts.create_site(conn, accounts.create_project(conn, "p"), "up.example")
    store.dispose()
    proc = subprocess.Popen([WELDPULSE, "up"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"1 ingest-only processes, JSON on http://127\.0\.0\.1:(\d+)/v1/", line)
        assert match, line
        body = {"site_key": site["site_key"], "name": "pageview", "url": "https://up.example/x"}
        resp = httpx.post(
            f"http://127.0.0.1:{match.group(1)}/v1/collect",
            json=body,
            headers={"User-Agent": UA},
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        # No ingest-only process outlives `up` (Envoy is the other child).
        assert children and not [c for c in children if Path(f"/proc/{c}").exists()]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with store.connect() as conn:
        stored = conn.execute(
            select(events.c.pathname).where(events.c.site_id == site["id"])
        ).scalars()
        assert list(stored) == ["/x"]
    store.dispose()
    meta.dispose()


def test_up_refuses_too_many_ingest_processes(tmp_path: Path) -> None:
    env = {**os.environ, "WELDPULSE_DATA_DIR": str(tmp_path), "WELDPULSE_INGEST_PROCESSES": "99"}
    done = subprocess.run([WELDPULSE, "up"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "WELDPULSE_INGEST_PROCESSES must be between 0 and 16" in done.stderr
