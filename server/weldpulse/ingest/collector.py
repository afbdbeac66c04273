"""Group commit: one writer thread stores whatever accumulated while the last commit ran.

Many concurrent collects thus become one transaction (a columnar store pays
~40x more for single-row inserts), and every caller learns only after its
events are committed, so nothing acknowledged can be lost.
"""

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Engine, select
from weldpulse.domain import SESSION_GAP, Event
from weldpulse.ingest.hits import Enriched
from weldpulse.observability import INGESTED
from weldpulse.storage import rollups, writer
from weldpulse.storage.schema import sessions

log = logging.getLogger(__name__)
MAX_BATCH_EVENTS = 20_000
ROLL_EVERY_S = 60.0  # how often to look for finished days without a current rollup
ROLL_BUDGET_S = 0.5  # rolling pauses writes; at most about this long per look


def _continue_sessions(engine: Engine, items: list[Enriched]) -> list[Event]:
    """Keeps yesterday's visitor id for hits that continue a session across midnight.

    The session may be stored already or start earlier in this very batch.
    """
    items = sorted(items, key=lambda i: i.event.ts)
    candidates = [i for i in items if i.previous_visitor_id is not None]
    carried: set[tuple[str, int]] = set()
    if candidates:
        since = min(i.event.ts for i in candidates) - SESSION_GAP
        stmt = select(sessions.c.site_id, sessions.c.visitor_id).where(
            sessions.c.visitor_id.in_({i.previous_visitor_id for i in candidates}),
            sessions.c.ended_at >= since,
        )
        with engine.connect() as conn:
            carried = {(r.site_id, r.visitor_id) for r in conn.execute(stmt)}
    last_seen: dict[tuple[str, int], datetime] = {}
    out = []
    for item in items:
        event, prev = item.event, item.previous_visitor_id
        if prev is not None:
            seen = last_seen.get((event.site_id, prev))
            if (event.site_id, prev) in carried or (seen and event.ts - seen <= SESSION_GAP):
                event = dataclasses.replace(event, visitor_id=prev)
        last_seen[(event.site_id, event.visitor_id)] = event.ts
        out.append(event)
    return out


def _take(entry: tuple[list[Enriched], "Future[int]"]) -> bool:
    """Marks the submission running, so its caller can no longer withdraw it; False if it did."""
    return entry[1].set_running_or_notify_cancel()


def _utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Collector:
    """The single writer of the events store; it also keeps the finished days' rollups."""

    def __init__(
        self,
        events: Engine,
        now: Callable[[], datetime] = _utc_now,
        roll_every_s: float = ROLL_EVERY_S,
    ) -> None:
        self.engine = events
        self.now = now
        self.roll_every_s = roll_every_s
        self._compacted: date | None = None
        self._next_roll = 0.0
        self._queue: queue.Queue[tuple[list[Enriched], Future[int]] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="collector", daemon=True)
        self._thread.start()

    def submit(self, items: Sequence[Enriched]) -> "Future[int]":
        """A future that resolves to the number stored once they are committed.

        Until the writer takes them (the future is then running), the caller
        may withdraw them with `future.cancel()`: they are never stored.
        """
        future: Future[int] = Future()
        self._queue.put((list(items), future))
        return future

    def close(self) -> None:
        """Stores what is queued, then stops the writer."""
        self._queue.put(None)
        self._thread.join()

    def _run(self) -> None:
        while True:
            self._roll_finished_days()
            try:
                first = self._queue.get(timeout=max(0.0, self._next_roll - time.monotonic()))
            except queue.Empty:
                continue
            if first is None:
                return
            batch = [first] if _take(first) else []
            size = len(first[0]) if batch else 0
            stop = False
            while size < MAX_BATCH_EVENTS:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                if _take(nxt):
                    batch.append(nxt)
                    size += len(nxt[0])
            if batch:
                self._compact_finished_day()
                self._write(batch)
            if stop:
                return

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

    def _write(self, batch: list[tuple[list[Enriched], Future[int]]]) -> None:
        items = [item for chunk, _ in batch for item in chunk]
        try:
            writer.record(self.engine, _continue_sessions(self.engine, items))
        except Exception as err:
            log.exception("could not store %d events", len(items))
            for _, future in batch:
                future.set_exception(err)
            return
        INGESTED.inc(len(items))
        for chunk, future in batch:
            future.set_result(len(chunk))
