"""From acknowledged events to the store: group commit into the durable log, one applier.

An `Appender` thread writes whatever submissions accumulated while its last
fsync ran as one log commit, and acknowledges them at that fsync (or, with
ack="applied", once they are in the store). The `Applier` thread moves
large runs of records from the log into the events store, recording the
log position in the same transaction, and keeps the finished days' rollups.
"""

import asyncio
import contextlib
import gc
import logging
import operator
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import Literal

import orjson
from sqlalchemy import Engine, select
from weldpulse.domain import EVENT_FIELDS, SESSION_GAP, Columns, in_time_order, transposed
from weldpulse.ingest.hits import Enriched
from weldpulse.ingest.log import ApplierLease, ApplierLock, IngestLog, LogFull, SqliteLog
from weldpulse.observability import INGESTED
from weldpulse.storage import rollups, writer
from weldpulse.storage.schema import sessions
from weldpulse.storage.statistics import Statistics

log = logging.getLogger(__name__)
MAX_BATCH_EVENTS = 20_000  # events per log commit, and per store transaction
MAX_BACKLOG = 1_000_000  # events logged but not yet stored; beyond, collects get 503
BACKLOG_CHECK_S = 0.2  # how often submit re-reads the backlog (another process may append)
IDLE_POLL_S = 0.05  # how often an idle applier looks for records other processes appended
# Under load the applier stores a run at most every GATHER_S, or once GATHER_EVENTS wait:
# each run pays the store's fixed cost per statement and commit, so fewer, larger runs.
GATHER_S = 0.15
GATHER_EVENTS = 2_000
DISCARD_EVERY_S = 1.0  # under load, applied records are deleted from the log this often
RETRY_APPLY_S = 1.0  # after a failed apply (store down): the records wait in the log
ROLL_EVERY_S = 60.0  # how often to look for finished days without a current rollup
ROLL_BUDGET_S = 0.5  # rolling pauses writes; at most about this long per look


def _continue_sessions(engine: Engine, cols: Columns) -> Columns:
    """The events in time order, yesterday's visitor id kept for those that continue a session.

    A row continues when its previous-day visitor id (`previous_visitor_id`)
    had an event at most SESSION_GAP before it, stored already or earlier in
    this very batch; the stored sessions' ends are compared per row, so the
    answer does not depend on how rows were grouped into batches.
    """
    cols = in_time_order(cols)
    previous = cols.pop("previous_visitor_id")
    candidates = [i for i, prev in enumerate(previous) if prev is not None]
    if not candidates:  # no row in the first SESSION_GAP of a day: nothing to continue
        return cols
    times, sites = cols["ts"], cols["site_id"]
    visitors = cols["visitor_id"] = list(cols["visitor_id"])
    last_seen: dict[tuple[str, int], datetime] = {}
    since = min(times[i] for i in candidates) - SESSION_GAP
    stmt = select(sessions.c.site_id, sessions.c.visitor_id, sessions.c.ended_at).where(
        sessions.c.visitor_id.in_({previous[i] for i in candidates}),
        sessions.c.ended_at >= since,
    )
    with engine.connect() as conn:
        for r in conn.execute(stmt):
            key = (r.site_id, r.visitor_id)
            last_seen[key] = max(r.ended_at, last_seen.get(key, r.ended_at))
    # Rows after the last candidate cannot change an answer: the loop stops there.
    for i in range(candidates[-1] + 1):
        ts, site, prev = times[i], sites[i], previous[i]
        if prev is not None:
            seen = last_seen.get((site, prev))
            if seen is not None and ts - seen <= SESSION_GAP:
                visitors[i] = prev
        key = (site, visitors[i])
        last_seen[key] = max(ts, last_seen.get(key, ts))
    return cols


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Overloaded(Exception):
    """The store is too far behind (or the log is full): nothing was accepted, retry later."""


_FIELDS = (*EVENT_FIELDS, "previous_visitor_id")
_fields = operator.attrgetter(*EVENT_FIELDS)


def encode(items: Sequence[Enriched] | Columns) -> bytes:
    """One log record: an import's columns as one JSON object, or events as JSON arrays.

    Arrays: the events' fields, the previous-day visitor id last. orjson
    writes what json.dumps(default=datetime.isoformat) wrote (UTF-8 rather
    than \\u escapes), ~10x faster: records of either kind replay alike.
    Columns: a value every row shares (the site, often the day's device or
    "" of a field) is written once, so the applier neither reads nor parses it n times.
    """
    if isinstance(items, dict):
        n = len(items["ts"])
        same = {name: v[0] for name, v in items.items() if v.count(v[0]) == n}
        varying = {name: v for name, v in items.items() if name not in same}
        return orjson.dumps({"rows": n, "same": same, "columns": varying})
    return orjson.dumps([[*_fields(i.event), i.previous_visitor_id] for i in items])


def count(items: Sequence[Enriched] | Columns) -> int:
    """How many events a submission holds."""
    return len(items["ts"]) if isinstance(items, dict) else len(items)


def decode(bodies: Sequence[bytes]) -> Columns:
    """The events of many log records as columns, parsed as one JSON document (one call)."""
    parts: list[Columns] = []
    rows: list[list] = []
    for record in orjson.loads(b"[" + b",".join(bodies) + b"]"):
        if isinstance(record, dict):  # an import's columns
            if rows:
                parts.append(transposed(_FIELDS, rows))
                rows = []
            n = record["rows"]
            parts.append({name: [v] * n for name, v in record["same"].items()} | record["columns"])
        else:
            rows.extend(record)
    if rows or not parts:
        parts.append(transposed(_FIELDS, rows))
    cols = parts[0] if len(parts) == 1 else {
        name: list(chain.from_iterable(p[name] for p in parts)) for name in _FIELDS
    }  # fmt: skip
    cols["ts"] = list(map(datetime.fromisoformat, cols["ts"]))
    return cols


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a run is applied.

    A run allocates ~10 containers an event, none in a cycle (refcounts free
    them), yet each 700 allocations start a collection that walks them all:
    40% of the apply's CPU on 100,000 events. Cycles made meanwhile (any
    thread's) are collected once it is enabled again.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# Events, their log record, the caller's future, and an asyncio future to wake its loop.
Submission = tuple[int, bytes, "Future[int]", "asyncio.Future[None] | None"]


def _wake(submissions: Sequence[Submission]) -> None:
    """Wakes the waiting event loops: one call_soon_threadsafe per loop, not one per call."""
    _signal([signal for *_, signal in submissions])


def _signal(signals: Sequence["asyncio.Future[None] | None"]) -> None:
    loops: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for signal in signals:
        if signal is not None:
            loops.setdefault(signal.get_loop(), []).append(signal)
    for loop, waiting in loops.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, waiting)


def _signal_when_done(future: "Future[int]", signal: "asyncio.Future[None]") -> None:
    future.add_done_callback(lambda _: _signal([signal]))


def _resolve(signals: list["asyncio.Future[None]"]) -> None:
    for signal in signals:
        if not signal.done():  # a caller that gave up cancelled its signal
            signal.set_result(None)


class Collector:
    """Ingestion's write side: `submit` events, learn when they are acknowledged.

    `ack="durable"` resolves a submission once the log has fsync'd it;
    `ack="applied"` once the store has it too (read-your-writes, slower).
    With no `log`, a log in a fresh temporary folder (tests, in-memory stores).
    With no `events` store, an ingest-only process: it appends, another applies.
    """

    def __init__(
        self,
        events: Engine | None,
        now: Callable[[], datetime] = _utc_now,
        roll_every_s: float = ROLL_EVERY_S,
        log: IngestLog | None = None,
        ack: Literal["durable", "applied"] = "applied",
        max_backlog: int = MAX_BACKLOG,
        applier_lock: ApplierLease | None = None,
    ) -> None:
        if events is None and ack == "applied":
            raise ValueError("without the events store, acknowledge once durable")
        if log is None:
            path = Path(tempfile.mkdtemp(prefix="weldpulse-log-")) / "ingest-log.sqlite3"
            log, applier_lock = SqliteLog(path), ApplierLock(path)
        self.log = log
        self.ack = ack
        self.max_backlog = max_backlog
        self._backlog = 0
        self._backlog_at = 0.0
        # SimpleQueue: a put is a C call, not a Condition's lock and notify (one per collect).
        self._queue: queue.SimpleQueue[Submission | None] = queue.SimpleQueue()
        self.applier = (
            None if events is None else Applier(events, log, now, roll_every_s, applier_lock)
        )
        self._closing = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._append_loop, name="appender", daemon=True)
        self._thread.start()

    def submit(
        self,
        items: Sequence[Enriched] | Columns,
        signal: "asyncio.Future[None] | None" = None,
    ) -> "Future[int]":
        """A future resolving to the number of events once they are acknowledged.

        Until the appender takes them (the future is then running), the
        caller may withdraw them with `future.cancel()`: they are never stored.
        `signal`, an asyncio future, is resolved on its loop once the future
        is done (an async caller awaits it; one loop wake-up per log commit).
        Raises Overloaded at once when the store is too far behind.
        """
        if self._over_backlog():
            raise Overloaded(f"more than {self.max_backlog} events wait to be stored")
        future: Future[int] = Future()
        self._queue.put((count(items), encode(items), future, signal))
        return future

    def _over_backlog(self) -> bool:
        now = time.monotonic()
        if now - self._backlog_at > BACKLOG_CHECK_S:
            self._backlog_at = now
            self._backlog = self.log.backlog()
        return self._backlog > self.max_backlog

    def close(self) -> None:
        """Logs what is queued, stores what is logged (if this process applies), then stops.

        Once only: a second caller returns when the first one's close is done.
        """
        with self._closing:
            if self._closed:
                return
            self._queue.put(None)
            self._thread.join()
            if self.applier is not None:
                self.applier.close()
            self.log.close()
            self._closed = True

    def _append_loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first] if first[2].set_running_or_notify_cancel() else []
            size = first[0]
            stop = False
            while size < MAX_BATCH_EVENTS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if nxt[2].set_running_or_notify_cancel():
                    batch.append(nxt)
                    size += nxt[0]
            if batch:
                self._append(batch)
            if stop:
                return

    def _append(self, batch: list[Submission]) -> None:
        try:
            last = self.log.append([(n, body) for n, body, _, _ in batch])
        except Exception as err:
            if not isinstance(err, LogFull):
                log.exception("could not log %d submissions", len(batch))
            error = (
                Overloaded(f"the ingest log is full: {err}") if isinstance(err, LogFull) else err
            )
            for _, _, future, _ in batch:
                future.set_exception(error)
            _wake(batch)
            return
        self._backlog += sum(n for n, *_ in batch)
        # Without an applier (ingest-only), the owner's idle poll finds these records.
        if self.applier is not None:
            if self.ack == "applied" and self.applier.owns_log():
                for _, _, future, signal in batch:
                    if signal is not None:  # resolved later, by the applier's thread
                        _signal_when_done(future, signal)
                self.applier.notify(last, [(n, f) for n, _, f, _ in batch])
                return
            self.applier.wake(sum(n for n, *_ in batch))
        for n, _, future, _ in batch:
            future.set_result(n)
        _wake(batch)


class Applier:
    """The single writer of the events store: applies the log, keeps the finished days' rollups."""

    def __init__(
        self,
        engine: Engine,
        log: IngestLog,
        now: Callable[[], datetime],
        roll_every_s: float,
        lock: ApplierLease | None,
    ) -> None:
        self.engine = engine
        self.log = log
        self.now = now
        self.roll_every_s = roll_every_s
        self._lock = lock
        self._owner = lock is None or lock.acquire()
        self._compacted: date | None = None
        self._next_roll = 0.0
        self._position = 0
        self._discarded = 0  # records up to here are deleted from the log
        self._discard_at = 0.0
        self._resumed = False  # the store's position read (the store may be down at start)
        self._next_try = 0.0  # when a process that does not apply next tries to
        self._waiting: list[tuple[int, list[tuple[int, Future[int]]]]] = []
        self._statistics = Statistics(engine)
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        # Events this process appended (the appender's count) and how many of them a read
        # had seen: what waits, without a query. Records of other processes are not counted.
        self._appended = 0
        self._seen = 0
        self._urgent = threading.Event()  # ends a gathering wait early
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="applier", daemon=True)
        self._thread.start()

    def owns_log(self) -> bool:
        return self._owner

    def wake(self, events: int = 0) -> None:
        """New records are in the log (`events` of them appended by this process)."""
        self._appended += events
        if self._appended - self._seen >= GATHER_EVENTS:
            self._urgent.set()
        self._wake.set()

    def notify(self, position: int, futures: list[tuple[int, "Future[int]"]]) -> None:
        """Resolves the futures once the store holds everything up to `position`."""
        with self._mutex:
            if position <= self._position:
                done = True
            else:
                self._waiting.append((position, futures))
                done = False
        if done:
            for n, future in futures:
                future.set_result(n)
        self._urgent.set()  # read-your-writes callers wait: no gathering
        self._wake.set()

    def close(self) -> None:
        """Applies everything logged so far (if this process applies), then stops."""
        self._stop.set()
        self._urgent.set()
        self._wake.set()
        self._thread.join()
        self._release_waiting(None)
        if self._lock is not None:
            self._lock.release()

    def _run(self) -> None:
        while True:
            if not self._owner and time.monotonic() >= self._next_try:
                # At most once a RETRY_APPLY_S: appends wake this loop, and a try may
                # be a database round trip (StoreApplierLock).
                self._next_try = time.monotonic() + RETRY_APPLY_S
                self._owner = self._lock is None or self._lock.acquire()
                self._resumed = False  # another process may have applied meanwhile
            stopping = self._stop.is_set()
            if self._owner:
                try:
                    if not self._resumed:
                        self._resume()
                        self._resumed = True
                    self._roll_finished_days()
                    started = time.monotonic()
                    applied = self._apply_some()
                except Exception:  # the records wait in the log; try again shortly
                    log.exception("could not apply the ingest log")
                    self._release_waiting(None)
                    if stopping:
                        return
                    self._stop.wait(RETRY_APPLY_S)
                    continue
                if applied:
                    if applied < GATHER_EVENTS:
                        self._gather(started + GATHER_S)
                    continue
            if stopping:
                return
            timeout = max(0.0, min(self._next_roll - time.monotonic(), IDLE_POLL_S))
            self._wake.wait(timeout if self._owner else RETRY_APPLY_S)
            self._wake.clear()

    def _resume(self) -> None:
        """Starts after the store's position; records up to it (a crash after the
        store's commit, before the log's delete) are stale and dropped."""
        self._position = writer.applied_position(self.engine, self.log.log_id)
        self._discarded = 0
        self._discard()

    def _gather(self, until: float) -> None:
        """Under load, lets records gather until `until`, unless enough events wait,
        a caller waits for the store (ack="applied") or the applier stops."""
        while not (
            self._stop.is_set() or self._waiting or self._appended - self._seen >= GATHER_EVENTS
        ):
            left = until - time.monotonic()
            if left <= 0:
                return
            self._urgent.wait(left)
            self._urgent.clear()

    def _apply_some(self) -> int:
        """Stores the next run of records; the number of events stored (0: none were logged)."""
        self._seen = self._appended  # before the read: later appends count as waiting
        records = self.log.read(self._position, MAX_BATCH_EVENTS)
        if not records:
            self._discard()  # idle: catch up
            return 0
        last = records[-1][0]
        self._compact_finished_day()
        with _cyclic_gc_paused():
            cols = _continue_sessions(self.engine, decode([body for _, body in records]))
            writer.record_columns(self.engine, cols, position=(self.log.log_id, last))
        with self._mutex:
            self._position = last
        stored = len(cols["ts"])
        INGESTED.inc(stored)
        self._release_waiting(last)
        self._statistics.applied(stored)  # after the waiters: they need not wait for it
        if time.monotonic() >= self._discard_at:
            self._discard()
        return stored

    def _discard(self) -> None:
        """Deletes the applied records from the log: at most once a DISCARD_EVERY_S under
        load (each delete is a log commit that appends would wait for), and when idle."""
        if self._position > self._discarded:
            self.log.discard(self._position)
            self._discarded = self._position
        self._discard_at = time.monotonic() + DISCARD_EVERY_S

    def _release_waiting(self, upto: int | None) -> None:
        """Resolves the waiters up to `upto`; None: all of them (their events are logged)."""
        with self._mutex:
            done = [w for w in self._waiting if upto is None or w[0] <= upto]
            self._waiting = [w for w in self._waiting if not (upto is None or w[0] <= upto)]
        for _, futures in done:
            for n, future in futures:
                future.set_result(n)

    def _compact_finished_day(self) -> None:
        """Once a day, merges yesterday's per-batch rollup rows (small batches leave many)."""
        today = self.now().date()
        if self._compacted == today:
            return
        self._compacted = today
        try:
            writer.compact_visitor_days(self.engine, today - timedelta(days=1))
        except Exception:  # answers stay exact without it; try again tomorrow
            log.exception("could not compact the rollup of %s", today - timedelta(days=1))

    def _roll_finished_days(self) -> None:
        """Rolls days no session can continue into any more (storage.rollups), a few at a time."""
        if time.monotonic() < self._next_roll:
            return
        before = (self.now() - SESSION_GAP).date()
        try:
            left = rollups.roll_pending(self.engine, before, budget_s=ROLL_BUDGET_S)
        except Exception:  # answers stay exact from raw rows; try again later
            log.exception("could not roll the finished days")
            left = 0
        self._next_roll = time.monotonic() + (0 if left else self.roll_every_s)
