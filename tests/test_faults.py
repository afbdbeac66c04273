"""Faults: the gRPC server or the database going away, and SIGTERM under load, seen through Envoy."""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from conftest import Stack, seed
from grpc_health.v1 import health_pb2, health_pb2_grpc
from servers import ServerProcess, behind_envoy, spawn
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError
from weldpulse.app import build_server
from weldpulse.envoy import Envoy
from weldpulse.storage import accounts, engines, schema
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _contract_error(resp: httpx.Response, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert sorted(resp.json()) == ["code", "error"] and resp.json()["code"] == code


def _until_ok(get, seconds: float = 15) -> httpx.Response:
    """Polls until a 200; everything before it must be the contract's 503."""
    deadline = time.monotonic() + seconds
    while True:
        resp = get()
        if resp.status_code == 200:
            return resp
        _contract_error(resp, 503, "SERVICE_UNAVAILABLE")
        assert time.monotonic() < deadline, "no recovery"
        time.sleep(0.1)


def test_grpc_server_restart_behind_envoy(stack: Stack, tmp_path: Path) -> None:
    server, port = build_server(stack.metadata, stack.events)
    envoy = Envoy(port, log_path=tmp_path / "envoy.log").start()
    url = f"http://127.0.0.1:{envoy.http_port}/v1/sites"
    headers = {"Authorization": f"Bearer {stack.new_key('b')}"}
    try:
        assert httpx.get(url, headers=headers, timeout=10).status_code == 200
        server.stop(grace=None).wait()
        for _ in range(3):
            _contract_error(httpx.get(url, headers=headers, timeout=10), 503, "SERVICE_UNAVAILABLE")
        server, again = build_server(stack.metadata, stack.events, port=port)
        assert again == port
        resp = _until_ok(lambda: httpx.get(url, headers=headers, timeout=10))
        assert resp.json()["data"][0]["id"] == stack.ids["b_site"]
    finally:
        envoy.stop()
        server.stop(grace=None)


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free port, so it can be stopped mid-test.

    The machine's shared server is never touched: others run tests against it.
    """

    def __init__(self) -> None:
        if not (PG_BIN / "initdb").exists():
            pytest.skip(f"PostgreSQL server binaries not found in {PG_BIN}")
        self.dir = Path(tempfile.mkdtemp(prefix="weldpulse-pg-"))
        self.port = _free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            shutil.chown(self.dir, "postgres")
            self.as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", f"{self.dir}/data", "-A", "trust", "-U", "postgres", "-N")
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / tool), *args], check=True, capture_output=True
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-o", options, "-l",
                  f"{self.dir}/log", "-w", "start")  # fmt: skip

    def stop(self) -> None:
        self._run("pg_ctl", "-D", f"{self.dir}/data", "-m", "fast", "-w", "stop")

    def remove(self) -> None:
        subprocess.run(
            [*self.as_postgres, str(PG_BIN / "pg_ctl"), "-D", f"{self.dir}/data", "-m",
             "immediate", "stop"], capture_output=True, check=False
        )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    try:
        yield pg
    finally:
        pg.remove()


def test_database_down_is_503_then_recovers(private_postgres: PrivatePostgres) -> None:
    metadata, events = engines.open_stores(private_postgres.url, private_postgres.url)
    assert events is not None
    ids, keys = seed(metadata, events)
    server, port = build_server(metadata, events)
    envoy = Envoy(port).start()
    headers = {"Authorization": f"Bearer {keys['a']}"}
    params = {"start": "2024-01-15", "end": "2024-01-15"}

    def get(path: str) -> httpx.Response:
        return httpx.get(
            f"http://127.0.0.1:{envoy.http_port}{path}", params=params, headers=headers, timeout=30
        )

    try:
        before = get("/v1/stats")
        assert before.status_code == 200
        private_postgres.stop()
        for path in ("/v1/stats", "/v1/pages", "/v1/geo"):
            resp = get(path)
            _contract_error(resp, 503, "SERVICE_UNAVAILABLE")
            assert resp.json()["error"] == "Database unavailable, try again shortly"
        private_postgres.start()
        assert _until_ok(lambda: get("/v1/stats")).json() == before.json()
        assert (
            ids["a_site1"]
            in httpx.get(
                f"http://127.0.0.1:{envoy.http_port}/v1/sites", headers=headers, timeout=30
            ).text
        )
    finally:
        envoy.stop()
        server.stop(grace=None)
        metadata.dispose()
        events.dispose()


@pytest.fixture
def two_servers(stack: Stack, tmp_path: Path) -> Iterator[tuple[list[ServerProcess], Envoy]]:
    shared = stack.events_url if stack.engine == "postgres" else None
    with behind_envoy(
        stack.metadata_url,
        shared,
        tmp_path,
        WELDPULSE_RATE_LIMIT="1000000",
        WELDPULSE_SHUTDOWN_GRACE_SECONDS="10",
        # Longer than Envoy's health-check interval (0.5 s): Envoy sees
        # NOT_SERVING and moves traffic before calls are refused.
        WELDPULSE_DRAIN_SECONDS="2",
    ) as both:
        yield both


def test_sigterm_under_load_fails_no_call(
    stack: Stack, two_servers: tuple[list[ServerProcess], Envoy]
) -> None:
    servers, envoy = two_servers
    leaving = servers[0]
    headers = {"Authorization": f"Bearer {stack.new_key('b')}"}
    stop = threading.Event()
    results: Counter[int] = Counter()
    failures: list[str] = []
    lock = threading.Lock()

    def load() -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{envoy.http_port}") as client:
            while not stop.is_set():
                try:
                    resp = client.get("/v1/sites", headers=headers, timeout=30)
                    status, text = resp.status_code, resp.text
                except httpx.HTTPError as err:
                    status, text = 0, repr(err)
                with lock:
                    results[status] += 1
                    if status != 200:
                        failures.append(text)

    with grpc.insecure_channel(f"127.0.0.1:{leaving.port}") as chan:
        watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        workers = [threading.Thread(target=load) for _ in range(8)]
        for w in workers:
            w.start()
        # Until both servers carry load (on a busy machine 1 s may not be enough).
        deadline = time.monotonic() + 30
        while min(s.logs().count('"code": "OK"') for s in servers) <= 10:
            assert time.monotonic() < deadline, "the load never reached both servers"
            time.sleep(0.1)
        leaving.terminate()
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
        watch.cancel()  # an open watch is a call in flight: it would hold the full grace
        assert leaving.proc.wait(timeout=30) == 0
        time.sleep(1.0)  # the remaining server carries the load alone
        stop.set()
        for w in workers:
            w.join()
    print(f"SIGTERM under load: {dict(results)}")
    assert not failures, failures[:3]
    assert results[200] > 100
    for server in servers:
        assert server.logs().count('"code": "OK"') > 10  # both took part
    assert '"event": "stopped"' in leaving.logs()


def test_sigterm_lets_a_call_in_flight_finish(stack: Stack, tmp_path: Path) -> None:
    if stack.engine != "postgres":
        pytest.skip("holding a call in flight uses a PostgreSQL lock")
    server = spawn(stack.metadata_url, stack.events_url, tmp_path / "s.log")
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    outcome: list[object] = []
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
            auth = (("authorization", f"Bearer {stack.keys['b']}"),)
            watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest())
            assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            with stack.events.connect() as locker:
                # Every events-store table a stats query may read (raw events or rollups).
                locker.execute(
                    text("LOCK TABLE events, sessions, visitor_days IN ACCESS EXCLUSIVE MODE")
                )

                def call() -> None:
                    request = pb.GetStatsRequest(start="2024-01-15", end="2024-01-15")
                    try:
                        outcome.append(stub.GetStats(request, metadata=auth, timeout=30))
                    except grpc.RpcError as err:
                        outcome.append(err)

                caller = threading.Thread(target=call)
                caller.start()
                deadline = time.monotonic() + 20
                with stack.metadata.connect() as probe:
                    while probe.execute(waiting).scalar() == 0:  # the call is in flight
                        assert time.monotonic() < deadline, "the call never waited on the lock"
                        time.sleep(0.02)
                server.terminate()
                assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
                time.sleep(0.5)
                assert server.proc.poll() is None, "exited with a call in flight"
                locker.rollback()  # the query can finish now
            caller.join(30)
        assert server.proc.wait(timeout=15) == 0
        assert len(outcome) == 1 and isinstance(outcome[0], pb.GetStatsResponse), outcome
    finally:
        server.kill()


def test_collects_during_a_database_outage_are_logged_and_stored_once_after_it(
    private_postgres: PrivatePostgres,
) -> None:
    metadata, events = engines.open_stores(private_postgres.url, private_postgres.url)
    assert events is not None
    with metadata.begin() as conn:
        project = accounts.create_project(conn, "outage")
        site = accounts.create_site(conn, project, "outage.example")
    server, port = build_server(metadata, events)
    envoy = Envoy(port).start()
    ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"

    def collect(path: str) -> httpx.Response:
        body = {
            "site_key": site["site_key"],
            "name": "pageview",
            "url": f"https://outage.example{path}",
        }
        return httpx.post(
            f"http://127.0.0.1:{envoy.http_port}/v1/collect",
            json=body,
            headers={"User-Agent": ua},
            timeout=30,
        )

    try:
        assert collect("/before").status_code == 202
        private_postgres.stop()
        # The durable log acknowledges while the store is down; its applier retries.
        for i in range(3):
            assert collect(f"/during{i}").status_code == 202
        private_postgres.start()
        assert collect("/after").status_code == 202
        expected = ["/after", "/before", "/during0", "/during1", "/during2"]
        deadline = time.monotonic() + 15
        while True:
            try:
                with events.connect() as conn:
                    paths = sorted(conn.execute(select(schema.events.c.pathname)).scalars())
            except OperationalError:  # the pool's connections died with the server
                paths = []
            if paths == expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        # Every acknowledged event exactly once, in the store after the outage.
        assert paths == expected
    finally:
        envoy.stop()
        server.stop(grace=None)
        metadata.dispose()
        events.dispose()
