"""Creates the SQLAlchemy engines of the two stores and brings their schemas up to date."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from weldpulse import migrate


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets the CLI write keys while the server reads; busy_timeout makes
    # the rare writer collision wait instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=5000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def connect(url: str) -> Engine:
    """An engine for `url`, creating the parent folder of a file database."""
    parsed = make_url(url)
    if parsed.get_backend_name() in ("sqlite", "duckdb") and parsed.database:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed, pool_pre_ping=parsed.get_backend_name() == "postgresql")
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def open_stores(metadata_url: str, events_url: str | None) -> tuple[Engine, Engine | None]:
    """Engines for both stores with migrations applied; events only when asked for."""
    meta = connect(metadata_url)
    migrate.upgrade(meta, "metadata")
    if events_url is None:
        return meta, None
    events = connect(events_url)
    migrate.upgrade(events, "events")
    return meta, events
