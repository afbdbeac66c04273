"""Writes enriched events and keeps the sessions table current (30-minute inactivity)."""

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, Select, bindparam, select, update
from weldpulse.schema import events, sessions

SESSION_TIMEOUT = timedelta(minutes=30)
PAGEVIEW = "pageview"


@dataclass(frozen=True)
class Event:
    """One event after enrichment: everything the stores keep of it."""

    site_id: str
    ts: datetime  # naive UTC
    name: str
    visitor_id: int
    pathname: str = ""
    referrer_source: str = "Direct / None"
    country: str = ""
    region: str = ""
    device_type: str = ""
    browser: str = ""
    os: str = ""
    props: dict[str, str] = field(default_factory=dict)


def open_sessions_stmt(
    site_ids: Iterable[str], visitor_ids: Iterable[int], since: datetime
) -> Select:
    """Sessions of these visitors whose last event is recent enough to continue."""
    return select(sessions).where(
        sessions.c.site_id.in_(sorted(set(site_ids))),
        sessions.c.visitor_id.in_(sorted(set(visitor_ids))),
        sessions.c.ended_at >= since,
    )


def _new_session(e: Event) -> dict[str, Any]:
    return {
        "session_id": secrets.randbits(63),
        "site_id": e.site_id,
        "visitor_id": e.visitor_id,
        "started_at": e.ts,
        "ended_at": e.ts,
        "duration": 0.0,
        "pageviews": 0,
        "events": 0,
        "entry_page": "",
        "exit_page": "",
        "referrer_source": e.referrer_source,
        "country": e.country,
        "region": e.region,
        "device_type": e.device_type,
        "browser": e.browser,
        "os": e.os,
    }


def _sessionize(
    conn: Connection, batch: list[Event]
) -> tuple[list[dict], dict[int, dict], dict[int, dict]]:
    """Assigns events (in time order) to sessions: returns event rows, new and changed sessions."""
    since = batch[0].ts - SESSION_TIMEOUT
    latest: dict[tuple[str, int], dict] = {}
    for row in conn.execute(
        open_sessions_stmt((e.site_id for e in batch), (e.visitor_id for e in batch), since)
    ):
        key = (row.site_id, row.visitor_id)
        if key not in latest or row.ended_at > latest[key]["ended_at"]:
            latest[key] = dict(row._mapping)
    created: dict[int, dict] = {}
    changed: dict[int, dict] = {}
    event_rows = []
    for e in batch:
        key = (e.site_id, e.visitor_id)
        s = latest.get(key)
        if s is None or e.ts - s["ended_at"] > SESSION_TIMEOUT:
            s = latest[key] = _new_session(e)
            created[s["session_id"]] = s
        elif s["session_id"] not in created:
            changed[s["session_id"]] = s
        s["ended_at"] = max(s["ended_at"], e.ts)
        s["duration"] = (s["ended_at"] - s["started_at"]).total_seconds()
        s["events"] += 1
        if e.name == PAGEVIEW:
            s["pageviews"] += 1
            s["entry_page"] = s["entry_page"] or e.pathname
            s["exit_page"] = e.pathname
        event_rows.append(
            {
                "site_id": e.site_id,
                "ts": e.ts,
                "name": e.name,
                "visitor_id": e.visitor_id,
                "session_id": s["session_id"],
                "pathname": e.pathname,
                "referrer_source": e.referrer_source,
                "country": e.country,
                "region": e.region,
                "device_type": e.device_type,
                "browser": e.browser,
                "os": e.os,
                "props": json.dumps(e.props, separators=(",", ":"), sort_keys=True),
            }
        )
    return event_rows, created, changed


UPDATABLE = ("ended_at", "duration", "pageviews", "events", "entry_page", "exit_page")


def record(engine: Engine, batch: Iterable[Event]) -> int:
    """Stores the events and their sessions in one transaction; returns how many were stored."""
    ordered = sorted(batch, key=lambda e: e.ts)
    if not ordered:
        return 0
    with engine.begin() as conn:
        event_rows, created, changed = _sessionize(conn, ordered)
        conn.execute(events.insert(), event_rows)
        if created:
            conn.execute(sessions.insert(), list(created.values()))
        if changed:
            stmt = (
                update(sessions)
                .where(sessions.c.session_id == bindparam("sid"))
                .values({c: bindparam(f"new_{c}") for c in UPDATABLE})
            )
            conn.execute(
                stmt,
                [
                    {"sid": s["session_id"], **{f"new_{c}": s[c] for c in UPDATABLE}}
                    for s in changed.values()
                ],
            )
    return len(event_rows)
