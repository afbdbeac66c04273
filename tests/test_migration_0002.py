"""Migration 0002 backfills the rollup and pageview links from events stored before it."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from conftest import _postgres_database
from dataset import at, project_a_events
from sqlalchemy import Engine, text
from weldpulse.storage import engines, migrate


@pytest.fixture(params=["embedded", "postgres"])
def at_0001(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An events store migrated to 0001 only, holding project A's events as 0001 stored them."""
    pg = _postgres_database() if request.param == "postgres" else None
    engine = engines.connect(next(pg) if pg else f"duckdb:///{tmp_path}/events.duckdb")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS / "events"))
    cfg.set_main_option("version_table", "alembic_version_events")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
        for e in project_a_events("s1", "s2"):
            session = e.visitor_id * 10 + (e.visitor_id == 1 and e.ts.hour >= 11)
            row = {"s": e.site_id, "ts": e.ts, "n": e.name, "v": e.visitor_id, "sid": session,
                   "p": e.pathname}  # fmt: skip
            conn.execute(text("INSERT INTO events VALUES (:s, :ts, :n, :v, :sid, :p, "
                              "'x', 'US', 'r', 'd', 'b', 'o', '{}')"), row)  # fmt: skip
            conn.execute(text("INSERT INTO sessions VALUES (:sid, :s, :v, :ts, :ts, 0, 0, 0, "
                              "'', '', 'x', 'US', 'r', 'd', 'b', 'o') ON CONFLICT DO NOTHING"), row)  # fmt: skip
    try:
        yield engine
    finally:
        engine.dispose()
        if pg:
            next(pg, None)


def test_upgrade_backfills_links_rollup_and_last_pageview(at_0001: Engine) -> None:
    migrate.upgrade(at_0001, "events")
    with at_0001.connect() as conn:
        links = conn.execute(text(
            "SELECT visitor_id, pathname, prev_pathname, prev_ts FROM events "
            "WHERE prev_ts IS NOT NULL ORDER BY ts"
        )).all()  # fmt: skip
        days = conn.execute(text(
            "SELECT visitor_id, day, pageviews, events FROM visitor_days ORDER BY visitor_id, day"
        )).all()  # fmt: skip
        last: dict[int, Any] = dict(
            conn.execute(text("SELECT session_id, last_pageview_at FROM sessions")).all()
        )
    assert [(v, p, prev, ts) for v, p, prev, ts in links] == [
        (1, "/pricing", "/", at("10:00:00")),
        (1, "/docs", "/pricing", at("10:00:30")),
        (3, "/", "/pricing", at("10:20:00")),
        (3, "/pricing", "/", at("10:40:00")),
        (5, "/docs", "/", at("23:50:00")),  # across midnight
    ]
    # V5's id is on two days; V4 has a custom event only; V7 is on the 14th.
    assert [(v, str(d), pv, n) for v, d, pv, n in days] == [
        (1, "2024-01-15", 4, 6), (2, "2024-01-15", 1, 1), (3, "2024-01-15", 3, 3),
        (4, "2024-01-15", 0, 1), (5, "2024-01-15", 1, 1), (5, "2024-01-16", 1, 1),
        (6, "2024-01-15", 1, 1), (7, "2024-01-14", 1, 1),
    ]  # fmt: skip
    assert last[10] == at("10:05:00") and last[11] == at("11:00:00") and last[40] is None
