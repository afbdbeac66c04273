"""PostgreSQL plans joins of sessions and events without nested loops, and has statistics early.

Issue 10: on a store without statistics (the demo right after seeding) the
planner ran the session <-> event semi-join as a nested loop that rescanned
the range's events per session, seconds on a few thousand events. Events have
no index on session_id, so any nested loop there is such a rescan; the plan
must be a hash (or merge) join whatever the statistics say. Not timed: the
guard reads the plan PostgreSQL chose for the very statement the engine ran.
"""

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import _postgres_database
from google.protobuf import json_format
from sqlalchemy import Engine, event, text
from weldpulse.domain import Event
from weldpulse.ingest.collector import Collector
from weldpulse.ingest.hits import Enriched
from weldpulse.stats.engine import run
from weldpulse.stats.engine.request import parse_query
from weldpulse.storage import engines, writer
from weldpulse.v1 import analytics_pb2 as pb

SITE = "site-pg-plans"
START = datetime(2026, 3, 1)
PAGES = ["/", "/pricing", "/docs", "/blog"]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    """A fresh events store never analyzed: 600 sessions of 5 events over 30 days."""
    database = _postgres_database()
    url = next(database)
    meta_url = f"sqlite:///{tmp_path_factory.mktemp('pg-plans') / 'metadata.sqlite3'}"
    meta, events = engines.open_stores(meta_url, url)
    assert events is not None
    batch = [
        Event(site_id=SITE, ts=START + timedelta(hours=1.2 * v, minutes=i), name="pageview",
              visitor_id=v, pathname=PAGES[(v + i) % len(PAGES)])
        for v in range(600) for i in range(5)
    ]  # fmt: skip
    writer.record(events, batch)
    try:
        yield events
    finally:
        meta.dispose()
        events.dispose()
        next(database, None)


def _plans(events: Engine, body: dict[str, Any]) -> tuple[Any, list[str]]:
    """The answer, and EXPLAIN (FORMAT JSON) of each statement joining sessions, as run."""
    plans: list[str] = []

    def explain(_c: Any, cursor: Any, sql: str, params: Any, _ctx: Any, _many: bool) -> None:
        if "sessions AS s" in sql and sql.lstrip().startswith("SELECT"):
            cursor.execute("EXPLAIN (FORMAT JSON) " + sql, params)
            plans.append(json.dumps(cursor.fetchone()[0]))

    request = json_format.ParseDict({"site_id": SITE, **body}, pb.QueryRequest())
    with engines.snapshot(events) as conn:
        event.listen(conn, "before_cursor_execute", explain)
        try:
            answer = run.answer(conn, parse_query(request, (SITE,), lambda _: "UTC"))
        finally:
            event.remove(conn, "before_cursor_execute", explain)
    return answer, plans


PAGE = {"dimension": "page", "op": "is", "values": ["/pricing"]}
SOURCE = {"dimension": "source", "op": "is", "values": ["Direct / None"]}


@pytest.mark.parametrize("body, first", [
    # Session metrics under an event filter: a semi-join of sessions on their events.
    ({"metrics": ["sessions", "bounce_rate", "views_per_session"], "filters": PAGE}, 600),
    ({"metrics": ["sessions", "views_per_session"], "dimensions": ["source"], "filters": PAGE},
     600),
    # Event metrics under a session filter: events joined to their sessions.
    ({"metrics": ["pageviews", "visitors"], "dimensions": ["page"], "filters": SOURCE}, 750),
    # A session dimension with no filter (attr_days' raw part, the dashboard's panels): 18 s
    # on the demo's 8,600 events before.
    ({"metrics": ["visitors", "pageviews"], "dimensions": ["source"]}, 600),
])  # fmt: skip
def test_sessions_and_events_join_by_hash(store: Engine, body: dict[str, Any], first: int):
    range_ = {"date_range": {"start": "2026-03-01", "end": "2026-03-30"}}
    answer, plans = _plans(store, range_ | body)
    # 600 sessions of 5 pageviews cycling through 4 paths: each sees /pricing; 750 views a path.
    assert answer.rows[0].metrics[0] == first
    assert plans and all('"Nested Loop"' not in p for p in plans), plans
    assert all('"Hash Join"' in p or '"Merge Join"' in p for p in plans), plans


def test_a_store_filled_through_the_collector_has_planner_statistics(store: Engine) -> None:
    """Right after an import, not a minute later when autovacuum may come: the planner counts
    the rows ingestion stored (reltuples is -1 for a table never analysed)."""
    batch = [
        Enriched(Event(site_id=SITE, ts=START + timedelta(days=40, seconds=i), name="pageview",
                       visitor_id=10_000 + i % 300, pathname="/"), None)
        for i in range(2_500)
    ]  # fmt: skip
    collector = Collector(store)
    assert collector.submit(batch).result(timeout=30) == len(batch)
    collector.close()
    with store.connect() as conn:
        counted = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = 'events'::regclass")
        ).scalar()
    assert counted == 3_000 + 2_500  # the fixture's rows (written directly) and these
