"""Per-key request limits: a sliding log, so no 60-second span ever holds more than the limit.

A fixed window admits up to twice the limit across a window boundary; a
sliding log admits exactly `limit` requests in any `window` seconds. This
one keeps its state in-process (one server); `redis_limiter` shares it
between processes.
"""

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int  # requests still allowed right now
    reset: int  # whole seconds until the oldest counted request leaves the window
    window: int

    @property
    def retry_after(self) -> int:
        """Whole seconds to wait before a request can succeed; at least 1 when denied."""
        return max(1, self.reset) if not self.allowed else 0


class Limiter(Protocol):
    def hit(self, key: str) -> Decision:
        """Counts one request of `key` if the limit allows it."""
        ...


class SlidingLogLimiter:
    def __init__(
        self,
        limit: int = 100,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        """Counts one request of `key` if the limit allows it."""
        now = self.clock()
        with self._lock:
            log = self._logs.setdefault(key, deque())
            while log and log[0] <= now - self.window:
                log.popleft()
            allowed = len(log) < self.limit
            if allowed:
                log.append(now)
            reset = math.ceil(log[0] + self.window - now) if log else 0
            return Decision(
                allowed=allowed,
                limit=self.limit,
                remaining=self.limit - len(log),
                reset=reset,
                window=int(self.window),
            )
