"""Writes enriched events and keeps the sessions table current (a SESSION_GAP ends one)."""

import io
import json
import secrets
from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, TypeAlias

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as csv
from sqlalchemy import (
    BigInteger,
    Connection,
    Engine,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.types import ARRAY
from weldpulse.domain import PAGEVIEW, SESSION_GAP, Columns, Event, columns_of, in_time_order
from weldpulse.ingest import enrich
from weldpulse.storage import rollups
from weldpulse.storage.locks import write_transaction
from weldpulse.storage.schema import (
    ATTRIBUTES,
    EVENTS_SEQ,
    events,
    ingest_positions,
    sessions,
    visitor_days,
)

ARRAY_INT = ARRAY(BigInteger)


def open_sessions_stmt(
    site_ids: Iterable[str], visitor_ids: Iterable[int], since: datetime
) -> Select:
    """Sessions of these visitors whose last event is recent enough to continue.

    The visitor ids travel as one array parameter, not thousands of bound
    values, so a 50,000-event batch compiles in constant time; `IN (SELECT
    unnest(...))` is a hash semi-join, ~2x faster on DuckDB than `= ANY`.
    """
    ids = sorted(set(visitor_ids))
    return select(sessions).where(
        sessions.c.site_id.in_(sorted(set(site_ids))),
        sessions.c.visitor_id.in_(select(func.unnest(bindparam("visitors", ids, ARRAY_INT)))),
        sessions.c.ended_at >= since,
    )


def _new_session(cols: Columns, i: int) -> dict[str, Any]:
    """A session that row `i` of the batch starts."""
    return {
        "session_id": secrets.randbits(63),
        "site_id": cols["site_id"][i],
        "visitor_id": cols["visitor_id"][i],
        "started_at": cols["ts"][i],
        "ended_at": cols["ts"][i],
        "duration": 0.0,
        "pageviews": 0,
        "events": 0,
        "entry_page": "",
        "exit_page": "",
        "referrer_source": cols["referrer_source"][i],
        "country": cols["country"][i],
        "region": cols["region"][i],
        "device_type": cols["device_type"][i],
        "browser": cols["browser"][i],
        "os": cols["os"][i],
        "last_pageview_at": None,
        **{name: cols[name][i] for name in ATTRIBUTES},
        "channel": enrich.channel(cols["referrer_source"][i], cols["utm_medium"][i]),
    }


EVENT_COLUMNS = tuple(c.name for c in events.columns)
SESSION_COLUMNS = tuple(c.name for c in sessions.columns)
UPDATABLE = (
    "ended_at", "duration", "pageviews", "events", "entry_page", "exit_page", "last_pageview_at",
)  # fmt: skip
# The event columns stored as the Event has them (the others are computed here).
PLAIN_COLUMNS = tuple(
    c for c in EVENT_COLUMNS if c not in ("session_id", "props", "prev_pathname", "prev_ts", "seq")
)
DAY_KEY = ("site_id", "day", "visitor_id", "country", "region", "device_type", "browser", "os")


def _sessionize(
    conn: Connection, cols: Columns
) -> tuple[dict[str, list], dict[int, dict], dict[int, dict]]:
    """Assigns events (columns, in time order) to sessions: event columns, new and changed ones."""
    times, sites, visitors = cols["ts"], cols["site_id"], cols["visitor_id"]
    since = times[0] - SESSION_GAP
    latest: dict[tuple[str, int], dict] = {}
    for row in conn.execute(open_sessions_stmt(sites, visitors, since)):
        key = (row.site_id, row.visitor_id)
        if key not in latest or row.ended_at > latest[key]["ended_at"]:
            latest[key] = dict(row._mapping)
    created: dict[int, dict] = {}
    changed: dict[int, dict] = {}
    session_ids, prev_pathnames, prev_ts = [], [], []
    rows = zip(
        times, cols["name"], zip(sites, visitors, strict=True), cols["pathname"], strict=True
    )
    for i, (ts, name, key, path) in enumerate(rows):
        pageview = name == PAGEVIEW
        s = latest.get(key)
        if s is None or ts - s["ended_at"] > SESSION_GAP:
            s = latest[key] = _new_session(cols, i)
            created[s["session_id"]] = s
        elif s["session_id"] not in created:
            changed[s["session_id"]] = s
        if ts > s["ended_at"]:
            s["ended_at"] = ts
        s["events"] += 1
        previous = s["last_pageview_at"]
        if pageview and (previous is None or previous <= ts):
            prev_pathnames.append(s["exit_page"] if previous else None)
            prev_ts.append(previous)
            s["last_pageview_at"] = ts
        else:  # not a pageview, or one arriving after a later one: no link
            prev_pathnames.append(None)
            prev_ts.append(None)
        if pageview:
            s["pageviews"] += 1
            s["entry_page"] = s["entry_page"] or path
            s["exit_page"] = path
        session_ids.append(s["session_id"])
    for s in (*created.values(), *changed.values()):
        s["duration"] = (s["ended_at"] - s["started_at"]).total_seconds()
    columns: dict[str, Any] = {name: cols[name] for name in PLAIN_COLUMNS}
    columns["seq"] = _next_seqs(conn, len(times))
    columns["session_id"] = session_ids
    columns["prev_pathname"] = prev_pathnames
    columns["prev_ts"] = prev_ts
    columns["props"] = [
        json.dumps(p, separators=(",", ":"), sort_keys=True) if p else "{}" for p in cols["props"]
    ]
    return {name: columns[name] for name in EVENT_COLUMNS}, created, changed


def _next_seqs(conn: Connection, n: int) -> list[int]:
    """`n` fresh values of events.seq, ascending, for the batch in its (time, receive) order.

    From a database sequence rather than a counter in this process: values
    are unique across every server sharing one PostgreSQL store. Values a
    rolled-back batch drew are skipped, never reused; only their order counts.
    """
    values = select(EVENTS_SEQ.next_value().label("v")).select_from(func.generate_series(1, n))
    if conn.dialect.name in ("duckdb", "postgresql"):  # one row, not n through the driver
        return sorted(conn.execute(select(func.array_agg(values.subquery().c.v))).scalar_one())
    return sorted(conn.execute(values).scalars())


def _visitor_days(table: pa.Table) -> dict[str, list]:
    """The batch's rows of the visitor_days rollup: pageviews and events per visitor-day.

    Grouped by Arrow over the events' table (hashing in C), not per event in Python.
    """
    keys = pa.table(
        {
            **{name: table.column(name) for name in DAY_KEY if name != "day"},
            "day": pc.cast(table.column("ts"), pa.date32()),
            "pageview": pc.cast(pc.equal(table.column("name"), PAGEVIEW), pa.int64()),
        }
    )
    days = keys.group_by(list(DAY_KEY)).aggregate([("pageview", "sum"), ("pageview", "count")])
    columns = {name: days.column(name).to_pylist() for name in DAY_KEY}
    columns["pageviews"] = days.column("pageview_sum").to_pylist()
    columns["events"] = days.column("pageview_count").to_pylist()
    return columns


def _touched_days(
    cols: dict[str, list], days: dict[str, list], changed: Iterable[dict]
) -> set[tuple[str, date]]:
    """The (site, day) pairs whose day rollups these events change.

    Their own days (those of their visitor_days rows), the days of the
    pageviews they follow (time on page) and the start days of the sessions
    they continue (pageviews, bounces).
    """
    touched = set(zip(days["site_id"], days["day"], strict=True))
    followed = {(site, p) for site, p in zip(cols["site_id"], cols["prev_ts"], strict=True) if p}
    touched |= {(site, p.date()) for site, p in followed}
    return touched | {(s["site_id"], s["started_at"].date()) for s in changed}


def _by_column(rows: Iterable[dict], names: Iterable[str]) -> dict[str, list]:
    rows = list(rows)
    return {name: [r[name] for r in rows] for name in names}


def _driver(conn: Connection) -> Any:
    """The DB-API connection under `conn`, inside the same transaction."""
    raw = conn.connection.driver_connection
    assert raw is not None
    return raw


Rows: TypeAlias = dict[str, list] | pa.Table  # columns as lists, or as an Arrow table


def _arrow(columns: Rows) -> pa.Table:
    if isinstance(columns, pa.Table):
        return columns
    return pa.table({name: _array(values) for name, values in columns.items()})


def _array(values: list) -> pa.Array:
    """One column as Arrow; one object in every row (an import's site, "" of a field, as
    decode repeats them) is filled in C rather than converted row by row."""
    if values and values[-1] is values[0] and values.count(values[0]) == len(values):
        return pa.repeat(values[0], len(values))
    return pa.array(values)


class BulkWriter:
    """Any SQL engine: executemany inserts and updates (SQLite in tests, a fallback)."""

    def append(self, conn: Connection, table: Table, columns: Rows) -> None:
        """Inserts rows given as columns."""
        if isinstance(columns, pa.Table):
            columns = columns.to_pydict()
        rows = [dict(zip(columns, r, strict=True)) for r in zip(*columns.values(), strict=True)]
        conn.execute(table.insert(), rows)

    def update_sessions(self, conn: Connection, changed: list[dict]) -> None:
        """Stores the UPDATABLE columns of sessions this batch continued."""
        stmt = (
            update(sessions)
            .where(sessions.c.session_id == bindparam("sid"))
            .values({c: bindparam(f"new_{c}") for c in UPDATABLE})
        )
        rows = [{"sid": s["session_id"], **{f"new_{c}": s[c] for c in UPDATABLE}} for s in changed]
        conn.execute(stmt, rows)


class DuckDBWriter(BulkWriter):
    """DuckDB's bulk path: scan an Arrow table; executemany inserts ~6.5k rows/s there."""

    def _scan(self, conn: Connection, name: str, columns: Rows, sql: str) -> None:
        raw = _driver(conn)
        raw.register(name, _arrow(columns))
        try:
            raw.execute(sql)
        finally:
            raw.unregister(name)

    def append(self, conn: Connection, table: Table, columns: Rows) -> None:
        name = f"_weldpulse_{table.name}_batch"
        names = columns.column_names if isinstance(columns, pa.Table) else columns
        sql = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM {name}"
        self._scan(conn, name, columns, sql)

    def update_sessions(self, conn: Connection, changed: list[dict]) -> None:
        sql = (
            "UPDATE sessions SET "
            + ", ".join(f"{c} = ch.{c}" for c in UPDATABLE)
            + " FROM _weldpulse_changed AS ch WHERE sessions.session_id = ch.session_id"
        )
        columns = _by_column(changed, ("session_id", *UPDATABLE))
        self._scan(conn, "_weldpulse_changed", columns, sql)


CSV_OPTIONS = csv.WriteOptions(include_header=False)


class PostgresWriter(BulkWriter):
    """PostgreSQL's bulk path: COPY of CSV that Arrow writes, a whole batch in one C call.

    psycopg's write_row was ~20 µs a row in Python; Arrow quotes every string
    (so "" stays an empty string) and leaves nulls unquoted empty (NULL in CSV).
    """

    def append(self, conn: Connection, table: Table, columns: Rows) -> None:
        self._copy(conn, table.name, columns)

    def update_sessions(self, conn: Connection, changed: list[dict]) -> None:
        """COPY into a temporary table, then one UPDATE … FROM (not one UPDATE per session)."""
        conn.exec_driver_sql(
            "CREATE TEMPORARY TABLE _weldpulse_changed ON COMMIT DROP AS "
            f"SELECT session_id, {', '.join(UPDATABLE)} FROM sessions WITH NO DATA"
        )
        self._copy(conn, "_weldpulse_changed", _by_column(changed, ("session_id", *UPDATABLE)))
        conn.exec_driver_sql(
            "UPDATE sessions SET "
            + ", ".join(f"{c} = ch.{c}" for c in UPDATABLE)
            + " FROM _weldpulse_changed AS ch WHERE sessions.session_id = ch.session_id"
        )

    @staticmethod
    def _copy(conn: Connection, table: str, columns: Rows) -> None:
        data = io.BytesIO()
        arrow = _arrow(columns)
        csv.write_csv(arrow, data, CSV_OPTIONS)
        cursor = _driver(conn).cursor()
        names = ", ".join(arrow.column_names)
        with cursor.copy(f"COPY {table} ({names}) FROM STDIN WITH (FORMAT csv)") as copy:
            copy.write(data.getbuffer())


_WRITERS: dict[str, BulkWriter] = {"duckdb": DuckDBWriter(), "postgresql": PostgresWriter()}


def writer_for(dialect: str) -> BulkWriter:
    """The bulk writer of an engine's dialect: the one place engines differ when writing."""
    return _WRITERS.get(dialect) or BulkWriter()


def _save_position(conn: Connection, position: tuple[str, int]) -> None:
    """Records how far the ingest log `position[0]` is applied, in the batch's transaction."""
    log_id, pos = position
    conn.execute(delete(ingest_positions).where(ingest_positions.c.log_id == log_id))
    conn.execute(ingest_positions.insert().values(log_id=log_id, position=pos))


def applied_position(engine: Engine, log_id: str) -> int:
    """How far the ingest log `log_id` is applied to this store (0: nothing yet)."""
    stmt = select(ingest_positions.c.position).where(ingest_positions.c.log_id == log_id)
    with engine.connect() as conn:
        return int(conn.execute(stmt).scalar() or 0)


def record(engine: Engine, batch: Iterable[Event], position: tuple[str, int] | None = None) -> int:
    """Stores the events and their sessions in one transaction; see record_columns."""
    return record_columns(engine, columns_of(list(batch)), position)


def record_columns(engine: Engine, cols: Columns, position: tuple[str, int] | None = None) -> int:
    """Stores events given as columns and their sessions in one transaction; returns how many.

    Committed before it returns, with `position` (ingest log id, last record
    applied) when given, so a replay after a crash neither loses nor repeats
    a batch. DuckDB gets Arrow scans, PostgreSQL COPY, others executemany.
    """
    # A stable sort: events with equal timestamps keep their receive order,
    # which the seq values drawn in this order then record.
    cols = in_time_order(cols)
    n = len(cols["ts"])
    if not n and position is None:
        return 0
    bulk = writer_for(engine.dialect.name)
    with write_transaction(engine) as conn:
        if n:
            event_cols, created, changed = _sessionize(conn, cols)
            table = _arrow(event_cols)  # once: the insert and the rollup both read it
            days = _visitor_days(table)
            rollups.unmark(conn, _touched_days(event_cols, days, changed.values()))
            bulk.append(conn, events, table)
            if created:
                bulk.append(conn, sessions, _by_column(created.values(), SESSION_COLUMNS))
            bulk.append(conn, visitor_days, days)
            if changed:
                bulk.update_sessions(conn, list(changed.values()))
        if position is not None:
            _save_position(conn, position)
    return n


def compact_visitor_days(engine: Engine, day: date) -> int:
    """Merges a day's visitor_days rows into one per key; returns how many remain.

    record() appends one row per visitor and batch, so small batches (single
    collects) leave several rows per visitor-day; answers stay exact, scans
    get longer. Run it for days that are over, e.g. yesterday, once a day.
    """
    keys = [visitor_days.c[k] for k in DAY_KEY]
    merged = (
        select(
            *keys,
            func.sum(visitor_days.c.pageviews).label("pageviews"),
            func.sum(visitor_days.c.events).label("events"),
        )
        .where(visitor_days.c.day == day)
        .group_by(*keys)
    )
    with write_transaction(engine, exclusive=True) as conn:
        rows = conn.execute(merged).all()
        conn.execute(delete(visitor_days).where(visitor_days.c.day == day))
        if rows:
            names = (*DAY_KEY, "pageviews", "events")
            writer_for(engine.dialect.name).append(
                conn, visitor_days, {n: [r._mapping[n] for r in rows] for n in names}
            )
    return len(rows)
