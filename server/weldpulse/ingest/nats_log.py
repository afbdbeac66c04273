"""The ingest log on NATS JetStream, for several ingest servers feeding one store.

Same contract as `log.SqliteLog`: a record's position is its stream
sequence; `append` returns once JetStream acknowledged every record (stored
by the server; fsync'd before that only with `sync_interval: always` in the
server's `jetstream {}` config, see docs/operations.md). Whichever server
holds the store's applier lock (`StoreApplierLock`) reads from the position
the store recorded and purges what it applied.
"""

import asyncio
import hashlib
import threading
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType, StreamConfig
from sqlalchemy import Connection, Engine, func, select

T = TypeVar("T")
EVENTS_HEADER = "Weldpulse-Events"
FETCH_TIMEOUT_S = 0.05
FETCH_BATCH = 512  # messages per fetch; a collect's record holds one event


class NatsLog:
    """A JetStream stream (file storage) as the durable ingest log."""

    def __init__(self, url: str, stream: str = "WELDPULSE_INGEST") -> None:
        self.log_id = f"nats:{stream}"
        self.stream = stream
        self.subject = f"weldpulse.ingest.{stream.lower()}"
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        self._nc = self._run(nats.connect(url, max_reconnect_attempts=-1))
        self._js = self._nc.jetstream()
        config = StreamConfig(name=stream, subjects=[self.subject], storage=StorageType.FILE)
        self._run(self._js.add_stream(config))
        self._sub: Any = None
        self._next = 0  # the sequence the subscription delivers next
        self._buffer: list[Any] = []

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        async def publish() -> int:
            acks = await asyncio.gather(
                *(
                    self._js.publish(self.subject, body, headers={EVENTS_HEADER: str(n)})
                    for n, body in records
                )
            )
            return max(ack.seq for ack in acks)

        return self._run(publish())

    def read(self, after: int, max_events: int) -> list[tuple[int, bytes]]:
        return self._run(self._read(after, max_events))

    async def _read(self, after: int, max_events: int) -> list[tuple[int, bytes]]:
        if self._sub is None or self._next != after + 1:
            await self._subscribe(after + 1)
        out: list[tuple[int, bytes]] = []
        total = 0
        while total < max_events:
            if not self._buffer:
                try:
                    self._buffer = await self._sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
                except nats.errors.TimeoutError:
                    break
            msg = self._buffer.pop(0)
            seq = msg.metadata.sequence.stream
            out.append((seq, msg.data))
            total += int((msg.headers or {}).get(EVENTS_HEADER, "1"))
            self._next = seq + 1
        return out

    async def _subscribe(self, start: int) -> None:
        if self._sub is not None:
            await self._sub.unsubscribe()
        config = ConsumerConfig(
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=max(1, start),
            ack_policy=AckPolicy.NONE,  # the store's recorded position is the cursor
        )
        self._sub = await self._js.pull_subscribe(self.subject, stream=self.stream, config=config)
        self._buffer = []
        self._next = start

    def discard(self, upto: int) -> None:
        self._run(self._js.purge_stream(self.stream, seq=upto + 1))

    def backlog(self) -> int:
        """Records (not events) the stream holds: collects carry one event each."""
        info = self._run(self._js.stream_info(self.stream))
        return int(info.state.messages)

    def close(self) -> None:
        async def stop() -> None:
            if self._sub is not None:
                await self._sub.unsubscribe()
            await self._nc.drain()

        self._run(stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()


class StoreApplierLock:
    """Who applies a shared log: the server holding a PostgreSQL session advisory lock.

    The lock lives as long as its connection, so a server that dies (kill -9,
    machine lost) frees it when PostgreSQL notices the connection gone.
    """

    def __init__(self, engine: Engine, log_id: str) -> None:
        self.engine = engine
        self.key = hash_key(log_id)
        self._conn: Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            return True
        conn = self.engine.connect()
        if conn.execute(select(func.pg_try_advisory_lock(self.key))).scalar():
            conn.commit()
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            # Unlocked first: closing returns the connection (its session) to the pool.
            self._conn.execute(select(func.pg_advisory_unlock(self.key)))
            self._conn.commit()
            self._conn.close()
            self._conn = None


def hash_key(log_id: str) -> int:
    """A stable 63-bit advisory lock key for a log id."""
    return int.from_bytes(hashlib.blake2b(log_id.encode(), digest_size=8).digest()) >> 1
