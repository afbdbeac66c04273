"""The live stream: updates equal /v1/realtime, fan-out, limits, revocation, shutdown, SSE framing."""

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from conftest import LiveProject, Stack
from prometheus_client import REGISTRY
from servers import OPEN_EDGE
from weldpulse.app import build_server
from weldpulse.envoy import Envoy
from weldpulse.storage import accounts
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc, live_pb2, live_pb2_grpc

ROUTE = "/v1/realtime/stream"


def _live(stack: Stack, port: int | None = None) -> tuple[grpc.Channel, Any]:
    chan = grpc.insecure_channel(f"127.0.0.1:{port or stack.grpc_port}")
    return chan, live_pb2_grpc.LiveServiceStub(chan)


def _auth(key: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {key}"),)


def _snapshots() -> float:
    return REGISTRY.get_sample_value("weldpulse_live_snapshots_total") or 0.0


def _open_streams() -> float:
    return REGISTRY.get_sample_value("weldpulse_live_streams") or 0.0


def _realtime(stack: Stack, key: str) -> list[dict[str, Any]]:
    resp = stack.http.get("/v1/realtime", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def _rows(update: live_pb2.StreamRealtimeResponse) -> list[dict[str, Any]]:
    fields = ("pathname", "country", "device_type", "referrer_source", "current_visitors")
    return [{f: getattr(row, f) for f in fields} for row in update.data]


def _instant(t: str) -> datetime:
    return datetime.strptime(t, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def test_updates_equal_realtime_and_one_snapshot_serves_every_subscriber(
    stack: Stack, live_project: LiveProject
) -> None:
    expected = _realtime(stack, live_project.key)
    assert expected and expected[0]["current_visitors"] == 2
    before = _snapshots()
    chan, stub = _live(stack)
    with chan:
        request = live_pb2.StreamRealtimeRequest(interval_seconds=1)
        streams = [stub.StreamRealtime(request, metadata=_auth(live_project.key)) for _ in range(4)]
        seen = [[next(s) for _ in range(4)] for s in streams]  # the first at once, then 3 ticks
        computed = _snapshots() - before
        for s in streams:
            s.cancel()
    for updates in seen:
        for update in updates:
            assert _rows(update) == expected
            assert update.current_visitors == sum(r["current_visitors"] for r in expected)
            assert abs((datetime.now(UTC) - _instant(update.t)).total_seconds()) < 30
        # One update per interval (1 s), even though nothing changed.
        gaps = [(_instant(b.t) - _instant(a.t)).total_seconds() for a, b in pairwise(updates[1:])]
        assert all(0 <= gap <= 2 for gap in gaps), gaps
    # Four subscribers x four updates, but one snapshot per tick (and at most one
    # extra for subscribers joining a running ticker): not one per subscriber.
    assert 4 <= computed <= 7, computed


def test_sse_through_envoy_frames_one_json_update_per_data_line(
    stack: Stack, live_project: LiveProject
) -> None:
    expected = _realtime(stack, live_project.key)
    headers = {"Authorization": f"Bearer {live_project.key}"}
    params = {"interval_seconds": "1", "site_id": live_project.site_id}
    with stack.http.stream("GET", ROUTE, params=params, headers=headers) as resp:
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("text/event-stream")
        assert int(resp.headers["x-ratelimit-remaining"]) >= 0
        events = []
        for line in resp.iter_lines():
            if line:
                assert line.startswith("data: "), line
                events.append(json.loads(line.removeprefix("data: ")))
            if len(events) == 2:
                break
    for event in events:
        assert sorted(event) == ["current_visitors", "data", "t"]
        assert event["data"] == expected and event["current_visitors"] == 2
        _instant(event["t"])
    # Bad parameters are the contract's 400 before any event, naming the field and its limit.
    for bad in ({"interval_seconds": "61"}, {"interval_seconds": "-1"}, {"site_id": "nope"}):
        resp = stack.http.get(ROUTE, params=bad, headers=headers)
        assert resp.status_code == 400, resp.text
        assert resp.json()["code"] == "BAD_REQUEST"
        assert next(iter(bad)) in resp.json()["error"]
    assert "1-60" in stack.http.get(ROUTE, params={"interval_seconds": "0"}
                                   | {"interval_seconds": "99"}, headers=headers).json()["error"]  # fmt: skip
    assert stack.http.get(ROUTE).json()["code"] == "UNAUTHORIZED"


def test_a_key_holds_five_streams_and_a_closed_one_frees_its_slot(
    stack: Stack, live_project: LiveProject
) -> None:
    key = stack.new_key("a")
    opened = _open_streams()
    chan, stub = _live(stack)
    with chan:
        request = live_pb2.StreamRealtimeRequest(interval_seconds=60)
        five = [stub.StreamRealtime(request, metadata=_auth(key)) for _ in range(5)]
        for s in five:
            next(s)
        assert _open_streams() == opened + 5
        sixth = stub.StreamRealtime(request, metadata=_auth(key))
        with pytest.raises(grpc.RpcError) as refused:
            next(sixth)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "at most 5" in refused.value.details()
        resp = stack.http.get(ROUTE, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 429 and resp.json()["code"] == "RATE_LIMITED", resp.text
        # Another key is not affected by this one's streams.
        other = stub.StreamRealtime(request, metadata=_auth(stack.keys["a"]))
        next(other)
        other.cancel()
        five[0].cancel()  # the client leaves: its slot is free within 5 s
        deadline = time.monotonic() + 5
        while True:
            again = stub.StreamRealtime(request, metadata=_auth(key))
            try:
                next(again)
                break
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                assert time.monotonic() < deadline, "a closed stream kept its slot"
                time.sleep(0.1)
        for s in [*five, again]:
            s.cancel()
    deadline = time.monotonic() + 5
    while _open_streams() != opened:
        assert time.monotonic() < deadline, "streams left open after their clients left"
        time.sleep(0.05)


def test_a_revoked_keys_streams_end_within_one_interval(
    stack: Stack, live_project: LiveProject
) -> None:
    with stack.metadata.begin() as conn:
        created = accounts.create_api_key(conn, stack.ids["a"], ["stats:read"])
    chan, stub = _live(stack)
    ended: list[float] = []

    def sse() -> None:
        headers = {"Authorization": f"Bearer {created['key']}"}
        with stack.http.stream("GET", ROUTE, params={"interval_seconds": 1}, headers=headers) as r:
            assert r.status_code == 200
            lines = [line for line in r.iter_lines() if line]  # ends cleanly, no error
        assert lines and all(line.startswith("data: {") for line in lines)
        ended.append(time.monotonic())

    with chan:
        stream = stub.StreamRealtime(
            live_pb2.StreamRealtimeRequest(interval_seconds=1), metadata=_auth(created["key"])
        )
        next(stream)
        reader = threading.Thread(target=sse)
        reader.start()
        time.sleep(0.5)
        with stack.metadata.begin() as conn:
            conn.execute(accounts.revoke_api_key_stmt(created["id"]))
        revoked = time.monotonic()
        with pytest.raises(grpc.RpcError) as gone:
            for _ in stream:
                pass
        assert gone.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert time.monotonic() - revoked <= 2.0  # one interval, plus the snapshot's time
        reader.join(10)
    assert ended and ended[0] - revoked <= 2.0


@pytest.fixture
def own_server(stack: Stack, tmp_path: Path) -> Iterator[tuple[Any, int, Envoy]]:
    server, port = build_server(stack.metadata, stack.events)
    envoy = Envoy(port, log_path=tmp_path / "envoy.log", limits=OPEN_EDGE).start()
    try:
        yield server, port, envoy
    finally:
        envoy.stop()
        server.stop(grace=None)


def test_shutdown_ends_streams_within_the_grace(
    stack: Stack, live_project: LiveProject, own_server: tuple[Any, int, Envoy]
) -> None:
    server, port, envoy = own_server
    chan, stub = _live(stack, port)
    outcome: dict[str, Any] = {}

    def sse() -> None:
        url = f"http://127.0.0.1:{envoy.http_port}{ROUTE}"
        headers = {"Authorization": f"Bearer {live_project.key}"}
        with httpx.stream("GET", url, headers=headers, timeout=30) as r:
            outcome["sse"] = [line for line in r.iter_lines() if line]  # a clean end

    with chan:
        stream = stub.StreamRealtime(
            live_pb2.StreamRealtimeRequest(), metadata=_auth(live_project.key)
        )
        assert _rows(next(stream)) == _realtime(stack, live_project.key)
        reader = threading.Thread(target=sse)
        reader.start()
        deadline = time.monotonic() + 10
        while _open_streams() < 2:  # both streams are open on the server
            assert time.monotonic() < deadline
            time.sleep(0.05)
        started = time.monotonic()
        stopped = server.stop(grace=5)
        with pytest.raises(grpc.RpcError) as ended:
            for _ in stream:
                pass
        assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
        assert stopped.wait(10)
        reader.join(10)
        took = time.monotonic() - started
    assert took < 5, took  # ended at once, not cut when the grace ran out
    assert outcome["sse"] and outcome["sse"][0].startswith("data: {")


def test_unary_calls_answer_while_streams_are_open(stack: Stack, live_project: LiveProject) -> None:
    chan, stub = _live(stack)
    with chan:
        request = live_pb2.StreamRealtimeRequest(interval_seconds=1)
        streams = [stub.StreamRealtime(request, metadata=_auth(live_project.key)) for _ in range(5)]
        for s in streams:
            next(s)
        sites = analytics_pb2_grpc.AnalyticsServiceStub(chan).ListSites(
            pb.ListSitesRequest(), metadata=_auth(live_project.key), timeout=5
        )
        assert [s.id for s in sites.data] == [live_project.site_id]
        for s in streams:
            s.cancel()
