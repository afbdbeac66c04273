"""Every error comes back as {"error", "code"} with the contract's HTTP status, whoever makes it."""

import logging
import socket

import httpx
import pytest
from conftest import Stack
from dataset import DAY_END, DAY_START
from sqlalchemy import create_engine
from weldpulse.app import build_server
from weldpulse.envoy import Envoy
from weldpulse.storage import keys

RANGE = {"start": DAY_START, "end": DAY_END}
DATED = [
    "/v1/stats",
    "/v1/pages",
    "/v1/referrers",
    "/v1/timeseries",
    "/v1/events",
    "/v1/geo",
    "/v1/devices",
]
ALL = [*DATED, "/v1/realtime", "/v1/sites"]


def error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert sorted(body) == ["code", "error"] and body["code"] == code, body
    assert not any(h.startswith("grpc-") for h in resp.headers), resp.headers
    return body["error"]


@pytest.mark.parametrize("path", ALL)
def test_missing_key_is_401(stack: Stack, path: str) -> None:
    message = error(stack.get(path, key=None), 401, "UNAUTHORIZED")
    assert "API key" in message


@pytest.mark.parametrize(
    "header",
    ["Bearer ak_live_nope", f"Bearer {keys.new_api_key()}", "Basic dXNlcjpwYXNz", "Bearer"],
    ids=["malformed", "unknown", "wrong-scheme", "empty"],
)
def test_invalid_key_is_401(stack: Stack, header: str) -> None:
    resp = stack.http.get("/v1/sites", headers={"Authorization": header})
    error(resp, 401, "UNAUTHORIZED")


def test_revoked_key_is_401(stack: Stack) -> None:
    assert error(stack.get("/v1/sites", key="revoked"), 401, "UNAUTHORIZED") == "Invalid API key"


def test_free_plan_is_403(stack: Stack) -> None:
    message = error(stack.get("/v1/stats", key="free", **RANGE), 403, "FORBIDDEN")
    assert message == "API access requires a Pro or Enterprise plan"


@pytest.mark.parametrize("path", ["/v1/stats", "/v1/sites"])
def test_project_without_sites_is_403(stack: Stack, path: str) -> None:
    message = error(
        stack.get(path, key="empty", **({} if path == "/v1/sites" else RANGE)), 403, "FORBIDDEN"
    )
    assert message == "No sites configured for the project"


def test_key_without_read_scope_is_403(stack: Stack) -> None:
    error(stack.get("/v1/sites", key="a_write_only"), 403, "FORBIDDEN")


@pytest.mark.parametrize("path", DATED)
def test_missing_range_names_what_is_missing(stack: Stack, path: str) -> None:
    assert error(stack.get(path), 400, "BAD_REQUEST") == "Missing required parameters: start, end"
    only_end = stack.get(path, start=DAY_START)
    assert error(only_end, 400, "BAD_REQUEST") == "Missing required parameters: end"
    only_start = stack.get(path, end=DAY_END)
    assert error(only_start, 400, "BAD_REQUEST") == "Missing required parameters: start"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"start": "yesterday", "end": DAY_END}, "start"),
        ({"start": DAY_START, "end": "2024-13-01"}, "end"),
        ({"start": DAY_END, "end": DAY_START}, "end"),
        ({**RANGE, "limit": 0}, "limit"),
        ({**RANGE, "limit": 1001}, "limit"),
        ({**RANGE, "limit": -5}, "limit"),
    ],
    ids=["bad-start", "bad-end", "end-before-start", "limit-0", "limit-1001", "limit-negative"],
)
def test_invalid_parameters_are_named(stack: Stack, params: dict, named: str) -> None:
    assert named in error(stack.get("/v1/pages", **params), 400, "BAD_REQUEST")


@pytest.mark.parametrize("interval", ["1 fortnight", "0 hours", "hour", "1.5 hours", "5000 days"])
def test_unknown_interval_is_400(stack: Stack, interval: str) -> None:
    resp = stack.get("/v1/timeseries", interval=interval, **RANGE)
    assert "interval" in error(resp, 400, "BAD_REQUEST")


def test_too_many_buckets_is_400(stack: Stack) -> None:
    resp = stack.get("/v1/timeseries", interval="1 minute", start="2024-01-01", end="2024-03-01")
    assert "interval" in error(resp, 400, "BAD_REQUEST")


def test_parameter_of_wrong_type_is_400_from_envoy(stack: Stack) -> None:
    assert "limit" in error(stack.get("/v1/pages", limit="abc", **RANGE), 400, "BAD_REQUEST")


def test_unknown_parameter_is_400(stack: Stack) -> None:
    assert "colour" in error(stack.get("/v1/stats", colour="red", **RANGE), 400, "BAD_REQUEST")


@pytest.mark.parametrize("path", ["/v1/nope", "/v2/stats", "/", "/v1/stats/extra"])
def test_unknown_path_is_404(stack: Stack, path: str) -> None:
    error(stack.get(path), 404, "NOT_FOUND")


def test_wrong_method_is_404(stack: Stack) -> None:
    resp = stack.http.post("/v1/stats", headers={"Authorization": f"Bearer {stack.keys['a']}"})
    error(resp, 404, "NOT_FOUND")


def test_server_down_is_503() -> None:
    # Envoy in front of a port nobody listens on (bound, then released).
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    envoy = Envoy(port).start()
    try:
        resp = httpx.get(f"http://127.0.0.1:{envoy.http_port}/v1/sites", timeout=10)
        error(resp, 503, "SERVICE_UNAVAILABLE")
    finally:
        envoy.stop()


def test_internal_error_is_500_without_internals(
    stack: Stack, tmp_path, caplog: pytest.LogCaptureFixture
) -> None:
    # A server whose events store was never migrated: every query fails inside.
    broken = create_engine(f"duckdb:///{tmp_path}/unmigrated.duckdb")
    server, port = build_server(stack.metadata, broken)
    envoy = Envoy(port).start()
    try:
        with caplog.at_level(logging.ERROR, logger="weldpulse"):
            resp = httpx.get(
                f"http://127.0.0.1:{envoy.http_port}/v1/stats",
                params=RANGE,
                headers={"Authorization": f"Bearer {stack.keys['b']}"},
                timeout=10,
            )
        assert error(resp, 500, "INTERNAL_ERROR") == "Internal server error"
        assert any("unhandled error" in r.message and r.exc_info for r in caplog.records)
    finally:
        envoy.stop()
        server.stop(grace=None)
        broken.dispose()
