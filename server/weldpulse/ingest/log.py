"""The durable ingest log: an append returns once its records are fsync'd; an applier reads on.

Records are opaque bytes, each holding some events, numbered by an
ascending position. The applier stores a run of records and the position
of the last one in one transaction of the events store
(`writer.record(position=...)`), then discards them here: after a crash it
resumes from the store's position, so nothing is lost or applied twice.

`SqliteLog` is the embedded log of a single box: SQLite in WAL mode with
synchronous=FULL fsyncs the WAL at each commit, and one commit takes every
record waiting (group commit, `collector.Appender`). Several processes on
one box may append to the same file; one of them applies (`applier_lock`).
"""

import fcntl
import os
import sqlite3
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Protocol

PAGE_BYTES = 4096


class LogFull(Exception):
    """The log cannot take more records (its disk or its size cap is full); nothing was added."""


class IngestLog(Protocol):
    """A durable, ordered log of records (a count of events and a body each)."""

    log_id: str  # names this log's position in the events store

    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Adds the records; returns the last one's position once all are durable."""
        ...

    def read(self, after: int, max_events: int) -> list[tuple[int, bytes]]:
        """Records after position `after`, in order, about `max_events` events' worth (≥ 1)."""
        ...

    def discard(self, upto: int) -> None:
        """Forgets records up to `upto`: they are applied."""
        ...

    def backlog(self) -> int:
        """Events appended and not yet discarded."""
        ...

    def close(self) -> None: ...


class SqliteLog:
    """The embedded log: one SQLite file (and its -wal), private to the owner."""

    def __init__(self, path: Path, max_bytes: int | None = None) -> None:
        self.path = path
        self.max_bytes = max_bytes
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        old = os.umask(0o077)
        try:
            self._writer = self._connect()
        finally:
            os.umask(old)
        self._reader = self._connect()
        # Deletes need no fsync of their own: a delete lost in a crash leaves
        # records the applier skips by position and deletes again.
        self._deleter = self._connect()
        self._deleter.execute("PRAGMA synchronous = NORMAL")
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        with self._write_lock:
            self._writer.execute("BEGIN IMMEDIATE")
            self._writer.execute(
                "CREATE TABLE IF NOT EXISTS records ("
                " position INTEGER PRIMARY KEY AUTOINCREMENT,"
                " events INTEGER NOT NULL, body BLOB NOT NULL)"
            )
            self._writer.execute("CREATE TABLE IF NOT EXISTS log (id TEXT NOT NULL)")
            row = self._writer.execute("SELECT id FROM log").fetchone()
            if row is None:  # a new log: a new id, so no store position of an old one applies
                row = (uuid.uuid4().hex,)
                self._writer.execute("INSERT INTO log (id) VALUES (?)", row)
            self._writer.execute("COMMIT")
        self.log_id: str = row[0]
        if max_bytes is not None:
            # A size cap as SQLite enforces it: past it a commit fails with
            # SQLITE_FULL, exactly as on a full disk (operations: sizing).
            self._writer.execute(f"PRAGMA max_page_count = {max(8, max_bytes // PAGE_BYTES)}")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute(f"PRAGMA page_size = {PAGE_BYTES}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")  # fsync the WAL at every commit
        return conn

    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        with self._write_lock:
            try:
                self._writer.execute("BEGIN IMMEDIATE")
                try:
                    self._writer.executemany(
                        "INSERT INTO records (events, body) VALUES (?, ?)", records
                    )
                    last = self._writer.execute("SELECT last_insert_rowid()").fetchone()[0]
                    self._writer.execute("COMMIT")
                except BaseException:
                    if self._writer.in_transaction:
                        self._writer.execute("ROLLBACK")
                    raise
            except sqlite3.OperationalError as err:
                if err.sqlite_errorcode == sqlite3.SQLITE_FULL:
                    raise LogFull(str(err)) from err
                raise
        return int(last)

    def read(self, after: int, max_events: int) -> list[tuple[int, bytes]]:
        out: list[tuple[int, bytes]] = []
        total = 0
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT position, events, body FROM records WHERE position > ? ORDER BY position",
                (after,),
            )
            for position, events, body in rows:
                out.append((position, body))
                total += events
                if total >= max_events:
                    break
            rows.close()
        return out

    def discard(self, upto: int) -> None:
        with self._write_lock:
            self._deleter.execute("DELETE FROM records WHERE position <= ?", (upto,))

    def backlog(self) -> int:
        with self._read_lock:
            return int(self._reader.execute("SELECT total(events) FROM records").fetchone()[0])

    def close(self) -> None:
        for conn in (self._writer, self._reader, self._deleter):
            conn.close()


class ApplierLease(Protocol):
    """Decides which one process applies a log to the store."""

    def acquire(self) -> bool:
        """True if this process applies (now or already); never blocks."""
        ...

    def release(self) -> None: ...


class ApplierLock:
    """Who applies a log: the process holding an flock on `<log>.applier` (freed at its exit)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(f"{path}.applier")
        self._file: IO[bytes] | None = None

    def acquire(self) -> bool:
        """True if this process applies (now or already); never blocks."""
        if self._file is not None:
            return True
        handle = open(self.path, "ab")  # noqa: SIM115 - held open while applying
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._file = handle
        return True

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing the file drops the flock
            self._file = None
