"""Creates the SQLAlchemy engines of the two stores and brings their schemas up to date."""

import contextvars
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb_engine
import structlog
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.dialects import registry
from sqlalchemy.engine import make_url
from weldpulse.storage import migrate

log = structlog.get_logger(__name__)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the CLI write keys while the server reads; busy_timeout makes
    # the rare writer collision wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class CallCancelled(Exception):
    """A statement was refused or interrupted because its RPC had already ended."""


class StatementGuard:
    """The database statements running for one RPC, so they can be cancelled when it ends.

    Without this a query whose client gave up (deadline, disconnect, Envoy
    timeout) would run to completion and hold a worker and a connection.
    """

    def __init__(self) -> None:
        self.ended = False
        self.cancelled = 0
        self._running: dict[int, tuple[str, Any]] = {}
        self._lock = threading.Lock()

    def started(self, dialect: str, dbapi_conn: Any) -> None:
        with self._lock:
            if self.ended:
                raise CallCancelled("the call ended before this statement started")
            self._running[id(dbapi_conn)] = (dialect, dbapi_conn)

    def finished(self, dbapi_conn: Any) -> None:
        with self._lock:
            self._running.pop(id(dbapi_conn), None)

    def end(self) -> None:
        """Cancels what still runs; called by gRPC when the call terminates for any reason."""
        with self._lock:
            self.ended = True
            for dialect, dbapi_conn in self._running.values():
                try:
                    _cancel(dialect, dbapi_conn)
                except Exception:  # e.g. the connection broke meanwhile: nothing left to stop
                    log.warning("could not cancel a statement", exc_info=True)
                self.cancelled += 1
            self._running.clear()


def _cancel(dialect: str, dbapi_conn: Any) -> None:
    if dialect == "postgresql":
        dbapi_conn.cancel_safe(timeout=2.0)  # asks the server to cancel the running statement
    else:
        dbapi_conn.interrupt()  # DuckDB and SQLite stop the statement in this process


current_guard: contextvars.ContextVar[StatementGuard | None] = contextvars.ContextVar(
    "statement_guard", default=None
)


def _before_execute(conn: Any, *_: Any) -> None:
    guard = current_guard.get()
    if guard is not None:
        guard.started(conn.dialect.name, conn.connection.dbapi_connection)


def _after_execute(conn: Any, *_: Any) -> None:
    guard = current_guard.get()
    if guard is not None:
        guard.finished(conn.connection.dbapi_connection)


def _on_error(context: Any) -> None:
    guard = current_guard.get()
    if guard is not None and context.connection is not None:
        # The statement is over; its connection may already be invalidated.
        dbapi_conn = getattr(context.connection.connection, "dbapi_connection", None)
        if dbapi_conn is not None:
            guard.finished(dbapi_conn)


# Companions of a file database: SQLite's WAL, shared memory and journal, DuckDB's WAL.
SIDE_FILES = ("-wal", "-shm", "-journal", ".wal")
PRIVATE = 0o077  # umask: files 0600, folders 0700


@contextmanager
def private_files() -> Iterator[None]:
    """Files and folders created meanwhile are the owner's alone (salts, key hashes)."""
    old = os.umask(PRIVATE)
    try:
        yield
    finally:
        os.umask(old)


def _make_private(database: Path) -> None:
    """The missing folders above `database` 0700; the database and its companions 0600.

    Existing folders are left alone (they may be anyone's); existing store
    files are ours, so an older, wider mode is narrowed.
    """
    missing = [p for p in (database.parent, *database.parent.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o700, exist_ok=True)
    for path in (database, *(Path(f"{database}{suffix}") for suffix in SIDE_FILES)):
        if path.exists() and path.stat().st_mode & PRIVATE:
            path.chmod(0o600)


class CachedDuckDB(duckdb_engine.Dialect):
    """duckdb_engine's dialect with SQLAlchemy's compiled-statement cache, which it leaves off:
    the engine's statements then compiled anew on every call, a fifth of a rollup query's
    CPU (docs/performance.md). The SQL is the same; the property tests hold it on DuckDB."""

    supports_statement_cache = True


registry.register("duckdb.cached", __name__, "CachedDuckDB")


def connect(url: str, duckdb: Mapping[str, str | int] | None = None) -> Engine:
    """An engine for `url`; a file database and its folder are made private to the owner.
    `duckdb`: DuckDB settings for a DuckDB url (memory_limit, threads, temp_directory).

    SQLite creates its -wal/-shm with the database file's mode; DuckDB
    creates its .wal (again after each checkpoint) with the process umask,
    which the server sets to 077 (`app.Running`).
    """
    parsed = make_url(url)
    database = parsed.database if parsed.get_backend_name() in ("sqlite", "duckdb") else None
    local = database not in (None, "", ":memory:")
    if local:
        _make_private(Path(str(database)))
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername == "duckdb":
        parsed = parsed.set(drivername="duckdb+cached")
    postgres = parsed.get_backend_name() == "postgresql"
    # psycopg prepares a statement run 5 times on a connection, and PostgreSQL may then plan
    # it once for any parameters: with a range's rows unknown that generic plan can nest
    # loops over all its events (a goal breakdown took 30 s instead of 0.3 s). A plan per
    # execution, for the values at hand, costs a millisecond.
    options: dict[str, Any] = (
        {"options": "-c plan_cache_mode=force_custom_plan"} if postgres else {}
    )
    if duckdb and parsed.get_backend_name() == "duckdb":
        options["config"] = dict(duckdb)
    engine = create_engine(parsed, pool_pre_ping=postgres, connect_args=options)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "before_cursor_execute", _before_execute)
    event.listen(engine, "after_cursor_execute", _after_execute)
    event.listen(engine, "handle_error", _on_error)
    if local:
        # The umask is the process's: other threads' files made meanwhile are private too.
        with private_files():
            engine.connect().close()  # creates the file (and SQLite's -wal/-shm) 0600
    return engine


@contextmanager
def snapshot(engine: Engine) -> Iterator[Connection]:
    """One connection in one transaction, so every statement on it reads the same snapshot.

    A call's statements (say the visitors, then the sessions of a range)
    must not straddle a commit, or its figures disagree. PostgreSQL's default
    READ COMMITTED takes a snapshot per statement, so this reads in REPEATABLE
    READ, one snapshot per transaction; a DuckDB transaction is one snapshot.
    (pysqlite starts no transaction before a SELECT: SQLite would need BEGIN.)
    """
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            yield conn


def open_stores(
    metadata_url: str, events_url: str | None, duckdb: Mapping[str, str | int] | None = None
) -> tuple[Engine, Engine | None]:
    """Engines for both stores with migrations applied; events only when asked for (with
    `duckdb` settings, when DuckDB)."""
    meta = connect(metadata_url)
    migrate.upgrade(meta, "metadata")
    if events_url is None:
        return meta, None
    events = connect(events_url, duckdb)
    migrate.upgrade(events, "events")
    return meta, events
