"""Fail closed: every RPC shape is authenticated and limited before its message, or refused."""

import io
import json
import logging
import stat
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import Stack
from google.protobuf import empty_pb2, wrappers_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from servers import spawn
from weldpulse.api.ratelimit import SlidingLogLimiter
from weldpulse.app import build_server
from weldpulse.config import ServerOptions
from weldpulse.observability import json_handler
from weldpulse.storage import accounts, engines
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc, ingest_pb2, ingest_pb2_grpc

TEST_SERVICE = "weldpulse.v1.TestService"
LIST_SITES = "/weldpulse.v1.AnalyticsService/ListSites"
Empty, Text = empty_pb2.Empty, wrappers_pb2.StringValue


class Probe:
    """A test-only servicer of every RPC shape; records which of its methods ever ran."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def ticks(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        self.ran.append("ticks")
        for i in range(3):
            yield Text(value=f"tick {i}")

    def upload(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
        self.ran.append("upload")
        return Text(value=f"{sum(1 for _ in requests)} parts")

    def chat(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        self.ran.append("chat")
        yield from requests

    def ping(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.ran.append("ping")
        return Text(value="pong")

    def handlers(self) -> list[grpc.GenericRpcHandler]:
        io = {"request_deserializer": Empty.FromString}
        out = {"response_serializer": Text.SerializeToString}
        return [
            grpc.method_handlers_generic_handler(
                TEST_SERVICE,
                {
                    "Ticks": grpc.unary_stream_rpc_method_handler(self.ticks, **io, **out),
                    "Upload": grpc.stream_unary_rpc_method_handler(self.upload, **io, **out),
                    "Chat": grpc.stream_stream_rpc_method_handler(self.chat, **io, **out),
                },
            ),
            # A service neither weldpulse's nor on the open list (health, reflection).
            grpc.method_handlers_generic_handler(
                "other.v1.Probe",
                {"Ping": grpc.unary_unary_rpc_method_handler(self.ping, **io, **out)},
            ),
        ]


@contextmanager
def probe_server(stack: Stack, **options: Any) -> Iterator[tuple[Probe, grpc.Channel, str]]:
    probe = Probe()
    limiter = SlidingLogLimiter(limit=options.pop("rate_limit", 1000))
    server, port = build_server(
        stack.metadata,
        stack.events,
        limiter=limiter,
        options=ServerOptions(**options),
        extra_handlers=probe.handlers(),
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as chan:
            yield probe, chan, f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


def _auth(stack: Stack, key: str = "a") -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {stack.keys[key]}"),)


def _ticks(chan: grpc.Channel) -> Callable[..., Any]:
    return chan.unary_stream(
        f"/{TEST_SERVICE}/Ticks",
        request_serializer=Empty.SerializeToString,
        response_deserializer=Text.FromString,
    )


def test_a_server_stream_without_a_key_is_refused_before_any_message(stack: Stack) -> None:
    with probe_server(stack) as (probe, chan, _):
        stream = _ticks(chan)(Empty(), timeout=10)
        with pytest.raises(grpc.RpcError) as refused:
            next(stream)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "Missing API key" in refused.value.details()
        # A free plan's key is refused too, before the servicer runs.
        with pytest.raises(grpc.RpcError) as forbidden:
            next(_ticks(chan)(Empty(), metadata=_auth(stack, "free"), timeout=10))
        assert forbidden.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert probe.ran == []
        # With a key it streams, and its quota comes before the first message.
        stream = _ticks(chan)(Empty(), metadata=_auth(stack), timeout=10)
        assert [t.value for t in stream] == ["tick 0", "tick 1", "tick 2"]
        headers = dict(stream.initial_metadata())
        assert headers["x-ratelimit-limit"] == "1000" and "x-request-id" in headers


def test_a_server_stream_past_the_rate_limit_is_refused_before_any_message(
    stack: Stack,
) -> None:
    key = stack.new_key("a")
    auth = (("authorization", f"Bearer {key}"),)
    with probe_server(stack, rate_limit=2) as (probe, chan, _):
        for _ in range(2):
            assert len(list(_ticks(chan)(Empty(), metadata=auth, timeout=10))) == 3
        stream = _ticks(chan)(Empty(), metadata=auth, timeout=10)
        with pytest.raises(grpc.RpcError) as limited:
            next(stream)
        assert limited.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "Rate limit exceeded" in limited.value.details()
        assert int(dict(limited.value.trailing_metadata())["retry-after"]) >= 1
        assert probe.ran == ["ticks", "ticks"]


@pytest.mark.parametrize("shape", ["Upload", "Chat"])
def test_client_streaming_methods_are_refused_at_once(stack: Stack, shape: str) -> None:
    with probe_server(stack) as (probe, chan, _):
        kind = chan.stream_unary if shape == "Upload" else chan.stream_stream
        call = kind(
            f"/{TEST_SERVICE}/{shape}",
            request_serializer=Empty.SerializeToString,
            response_deserializer=Text.FromString,
        )
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (_auth(stack), grpc.StatusCode.UNIMPLEMENTED),
        ):
            held = threading.Event()  # the client never finishes its request stream
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as refused:
                answer = call(_blocking(held), metadata=metadata, timeout=10)
                if shape == "Chat":
                    next(answer)
            held.set()
            assert refused.value.code() == code, refused.value.details()
            assert time.monotonic() - started < 5
        assert probe.ran == []


def test_only_health_and_reflection_are_open(stack: Stack) -> None:
    with probe_server(stack) as (probe, chan, _):
        ping = chan.unary_unary(
            "/other.v1.Probe/Ping",
            request_serializer=Empty.SerializeToString,
            response_deserializer=Text.FromString,
        )
        with pytest.raises(grpc.RpcError) as refused:
            ping(Empty(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert probe.ran == []
        assert ping(Empty(), metadata=_auth(stack), timeout=10).value == "pong"
        health = health_pb2_grpc.HealthStub(chan).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        answers = reflection_pb2_grpc.ServerReflectionStub(chan).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
        names = {s.name for s in next(answers).list_services_response.service}
        assert "weldpulse.v1.AnalyticsService" in names


def _blocking(release: threading.Event) -> Iterator[Any]:
    """A request stream that sends nothing until released: a call that never sends its message."""
    release.wait()
    return
    yield


def _stall(chan: grpc.Channel, count: int, release: threading.Event, **kw: Any) -> list[Future]:
    call = chan.stream_unary(
        LIST_SITES,
        request_serializer=pb.ListSitesRequest.SerializeToString,
        response_deserializer=pb.ListSitesResponse.FromString,
    )
    return [call.future(_blocking(release), timeout=60, **kw) for _ in range(count)]


def _error(call: Future, timeout: float | None = None) -> Any:
    """The RpcError a call ended with."""
    err = call.exception(timeout=timeout)
    assert isinstance(err, grpc.RpcError), err
    return err


def _keyed_p50(stub: analytics_pb2_grpc.AnalyticsServiceStub, auth: Any, n: int = 20) -> float:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        stub.ListSites(pb.ListSitesRequest(), metadata=auth, timeout=2)
        took.append(time.perf_counter() - started)
    return statistics.median(took)


def test_stalled_keyless_calls_are_refused_at_once_and_keyed_calls_keep_answering(
    stack: Stack,
) -> None:
    with probe_server(stack) as (_, chan, target):
        stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
        before = _keyed_p50(stub, _auth(stack))
        release = threading.Event()
        with grpc.insecure_channel(target) as attack:
            try:
                stalled = _stall(attack, 100, release)
                time.sleep(0.5)  # let them all reach the server
                during = _keyed_p50(stub, _auth(stack))
                codes = {_error(f, 5).code() for f in stalled}
            finally:
                release.set()
        print(f"\nkeyed ListSites p50: {before * 1000:.1f} ms alone, "
              f"{during * 1000:.1f} ms with 100 stalled keyless calls")  # fmt: skip
        assert codes == {grpc.StatusCode.UNAUTHENTICATED}


def test_one_key_cannot_hold_every_call_slot(stack: Stack) -> None:
    with probe_server(stack, max_calls_per_key=16) as (_, chan, target):
        stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
        hog = (("authorization", f"Bearer {stack.new_key('b')}"),)
        release = threading.Event()
        with grpc.insecure_channel(target) as attack:
            try:
                stalled = _stall(attack, 100, release, metadata=hog)
                time.sleep(0.5)
                during = _keyed_p50(stub, _auth(stack))
                refused = [f for f in stalled if f.done()]
                codes = {_error(f).code() for f in refused}
                assert len(refused) == 100 - 16 and codes == {grpc.StatusCode.RESOURCE_EXHAUSTED}
                assert "concurrent calls" in _error(refused[0]).details()
            finally:
                release.set()
        print(f"\nkeyed ListSites p50: {during * 1000:.1f} ms with one key holding 100 stalls")


def test_stalled_collects_hold_at_most_the_keyless_share(stack: Stack) -> None:
    with probe_server(stack) as (_, chan, target):
        stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
        before = _keyed_p50(stub, _auth(stack))
        release = threading.Event()
        collect = "/weldpulse.v1.IngestService/Collect"
        with grpc.insecure_channel(target) as attack:
            try:
                call = attack.stream_unary(
                    collect,
                    request_serializer=ingest_pb2.CollectRequest.SerializeToString,
                    response_deserializer=ingest_pb2.CollectResponse.FromString,
                )
                stalled = [call.future(_blocking(release), timeout=60) for _ in range(100)]
                time.sleep(0.5)
                during = _keyed_p50(stub, _auth(stack))
                refused = [f for f in stalled if f.done()]
                assert len(refused) == 100 - 40
                assert {_error(f).code() for f in refused} == {grpc.StatusCode.RESOURCE_EXHAUSTED}
            finally:
                release.set()
        print(f"\nkeyed ListSites p50: {before * 1000:.1f} ms alone, "
              f"{during * 1000:.1f} ms with 100 stalled collects")  # fmt: skip


def test_calls_refused_by_the_concurrency_limit_are_logged(stack: Stack) -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    logger = logging.getLogger("weldpulse")
    logger.addHandler(handler)
    try:
        with probe_server(stack, max_concurrent_rpcs=4) as (_, chan, target):
            release = threading.Event()
            with grpc.insecure_channel(target) as attack:
                try:
                    held = _stall(attack, 4, release, metadata=_auth(stack, "b"))
                    stub = analytics_pb2_grpc.AnalyticsServiceStub(chan)
                    assert _refused_within(5, stub, _auth(stack)) == (
                        "Concurrent RPC limit exceeded!"
                    )
                    assert not any(f.done() for f in held)
                    # Now that all four hold their slots (the first refusal may have
                    # met a call of ours still ending), the next one is surely logged.
                    assert _refused_within(5, stub, _auth(stack)) == (
                        "Concurrent RPC limit exceeded!"
                    )
                finally:
                    release.set()
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    warnings = [line for line in lines if line["level"] == "warning"]
    assert warnings[0]["event"] == "concurrent call limit reached: calls refused"
    assert warnings[0]["limit"] == 4 and warnings[0]["method"] == LIST_SITES


def _refused_within(seconds: float, stub: Any, auth: Any) -> str:
    """The details of the first refused ListSites (the stalled calls may still be connecting)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            stub.ListSites(pb.ListSitesRequest(), metadata=auth, timeout=5)
        except grpc.RpcError as err:
            return str(err.details())
        time.sleep(0.05)
    raise AssertionError("never refused")


def test_a_fresh_data_dir_and_its_stores_are_private(tmp_path: Path) -> None:
    data = tmp_path / "fresh" / "var"  # neither exists yet
    meta_url = f"sqlite:///{data}/metadata.sqlite3"
    events_url = f"duckdb:///{data}/events.duckdb"
    server = spawn(meta_url, events_url, tmp_path / "server.log")
    try:
        meta = engines.connect(meta_url)
        with meta.begin() as conn:
            project = accounts.create_project(conn, "Files", "pro")
            site = accounts.create_site(conn, project, "files.example")
        meta.dispose()
        ua = [("grpc.primary_user_agent", "Mozilla/5.0 (X11; Linux x86_64) Firefox/121.0")]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=ua) as chan:
            hit = ingest_pb2.CollectRequest(
                site_key=site["site_key"], name="pageview", url="https://files.example/"
            )
            ingest_pb2_grpc.IngestServiceStub(chan).Collect(hit, timeout=10)
        made = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
    finally:
        server.kill()
    # The events were written, so DuckDB's WAL exists; SQLite runs in WAL mode.
    assert {"metadata.sqlite3-wal", "metadata.sqlite3-shm", "events.duckdb.wal"} <= set(made)
    assert made == dict.fromkeys(made, 0o600), made
    for folder in (data, data.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
