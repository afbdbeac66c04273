"""Goals of a site in the metadata store: statements and the checked create and delete."""

import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, Delete, Select, delete, func, select
from weldpulse.storage.schema import goals

MAX_GOALS = 100  # per site
MAX_NAME = 120  # characters
MAX_EVENT_NAME = 120  # as a custom event's name
MAX_PAGE_PATH = 2000  # bytes, as a page URL


def site_goals_stmt(site_ids: tuple[str, ...] | list[str]) -> Select:
    """The goals of these sites, oldest first."""
    return (
        select(goals).where(goals.c.site_id.in_(site_ids)).order_by(goals.c.created_at, goals.c.id)
    )


def delete_goal_stmt(site_id: str, goal_id: str) -> Delete:
    return delete(goals).where(goals.c.site_id == site_id, goals.c.id == goal_id)


def _check(name: str, event_name: str, page_path: str) -> None:
    """ValueError naming the field: the contract's limits of a goal."""
    if not 1 <= len(name) <= MAX_NAME or not name.strip():
        raise ValueError(f"name: must be 1 to {MAX_NAME} characters, not blank")
    if bool(event_name) == bool(page_path):
        raise ValueError("event_name, page_path: give exactly one of the two")
    if event_name and len(event_name) > MAX_EVENT_NAME:
        raise ValueError(f"event_name: longer than {MAX_EVENT_NAME} characters")
    if page_path and len(page_path.encode()) > MAX_PAGE_PATH:
        raise ValueError(f"page_path: longer than {MAX_PAGE_PATH} bytes")


def create_goal(
    conn: Connection, site_id: str, name: str, event_name: str = "", page_path: str = ""
) -> dict:
    """Adds a goal to the site (which the caller has checked); ValueError naming the field.

    Count and name are checked in the same transaction as the insert; the unique
    constraint on (site_id, name) still catches a concurrent twin.
    """
    _check(name, event_name, page_path)
    count = conn.execute(select(func.count()).where(goals.c.site_id == site_id)).scalar_one()
    if count >= MAX_GOALS:
        raise ValueError(f"goals: the site already has {MAX_GOALS} goals, the most allowed")
    same = select(goals.c.id).where(goals.c.site_id == site_id, goals.c.name == name)
    if conn.execute(same).first() is not None:
        raise ValueError(f"name: the site already has a goal named {name[:120]!r}")
    row = {
        "id": str(uuid.uuid4()),
        "site_id": site_id,
        "name": name,
        "event_name": event_name or None,
        "page_path": page_path or None,
        "created_at": datetime.now(UTC).replace(tzinfo=None),
    }
    conn.execute(goals.insert().values(**row))
    return row
