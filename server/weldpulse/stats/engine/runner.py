"""Runner: a call's statements on its one snapshot connection, within the call's time budget."""

import threading
import time
from typing import Any

from sqlalchemy import Connection, CursorResult, Executable
from weldpulse.api.params import Range
from weldpulse.errors import TimedOut
from weldpulse.stats.engine import dialect
from weldpulse.stats.engine import plan as planner
from weldpulse.stats.engine.plan import Plan

# Below Envoy's 60 s route timeout, so the caller gets this error rather than Envoy's.
BUDGET_SECONDS = 30.0


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
            self.plans[sites, rng] = planner.rolled(self.execute, sites, rng)
        return self.plans[sites, rng]

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

    def execute(self, stmt: Executable, hash_joins: bool = False) -> CursorResult[Any]:
        """Runs `stmt` (with `hash_joins`: as a statement joining sessions and events)."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise self.error()
        timer = threading.Timer(left, self._cancel)
        timer.start()
        try:
            if not hash_joins:
                return self.conn.execute(stmt)
            dialect.hash_joins(self.conn, True)
            result = self.conn.execute(stmt)
            dialect.hash_joins(self.conn, False)  # after an error, the rollback resets it
            return result
        except Exception:  # DuckDB's interrupt and psycopg's cancel surface differently
            if self.fired:
                raise self.error() from None
            raise
        finally:
            timer.cancel()
