"""The sliding-log rate limit shared by every server process through Redis.

One Lua script per request trims the key's log, counts it and appends, so
concurrent requests on several processes can never overshoot the limit;
Redis's own clock timestamps the entries, so the servers' clocks need not
agree. When Redis cannot be reached the limiter fails open to the
in-process sliding log: every request is still limited, per process, and
no request fails because of Redis.
"""

import math
import threading
import time
import uuid

import redis
import structlog
from redis.backoff import NoBackoff
from redis.retry import Retry
from weldpulse.api.ratelimit import Decision, SlidingLogLimiter
from weldpulse.observability import LIMITER_FALLBACKS

log = structlog.get_logger(__name__)

# KEYS[1] the key's log (a sorted set of microsecond timestamps);
# ARGV: limit, window in microseconds, a unique member for this request.
# Returns {allowed (0/1), entries in the window, microseconds until the oldest leaves}.
SLIDING_LOG = """
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local count = redis.call('ZCARD', KEYS[1])
local allowed = 0
if count < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  count = count + 1
  allowed = 1
end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local reset = 0
if oldest[2] then reset = tonumber(oldest[2]) + window - now end
return {allowed, count, reset}
"""

RETRY_REDIS_AFTER = 1.0  # seconds of in-process limiting before Redis is tried again


class RedisLimiter:
    def __init__(
        self, url: str, limit: int = 100, window: float = 60.0, prefix: str = "weldpulse:rl:"
    ) -> None:
        self.limit = limit
        self.window = window
        self.prefix = prefix
        # Short timeouts and no retries: a slow or absent Redis must not stall calls.
        self.client = redis.Redis.from_url(
            url, socket_timeout=0.25, socket_connect_timeout=0.25, retry=Retry(NoBackoff(), 0)
        )
        self.script = self.client.register_script(SLIDING_LOG)
        self.fallback = SlidingLogLimiter(limit, window)
        self._down_until = 0.0
        self._lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        if time.monotonic() >= self._down_until:
            try:
                return self._hit_redis(key)
            except redis.RedisError as err:
                with self._lock:
                    if self._down_until == 0.0:
                        log.warning("rate limiter falls back to in-process", error=str(err))
                    self._down_until = time.monotonic() + RETRY_REDIS_AFTER
        LIMITER_FALLBACKS.inc()
        return self.fallback.hit(key)

    def _hit_redis(self, key: str) -> Decision:
        window_us = int(self.window * 1_000_000)
        allowed, count, reset_us = self.script(
            keys=[self.prefix + key], args=[self.limit, window_us, uuid.uuid4().hex]
        )
        if self._down_until:
            with self._lock:
                self._down_until = 0.0
            log.info("rate limiter uses Redis again")
        return Decision(
            allowed=bool(allowed),
            limit=self.limit,
            remaining=self.limit - int(count),
            reset=math.ceil(int(reset_us) / 1_000_000),
            window=int(self.window),
        )
