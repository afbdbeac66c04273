"""Rate limiting: the sliding log's exact boundary, and 100 OK then 429 through Envoy."""

from conftest import Stack
from weldpulse.api.ratelimit import SlidingLogLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_log_boundary() -> None:
    clock = FakeClock()
    limiter = SlidingLogLimiter(limit=100, window=60, clock=clock)
    for i in range(100):
        decision = limiter.hit("k")
        assert decision.allowed and decision.remaining == 99 - i
        clock.now += 0.1  # requests at 1000.0 .. 1009.9
    clock.now = 1059.95
    denied = limiter.hit("k")
    assert not denied.allowed and denied.remaining == 0
    assert denied.retry_after == 1  # the first request leaves the window at 1060.0
    assert limiter.hit("other").allowed  # limits are per key
    clock.now = 1060.0
    assert limiter.hit("k").allowed  # exactly one slot freed...
    assert not limiter.hit("k").allowed  # ...and taken
    clock.now = 1130.0  # a full window after the last request
    assert limiter.hit("k").remaining == 99


def test_denied_requests_do_not_extend_the_wait() -> None:
    clock = FakeClock()
    limiter = SlidingLogLimiter(limit=2, window=60, clock=clock)
    limiter.hit("k"), limiter.hit("k")
    for _ in range(50):
        assert not limiter.hit("k").allowed
    clock.now += 60
    assert limiter.hit("k").allowed


def test_101st_request_is_429_with_retry_after(stack: Stack) -> None:
    key = stack.new_key("a")
    headers = {"Authorization": f"Bearer {key}"}
    remaining = []
    for _ in range(100):
        resp = stack.http.get("/v1/sites", headers=headers)
        assert resp.status_code == 200, resp.text
        assert resp.headers["x-ratelimit-limit"] == "100"
        remaining.append(int(resp.headers["x-ratelimit-remaining"]))
    assert remaining == list(range(99, -1, -1))
    resp = stack.http.get("/v1/sites", headers=headers)
    assert resp.status_code == 429
    assert (
        resp.json()
        == {
            "error": resp.json()["error"],
            "code": "RATE_LIMITED",
        }
        and "100 requests per 60 seconds" in resp.json()["error"]
    )
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    assert resp.headers["x-ratelimit-remaining"] == "0"
    # Another key of the same project is not affected.
    assert stack.get("/v1/sites").status_code == 200
