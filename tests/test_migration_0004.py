"""Migration 0004 adds the dimension columns, the receive order and the sessions' channel."""

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from conftest import _postgres_database
from sqlalchemy import Engine, text
from weldpulse.domain import Event
from weldpulse.storage import engines, migrate, writer

TS = datetime(2024, 1, 15, 10, 0, 0)
EARLIER = datetime(2024, 1, 15, 9, 0, 0)
# (path, ts) in insertion order: three share a timestamp, the earliest comes last.
EVENTS = [("/b", TS), ("/a", TS), ("/c", TS), ("/z", EARLIER)]
SOURCES = {
    "Google": "Organic Search",
    "Bing": "Organic Search",
    "Direct / None": "Direct",
    "Twitter": "Organic Social",
    "Hacker News": "Organic Social",
    "newsletter": "Email",
    "ref.com": "Referral",
}
DIMENSIONS = ("hostname", "referrer", "utm_source", "utm_medium", "utm_campaign", "utm_content",
              "utm_term", "city")  # fmt: skip


@pytest.fixture(params=["embedded", "postgres"])
def at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An events store at 0003 holding events and sessions as 0003 stored them."""
    pg = _postgres_database() if request.param == "postgres" else None
    engine = engines.connect(next(pg) if pg else f"duckdb:///{tmp_path}/events.duckdb")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS / "events"))
    cfg.set_main_option("version_table", "alembic_version_events")
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0003")
        for path, ts in EVENTS:
            conn.execute(
                text(
                    "INSERT INTO events (site_id, ts, name, visitor_id, session_id, pathname, "
                    "referrer_source, country, region, device_type, browser, os, props) "
                    "VALUES ('s', :ts, 'pageview', 1, 1, :p, 'Google', 'US', 'r', 'd', 'b', "
                    "'o', '{}')"
                ),
                {"ts": ts, "p": path},
            )
        for sid, source in enumerate(SOURCES):
            conn.execute(
                text(
                    "INSERT INTO sessions (session_id, site_id, visitor_id, started_at, "
                    "ended_at, duration, pageviews, events, entry_page, exit_page, "
                    "referrer_source, country, region, device_type, browser, os) "
                    "VALUES (:sid, 's', :sid, :ts, :ts, 0, 1, 1, '/', '/', :src, 'US', 'r', "
                    "'d', 'b', 'o')"
                ),
                {"sid": sid, "ts": TS, "src": source},
            )
    try:
        yield engine
    finally:
        engine.dispose()
        if pg:
            next(pg, None)


def test_upgrade_backfills_order_and_channel_and_leaves_the_rest_empty(at_0003: Engine) -> None:
    migrate.upgrade(at_0003, "events")
    dims = ", ".join(DIMENSIONS)
    with at_0003.connect() as conn:
        rows = conn.execute(text(f"SELECT pathname, seq, {dims} FROM events ORDER BY seq")).all()
        sessions = conn.execute(text("SELECT referrer_source, channel FROM sessions")).all()
        unknown = conn.execute(
            text(
                "SELECT count(*) FROM sessions WHERE referrer <> '' OR utm_source <> '' OR "
                "utm_medium <> '' OR utm_campaign <> '' OR utm_content <> '' OR "
                "utm_term <> '' OR city <> ''"
            )
        ).scalar_one()
    # Time first, then the order the rows were stored in.
    assert [(r[0], r[1]) for r in rows] == [("/z", 1), ("/b", 2), ("/a", 3), ("/c", 4)]
    assert all(value == "" for r in rows for value in r[2:])
    assert {source: channel for source, channel in sessions} == SOURCES
    assert unknown == 0

    # New events continue the order after the backfilled values.
    stored = writer.record(
        at_0003,
        [
            Event("s", TS, "pageview", 9, "/new", hostname="x.example", utm_medium="cpc"),
            Event("s", TS, "pageview", 9, "/newer", hostname="x.example"),
        ],
    )
    assert stored == 2
    with at_0003.connect() as conn:
        after = conn.execute(
            text("SELECT pathname, seq, hostname FROM events WHERE seq > 4 ORDER BY seq")
        ).all()
        channel = conn.execute(text("SELECT channel FROM sessions WHERE visitor_id = 9")).all()
    assert [(p, h) for p, _, h in after] == [("/new", "x.example"), ("/newer", "x.example")]
    assert after[0][1] == 5 and after[1][1] > 5
    assert channel == [("Direct",)]
