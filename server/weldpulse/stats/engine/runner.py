"""Runner: a call's statements on its one snapshot connection, within the call's time budget."""

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
from sqlalchemy import Connection, CursorResult, Executable
from weldpulse.api.params import Range
from weldpulse.errors import TimedOut, Unavailable
from weldpulse.stats.engine import dialect
from weldpulse.stats.engine.plan import Plan
from weldpulse.stats.exact import rolled_days_of, split

# Below Envoy's 60 s route timeout, so the caller gets this error rather than Envoy's.
BUDGET_SECONDS = 30.0


class Watchdog:
    """One thread cancelling the statements that run past their deadlines.

    A threading.Timer per statement cost a thread start each (~0.25 ms on a
    loaded machine, a call runs several statements); arming here is a heap push.
    """

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Callable[[], None]]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None

    def arm(self, deadline: float, cancel: Callable[[], None]) -> int:
        with self._wake:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="budget", daemon=True)
                self._thread.start()
            token = next(self._ids)
            self._armed.add(token)
            heapq.heappush(self._due, (deadline, token, cancel))
            if self._due[0][1] == token:  # sooner than what the thread waits for
                self._wake.notify()
            return token

    def disarm(self, token: int) -> None:
        with self._wake:
            self._armed.discard(token)

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0][1] not in self._armed:
                    heapq.heappop(self._due)  # finished in time
                wait = self._due[0][0] - time.monotonic() if self._due else None
                if wait is None or wait > 0:
                    self._wake.wait(wait)
                    continue
                _, token, cancel = heapq.heappop(self._due)
                self._armed.discard(token)
            cancel()  # outside the lock: a PostgreSQL cancel waits for the server


WATCHDOG = Watchdog()


class Budget:
    """A call's time budget: statements past it are cancelled in the database (as the
    statement guard does when a call ends) and the call answers GATEWAY_TIMEOUT."""

    def __init__(self, conn: Connection, seconds: float) -> None:
        self.conn, self.seconds = conn, seconds
        self.deadline = time.monotonic() + seconds
        self.fired = False
        self.plans: dict[tuple[tuple[str, ...], Range], Plan] = {}

    def plan(self, sites: tuple[str, ...], rng: Range) -> Plan:
        """The range's whole rolled days, read once per call and range (on its snapshot)."""
        if (sites, rng) not in self.plans:
            self.prefetch(sites, (rng,))
        return self.plans[sites, rng]

    def prefetch(self, sites: tuple[str, ...], ranges: Sequence[Range]) -> None:
        """The rolled days of several ranges (a comparison's two) in one statement: those of
        the range spanning them all, each range keeping its own whole days (split)."""
        missing = [r for r in ranges if (sites, r) not in self.plans]
        if not missing:
            return
        hull = Range(min(r.start for r in missing), max(r.end for r in missing))
        days = [r.day for r in self.execute(rolled_days_of(sites, hull))]
        for r in missing:
            self.plans[sites, r] = Plan(sites, r, split(r, days))

    def _cancel(self) -> None:
        self.fired = True
        dbapi = self.conn.connection.dbapi_connection
        if self.conn.dialect.name == "postgresql":
            dbapi.cancel_safe(timeout=2.0)  # type: ignore[union-attr]
        else:
            dbapi.interrupt()  # type: ignore[union-attr]

    def error(self) -> TimedOut:
        return TimedOut(
            f"Query ran past its time budget of {self.seconds:g} s and was cancelled; narrow "
            "the date_range, the dimensions or the filters"
        )

    def execute(self, stmt: Executable) -> CursorResult[Any]:
        """Runs `stmt` (one marked dialect.joined: with hash joins only)."""
        if self.deadline - time.monotonic() <= 0:
            raise self.error()
        token = WATCHDOG.arm(self.deadline, self._cancel)
        try:
            if not dialect.is_joined(stmt):
                return self.conn.execute(stmt)
            dialect.hash_joins(self.conn, True)
            result = self.conn.execute(stmt)
            dialect.hash_joins(self.conn, False)  # after an error, the rollback resets it
            return result
        except Exception as err:  # DuckDB's interrupt and psycopg's cancel surface differently
            if self.fired:
                raise self.error() from None
            if isinstance(getattr(err, "orig", None), duckdb.OutOfMemoryException):
                raise Unavailable(
                    "Query needed more memory than the server may use "
                    "(WELDPULSE_DUCKDB_MEMORY_LIMIT); narrow the date_range, the dimensions or "
                    "the filters, or retry when fewer queries run"
                ) from err
            raise
        finally:
            WATCHDOG.disarm(token)
