"""Saved funnels and the goals funnel steps name, in the metadata store: statements."""

import json
import uuid
from datetime import UTC, datetime

from sqlalchemy import Connection, Delete, Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from weldpulse.errors import BadRequest
from weldpulse.storage.schema import funnels, goals

MAX_PER_SITE = 50


def goals_named_stmt(site_id: str, names: list[str]) -> Select:
    """The site's goals of these names: name, event_name, page_path."""
    return select(goals.c.name, goals.c.event_name, goals.c.page_path).where(
        goals.c.site_id == site_id, goals.c.name.in_(names)
    )


def site_funnels_stmt(site_id: str) -> Select:
    """The site's saved funnels, oldest first."""
    return (
        select(funnels)
        .where(funnels.c.site_id == site_id)
        .order_by(funnels.c.created_at, funnels.c.id)
    )


def funnel_stmt(site_id: str, funnel_id: str) -> Select:
    """The saved funnel with this id, if it belongs to this site."""
    return select(funnels).where(funnels.c.site_id == site_id, funnels.c.id == funnel_id)


def delete_funnel_stmt(site_id: str, funnel_id: str) -> Delete:
    return delete(funnels).where(funnels.c.site_id == site_id, funnels.c.id == funnel_id)


def create_funnel(conn: Connection, site_id: str, name: str, definition: dict) -> dict:
    """Inserts a funnel (name checked unique and the site under its limit); returns its row.

    Two concurrent creations may both pass the count; the unique name still holds,
    and the limit is then exceeded by at most the number of racing writers.
    """
    count = conn.execute(
        select(func.count()).select_from(funnels).where(funnels.c.site_id == site_id)
    ).scalar_one()
    if count >= MAX_PER_SITE:
        raise BadRequest(f"Invalid site_id: the site already has {MAX_PER_SITE} funnels, the most "
                         "allowed; delete one first")  # fmt: skip
    taken = conn.execute(
        select(funnels.c.id).where(funnels.c.site_id == site_id, funnels.c.name == name)
    ).first()
    if taken is not None:
        raise BadRequest(f"Invalid name: the site already has a funnel named {name!r}")
    row = {
        "id": str(uuid.uuid4()),
        "site_id": site_id,
        "name": name,
        "definition": json.dumps(definition, separators=(",", ":")),
        "created_at": datetime.now(UTC).replace(tzinfo=None),
    }
    try:
        conn.execute(funnels.insert().values(**row))
    except IntegrityError:  # a concurrent creation took the name
        raise BadRequest(f"Invalid name: the site already has a funnel named {name!r}") from None
    return row
