"""Migration 0007 adds local_slots and forgets the day marks, so every day is rolled anew."""

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from conftest import _postgres_database
from sqlalchemy import Engine, text
from weldpulse.domain import PAGEVIEW, Event
from weldpulse.storage import engines, migrate, rollups, writer

DAY = date(2024, 1, 15)
# Visitor 1 from 09:05 to 22:40 (a Berlin midnight cuts between), visitor 2 at 23:10 only.
EVENTS = [(1, datetime(2024, 1, 15, 9, 5)), (1, datetime(2024, 1, 15, 22, 40)),
          (2, datetime(2024, 1, 15, 23, 10)), (2, datetime(2024, 1, 15, 23, 12))]  # fmt: skip


def _config(conn: object) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS / "events"))
    cfg.set_main_option("version_table", "alembic_version_events")
    cfg.attributes["connection"] = conn
    return cfg


@pytest.fixture(params=["embedded", "postgres"])
def rolled_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An events store with a day of events, downgraded to 0005 with its day marked rolled."""
    pg = _postgres_database() if request.param == "postgres" else None
    engine = engines.connect(next(pg) if pg else f"duckdb:///{tmp_path}/events.duckdb")
    migrate.upgrade(engine, "events")
    writer.record(engine, [Event("s", ts, PAGEVIEW, v, "/") for v, ts in EVENTS])
    with engine.begin() as conn:
        command.downgrade(_config(conn), "0005")
        conn.execute(text("INSERT INTO rolled_days VALUES ('s', :d, :d)"), {"d": DAY})
    try:
        yield engine
    finally:
        engine.dispose()
        if pg:
            next(pg, None)


def test_upgrade_unmarks_the_days_and_a_roll_fills_the_slots(rolled_at_0005: Engine) -> None:
    migrate.upgrade(rolled_at_0005, "events")
    with rolled_at_0005.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM rolled_days")).scalar() == 0
    rollups.roll_pending(rolled_at_0005, date(2024, 1, 16))
    with rolled_at_0005.connect() as conn:
        rows = conn.execute(
            text("SELECT slot_at, firsts, lasts, pageviews FROM local_slots ORDER BY slot_at")
        ).all()
    assert [tuple(r) for r in rows] == [
        (datetime(2024, 1, 15, 9), 1, 0, 1),
        (datetime(2024, 1, 15, 22, 30), 0, 1, 1),
        (datetime(2024, 1, 15, 23), 1, 1, 2),
    ]
