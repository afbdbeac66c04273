"""Prints the median cost of one rate-limit decision: in-process vs Redis on 127.0.0.1."""

import statistics
import sys
import time
import uuid

from weldpulse.api.ratelimit import Limiter, SlidingLogLimiter
from weldpulse.api.redis_limiter import RedisLimiter


def median_us(limiter: Limiter, calls: int) -> float:
    key = uuid.uuid4().hex
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        limiter.hit(key)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def main(url: str = "redis://127.0.0.1:6379/0", calls: int = 5000) -> None:
    local = median_us(SlidingLogLimiter(limit=10**9), calls)
    shared = median_us(RedisLimiter(url, limit=10**9), calls)
    print(f"{calls} decisions each: in-process median {local:.1f} µs, Redis median {shared:.1f} µs")
    down = median_us(RedisLimiter("redis://127.0.0.1:1/0", limit=10**9), calls)
    print(f"Redis unreachable (fallback): median {down:.1f} µs")


if __name__ == "__main__":
    main(*sys.argv[1:2])
