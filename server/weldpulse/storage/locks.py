"""The events store's write lock: writes run together, a roll (exclusive) runs alone.

On PostgreSQL writers hold a shared advisory lock and an exclusive write
(a roll, a compaction) an exclusive one, so it holds across processes; a
DuckDB file has one process, so a mutex does.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select

LOCK_KEY = 0x77656C64  # PostgreSQL advisory lock id ("weld")
_local_lock = threading.Lock()


@contextmanager
def write_transaction(engine: Engine, exclusive: bool = False) -> Iterator[Connection]:
    """A write transaction; an exclusive one runs while no other write does."""
    if engine.dialect.name == "postgresql":
        lock = func.pg_advisory_xact_lock if exclusive else func.pg_advisory_xact_lock_shared
        with engine.begin() as conn:
            conn.execute(select(lock(LOCK_KEY)))
            yield conn
    else:
        with _local_lock, engine.begin() as conn:
            yield conn
