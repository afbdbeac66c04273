"""The live stream (StreamRealtime): one snapshot per site set and interval per tick, fanned out.

A `Ticker` per (sites, interval) computes the realtime rows once per tick
in the pool and hands the update to every subscriber, which keeps only the
latest (a slow client skips updates, it never queues them). The same tick
checks its subscribers' keys in one query, so a revoked key's streams end
within one interval. Everything else runs on the server's event loop: an
open stream is a coroutine waiting for its next update, not a thread.
"""

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

from grpc import aio
from prometheus_client import Counter as Metric
from prometheus_client import Gauge
from sqlalchemy import Engine, Select, or_, select
from weldpulse.api.context import caller_sites, principal_var
from weldpulse.errors import BadRequest, RateLimited, Unauthorized, Unavailable
from weldpulse.stats.engine import presets
from weldpulse.storage import schema
from weldpulse.storage.engines import snapshot
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import live_pb2, live_pb2_grpc

MAX_STREAMS_PER_KEY = 5
DEFAULT_INTERVAL = 5
MAX_INTERVAL = 60
FRESH = 1.0  # seconds: a new subscriber's first update is the ticker's latest if this recent

SNAPSHOTS = Metric("weldpulse_live_snapshots", "Realtime snapshots computed for live streams")
OPEN_STREAMS = Gauge("weldpulse_live_streams", "Live streams open on this server")


def realtime_rows(events: Engine, sites: Sequence[str], now: datetime) -> list[pb.RealtimeRow]:
    """The rows of /v1/realtime at `now` (naive UTC)."""
    with snapshot(events) as conn:
        rows = presets.realtime(conn, sites, now)
    return [
        pb.RealtimeRow(
            pathname=r.exit_page,
            country=r.country,
            device_type=r.device_type,
            referrer_source=r.referrer_source,
            current_visitors=r.current_visitors,
        )
        for r in rows
    ]


def valid_keys_stmt(key_ids: Sequence[str], now: datetime) -> Select:
    """The keys among `key_ids` that are neither revoked nor expired at `now`."""
    k = schema.api_keys.c
    return select(k.id).where(
        k.id.in_(key_ids),
        k.revoked_at.is_(None),
        or_(k.expires_at.is_(None), k.expires_at > now),
    )


class _Subscriber:
    """One open stream: the latest update not yet sent, or why the stream must end."""

    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        self.latest: live_pb2.StreamRealtimeResponse | None = None
        self.error: Exception | None = None
        self.ready = asyncio.Event()

    def offer(self, update: live_pb2.StreamRealtimeResponse) -> None:
        self.latest = update
        self.ready.set()

    def end(self, error: Exception) -> None:
        self.error = error
        self.ready.set()

    async def next(self) -> live_pb2.StreamRealtimeResponse:
        await self.ready.wait()
        self.ready.clear()
        if self.error is not None:
            raise self.error
        assert self.latest is not None
        return self.latest


class _Ticker:
    """Computes one update per interval for its sites while it has subscribers."""

    def __init__(self, hub: "Hub", sites: tuple[str, ...], interval: int) -> None:
        self.hub, self.sites, self.interval = hub, sites, interval
        self.subscribers: set[_Subscriber] = set()
        self.latest: live_pb2.StreamRealtimeResponse | None = None
        self.latest_at = 0.0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()  # a subscriber joined: compute now, for everyone

    def join(self, subscriber: _Subscriber) -> None:
        self.subscribers.add(subscriber)
        if self.latest is not None and time.monotonic() - self.latest_at <= FRESH:
            subscriber.offer(self.latest)
        elif self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        else:
            self._wake.set()

    def leave(self, subscriber: _Subscriber) -> None:
        self.subscribers.discard(subscriber)
        if not self.subscribers and self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while self.subscribers:
            started = time.monotonic()
            key_ids = {s.key_id for s in self.subscribers}
            update, valid = await loop.run_in_executor(
                self.hub.pool, self._compute, sorted(key_ids)
            )
            self.latest, self.latest_at = update, time.monotonic()
            for subscriber in list(self.subscribers):
                # Only keys checked in this tick: a subscriber may have joined meanwhile.
                if subscriber.key_id in key_ids and subscriber.key_id not in valid:
                    subscriber.end(Unauthorized("Invalid API key: revoked or expired"))
                else:
                    subscriber.offer(update)
            self._wake.clear()
            try:
                wait = self.interval - (time.monotonic() - started)
                await asyncio.wait_for(self._wake.wait(), timeout=max(wait, 0))
            except TimeoutError:
                pass

    def _compute(self, key_ids: list[str]) -> tuple[live_pb2.StreamRealtimeResponse, set[str]]:
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        rows = realtime_rows(self.hub.events, self.sites, now)
        with self.hub.metadata.connect() as conn:
            valid = set(conn.execute(valid_keys_stmt(key_ids, now)).scalars())
        SNAPSHOTS.inc()
        update = live_pb2.StreamRealtimeResponse(
            t=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
            current_visitors=sum(r.current_visitors for r in rows),
            data=rows,
        )
        return update, valid


class Hub:
    """The tickers of one server process and its open streams per key."""

    def __init__(self, metadata: Engine, events: Engine, pool: ThreadPoolExecutor) -> None:
        self.metadata, self.events, self.pool = metadata, events, pool
        self.tickers: dict[tuple[tuple[str, ...], int], _Ticker] = {}
        self.open: Counter[str] = Counter()
        self.subscribers: set[_Subscriber] = set()
        self.closing = False

    async def updates(
        self, key_id: str, sites: tuple[str, ...], interval: int
    ) -> AsyncIterator[live_pb2.StreamRealtimeResponse]:
        """The updates of one stream, until the client leaves, its key goes or the server stops."""
        if self.closing:
            raise Unavailable("Server shutting down, reconnect shortly")
        if self.open[key_id] >= MAX_STREAMS_PER_KEY:
            raise RateLimited(
                f"Too many open live streams with this API key: at most "
                f"{MAX_STREAMS_PER_KEY}; close one first",
                trailers=(("retry-after", "5"),),
            )
        self.open[key_id] += 1
        OPEN_STREAMS.inc()
        subscriber = _Subscriber(key_id)
        self.subscribers.add(subscriber)
        ticker = self.tickers.get((sites, interval))
        if ticker is None:
            ticker = self.tickers[(sites, interval)] = _Ticker(self, sites, interval)
        try:
            ticker.join(subscriber)
            while True:
                yield await subscriber.next()
        finally:
            ticker.leave(subscriber)
            if not ticker.subscribers:
                self.tickers.pop((sites, interval), None)
            self.subscribers.discard(subscriber)
            OPEN_STREAMS.dec()
            self.open[key_id] -= 1
            if not self.open[key_id]:
                del self.open[key_id]

    async def close(self) -> None:
        """Ends every stream (UNAVAILABLE) and refuses new ones: the server is stopping."""
        self.closing = True
        for subscriber in list(self.subscribers):
            subscriber.end(Unavailable("Server shutting down, reconnect shortly"))
        # Give the streams a moment to send their status before the grace begins.
        for _ in range(100):
            if not self.subscribers:
                return
            await asyncio.sleep(0.01)


def parse_interval(seconds: int) -> int:
    if seconds == 0:
        return DEFAULT_INTERVAL
    if not 1 <= seconds <= MAX_INTERVAL:
        raise BadRequest(
            f"Invalid interval_seconds: must be 1-{MAX_INTERVAL} (default "
            f"{DEFAULT_INTERVAL}), got {seconds}"
        )
    return seconds


class LiveServicer(live_pb2_grpc.LiveServiceServicer):
    """StreamRealtime: parse → (the Gate authorized it) → the hub's updates."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def StreamRealtime(
        self, request: live_pb2.StreamRealtimeRequest, context: aio.ServicerContext
    ) -> AsyncIterator[live_pb2.StreamRealtimeResponse]:
        principal = principal_var.get()
        sites = caller_sites(request.site_id)
        interval = parse_interval(request.interval_seconds)
        async for update in self.hub.updates(principal.key_id, sites, interval):
            yield update
