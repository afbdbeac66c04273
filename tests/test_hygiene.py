"""Server hygiene: bounded concurrency, message and header sizes, keepalive, deadlines, logs, metrics."""

import io
import json
import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from conftest import Stack, Tenant
from dataset import DAY_END, DAY_START, DIRECT, ev
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from servers import spawn
from sqlalchemy import event, text
from weldpulse.app import build_server
from weldpulse.config import ServerOptions
from weldpulse.observability import json_handler
from weldpulse.storage import accounts, engines, writer
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc, ingest_pb2, ingest_pb2_grpc

RANGE = {"start": DAY_START, "end": DAY_END}


def _auth(stack: Stack, key: str = "b") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {stack.keys[key]}"),)


def test_calls_beyond_the_concurrency_bound_are_resource_exhausted(stack: Stack) -> None:
    # A blocking health servicer holds a worker per watch, like a slow query would.
    server, port = build_server(
        stack.metadata,
        stack.events,
        options=ServerOptions(max_concurrent_rpcs=2, rate_limit=1000),
        health_servicer=health.HealthServicer(experimental_non_blocking=False),
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            health_stub = health_pb2_grpc.HealthStub(chan)
            # Two long-lived health watches occupy both slots.
            watches = [health_stub.Watch(health_pb2.HealthCheckRequest()) for _ in range(2)]
            for watch in watches:
                assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
            stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
            with pytest.raises(grpc.RpcError) as refused:
                stub.ListSites(pb.ListSitesRequest(), metadata=_auth(stack), timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            watches[0].cancel()
            deadline = time.monotonic() + 10
            while True:  # the slot frees once the server has seen the cancellation
                try:
                    stub.ListSites(pb.ListSitesRequest(), metadata=_auth(stack), timeout=10)
                    break
                except grpc.RpcError as err:
                    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            watches[1].cancel()
    finally:
        server.stop(grace=None)


def test_oversized_grpc_message_is_refused(stack: Stack, channel: grpc.Channel) -> None:
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    big = pb.GetStatsRequest(start="x" * (5 * 1024 * 1024), end=DAY_END)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetStats(big, metadata=_auth(stack), timeout=10)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


@pytest.mark.parametrize(
    ("kind", "statuses"),
    [("body", {400: "BAD_REQUEST", 413: "PAYLOAD_TOO_LARGE"}), ("query", {400: "BAD_REQUEST"}),
     ("header", {431: "BAD_REQUEST"})],
)  # fmt: skip
def test_oversized_http_requests_are_4xx_json(
    stack: Stack, kind: str, statuses: dict[int, str]
) -> None:
    headers = {"Authorization": f"Bearer {stack.keys['b']}"}
    if kind == "body":
        resp = stack.http.request("GET", "/v1/stats", content=b"x" * 8_000_000, headers=headers)
    elif kind == "query":
        resp = stack.http.get("/v1/stats", params={"start": "x" * 50_000}, headers=headers)
    else:
        resp = stack.http.get("/v1/stats", headers={**headers, "x-big": "y" * 70_000})
    assert resp.status_code in statuses, resp.text
    assert resp.json()["code"] == statuses[resp.status_code]


def test_a_client_pinging_too_often_is_cut_off(stack: Stack) -> None:
    abusive = [
        ("grpc.keepalive_time_ms", 50),
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.max_pings_without_data", 0),
    ]
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}", options=abusive) as chan:
        watch = health_pb2_grpc.HealthStub(chan).Watch(health_pb2.HealthCheckRequest())
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as cut:
            next(watch)  # no more updates come; the server sends GOAWAY too_many_pings
        assert cut.value.code() == grpc.StatusCode.UNAVAILABLE
        assert (cut.value.details() or "").lower() == "too many pings"


def test_duckdb_statement_is_interrupted_when_its_call_ends(tmp_path: Path) -> None:
    engine = engines.connect(f"duckdb:///{tmp_path}/slow.duckdb")
    guard = engines.StatementGuard()
    outcome: list[BaseException | None] = []

    def slow_query() -> None:
        token = engines.current_guard.set(guard)
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT sum(hash(i)) FROM range(100000000000) t(i)")).all()
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)
        finally:
            engines.current_guard.reset(token)

    worker = threading.Thread(target=slow_query)
    worker.start()
    while not guard._running:  # wait until the statement runs
        time.sleep(0.01)
    guard.end()
    worker.join(60)
    assert not worker.is_alive(), "the statement was not interrupted"
    assert outcome and outcome[0] is not None and "interrupt" in str(outcome[0]).lower()
    assert guard.cancelled == 1
    token = engines.current_guard.set(guard)
    try:
        with pytest.raises(engines.CallCancelled), engine.connect() as conn:
            conn.execute(text("SELECT 1"))  # nothing new starts for an ended call
    finally:
        engines.current_guard.reset(token)
    engine.dispose()


def test_deadline_cancels_the_query_in_postgres(stack: Stack, channel: grpc.Channel) -> None:
    if stack.engine != "postgres":
        pytest.skip("a lock that blocks a query from another session needs PostgreSQL")
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    with stack.events.connect() as locker:
        locker.execute(text("LOCK TABLE events, sessions, visitor_days IN ACCESS EXCLUSIVE MODE"))
        with pytest.raises(grpc.RpcError) as late:
            stub.GetStats(pb.GetStatsRequest(**RANGE), metadata=_auth(stack), timeout=1)
        assert late.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        deadline = time.monotonic() + 10
        with stack.metadata.connect() as probe:
            while probe.execute(waiting).scalar() != 0:
                assert time.monotonic() < deadline, "the blocked query kept waiting"
                time.sleep(0.05)
        locker.rollback()


def test_a_call_reads_one_snapshot_while_events_are_committed(stack: Stack, tenant: Tenant) -> None:
    """A commit landing between a stats call's statements is in none of its figures.

    The events of a pageview and its session are committed together, so one
    answer must never count the session without the pageview.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    writer.record(stack.events, [ev(tenant.site_id, 1, now - timedelta(minutes=10), "/", DIRECT)])
    late = [ev(tenant.site_id, 2, now - timedelta(minutes=5), "/late", DIRECT)]
    wrote: list[bool] = []

    def commit_before_the_sessions_query(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        # Only the call's own statements run under a StatementGuard (not the collector's).
        if engines.current_guard.get() is None or wrote or "FROM sessions" not in statement:
            return
        wrote.append(True)
        other = threading.Thread(target=writer.record, args=(stack.events, late))
        other.start()  # another thread: another connection, committed before we go on
        other.join()

    today = {
        "site_id": tenant.site_id,
        "start": now.date().isoformat(),
        "end": now.date().isoformat(),
    }
    headers = {"Authorization": f"Bearer {tenant.read_key}"}
    event.listen(stack.events, "before_cursor_execute", commit_before_the_sessions_query)
    try:
        during = stack.http.get("/v1/stats", params=today, headers=headers)
    finally:
        event.remove(stack.events, "before_cursor_execute", commit_before_the_sessions_query)
    after = stack.http.get("/v1/stats", params=today, headers=headers)
    assert wrote, "the call ran no sessions statement"
    figures = ("visitors", "pageviews", "sessions")
    assert {k: during.json()["data"][0][k] for k in figures} == dict.fromkeys(figures, 1)
    assert {k: after.json()["data"][0][k] for k in figures} == dict.fromkeys(figures, 2)


def test_each_call_logs_one_json_line_with_the_request_id(stack: Stack) -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    logger = logging.getLogger("weldpulse")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        ok = stack.get("/v1/stats", key="b", **RANGE)
        bad = stack.get("/v1/stats", key="b", start="nope", end=DAY_END)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    by_id = {line["request_id"]: line for line in lines if line["event"] == "rpc"}
    for resp, code in ((ok, "OK"), (bad, "INVALID_ARGUMENT")):
        line = by_id[resp.headers["x-request-id"]]
        assert line["code"] == code and line["method"].endswith("/GetStats")
        assert line["level"] == "info" and line["duration_ms"] >= 0 and line["key_id"]
        assert line["timestamp"].endswith("Z")


def _scrape(port: int) -> dict[tuple[str, tuple], float]:
    body = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body)
        for s in family.samples
    }


def test_prometheus_metrics_on_their_own_port(stack: Stack, tmp_path: Path) -> None:
    events = stack.events_url if stack.engine == "postgres" else f"duckdb:///{tmp_path}/e.db"
    server = spawn(stack.metadata_url, events, tmp_path / "s.log", WELDPULSE_METRICS_PORT="0")
    try:
        assert server.metrics_port is not None
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as chan:
            stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
            for _ in range(3):
                stub.ListSites(pb.ListSitesRequest(), metadata=_auth(stack), timeout=10)
            with pytest.raises(grpc.RpcError):
                stub.ListSites(pb.ListSitesRequest(), timeout=10)
            ingest = ingest_pb2_grpc.IngestServiceStub(chan)
            with stack.metadata.begin() as conn:  # a site of its own: other tests count A's
                project = accounts.create_project(conn, "metrics")
                site_key = accounts.create_site(conn, project, "example.com")["site_key"]
            hit = ingest_pb2.CollectRequest(
                site_key=site_key, name="pageview", url="https://example.com/"
            )
            ingest.Collect(hit, timeout=10)
        # gRPC takes a caller's user agent from a channel option, not metadata.
        bot = [("grpc.primary_user_agent", "Googlebot/2.1 (+http://www.google.com/bot.html)")]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=bot) as chan:
            call = ingest_pb2_grpc.IngestServiceStub(chan).Collect.with_call(hit, timeout=10)
            assert ("x-weldpulse-dropped", "bot") in call[1].initial_metadata()
        samples = _scrape(server.metrics_port)
        deadline = time.monotonic() + 5  # acknowledged from the log, stored just after
        while samples.get(("weldpulse_ingested_events_total", ())) != 1:
            assert time.monotonic() < deadline, "the acknowledged collect was not stored"
            time.sleep(0.05)
            samples = _scrape(server.metrics_port)
        method = "/weldpulse.v1.AnalyticsService/ListSites"
        assert samples[("weldpulse_requests_total", (("code", "OK"), ("method", method)))] == 3
        unauth = (("code", "UNAUTHENTICATED"), ("method", method))
        assert samples[("weldpulse_requests_total", unauth)] == 1
        assert samples[("weldpulse_request_errors_total", unauth)] == 1
        assert samples[("weldpulse_request_duration_seconds_count", (("method", method),))] == 4
        assert samples[("weldpulse_ingested_events_total", ())] == 1
        assert samples[("weldpulse_dropped_events_total", (("reason", "bot"),))] == 1
        assert ("weldpulse_rate_limited_total", ()) in samples
        with pytest.raises(httpx.ConnectError):  # only on loopback: not on another address
            httpx.get(f"http://127.0.0.2:{server.metrics_port}/metrics", timeout=2)
    finally:
        server.kill()


@pytest.mark.parametrize(
    "path",
    ["/v1/stats", "/v1/pages", "/v1/referrers", "/v1/timeseries", "/v1/events", "/v1/geo",
     "/v1/devices", "/v1/realtime", "/v1/sites"],
)  # fmt: skip
def test_every_authenticated_answer_carries_quota_and_request_id(stack: Stack, path: str) -> None:
    key = stack.new_key("b")
    headers = {"Authorization": f"Bearer {key}"}
    params = {} if path in ("/v1/realtime", "/v1/sites") else RANGE
    ok = stack.http.get(path, params=params, headers=headers)
    bad = stack.http.get(path, params={**params, "limit": "0"} if path != "/v1/sites" else {
        "x": "1"}, headers=headers)  # fmt: skip
    assert ok.status_code == 200 and bad.status_code == 400
    assert ok.headers["x-ratelimit-limit"] == "100"
    assert ok.headers["x-ratelimit-remaining"] == "99"
    assert int(ok.headers["x-ratelimit-reset"]) >= 1
    for resp in (ok, bad):
        assert len(resp.headers.get_list("x-request-id")) == 1
        assert len(resp.headers["x-request-id"]) >= 16


def test_a_stopped_server_ends_its_writer_so_nothing_rolls_behind_it(stack: Stack) -> None:
    def writers() -> int:
        return sum(
            t.name in ("appender", "applier") and t.is_alive() for t in threading.enumerate()
        )

    before = writers()
    server, _ = build_server(stack.metadata, stack.events)
    assert writers() == before + 2  # the log appender and the store applier
    server.stop(grace=None).wait()
    deadline = time.monotonic() + 10
    while writers() > before:
        assert time.monotonic() < deadline, "the writer outlived its server"
        time.sleep(0.05)
