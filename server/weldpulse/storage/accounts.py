"""Projects, sites and API keys in the metadata store: statements and small operations."""

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Select, Update, select, update
from weldpulse.errors import BadRequest
from weldpulse.storage import keys
from weldpulse.storage.schema import api_keys, projects, sites
from weldpulse.timezones import parse_timezone

PLANS = ("free", "pro", "enterprise")
SCOPES = ("stats:read", "events:write", "sites:write")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def create_project(conn: Connection, name: str, plan: str = "pro") -> str:
    if plan not in PLANS:
        raise ValueError(f"plan must be one of {', '.join(PLANS)}")
    project_id = str(uuid.uuid4())
    conn.execute(projects.insert().values(id=project_id, name=name, plan=plan, created_at=_now()))
    return project_id


SITE_FIELDS = ("id", "domain", "name", "site_key", "is_active", "created_at", "timezone")
MAX_DOMAIN, MAX_SITE_NAME = 253, 200  # the columns' lengths
# A lower-case host name: dot-separated labels of letters, digits and inner hyphens.
_HOST = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*$")


def _domain(conn: Connection, project_id: str, domain: str) -> str:
    """The domain if it is a lower-case host name no other site of the project has."""
    if len(domain) > MAX_DOMAIN or not _HOST.fullmatch(domain):
        raise ValueError(
            f"domain: {domain[:100]!r} is not a lower-case host name (labels of a-z, 0-9 and "
            f"inner '-', joined by '.', at most {MAX_DOMAIN} characters), e.g. example.com"
        )
    taken = select(sites.c.id).where(sites.c.project_id == project_id, sites.c.domain == domain)
    if conn.execute(taken).first() is not None:
        raise ValueError(f"domain: the project already has a site {domain!r}")
    return domain


def _site_name(name: str) -> str:
    if not name.strip() or len(name) > MAX_SITE_NAME:
        raise ValueError(f"name: must be 1 to {MAX_SITE_NAME} characters, not blank")
    return name


def _zone_key(timezone: str) -> str:
    """An IANA key, or ValueError with the API's wording (the CLI prints it)."""
    try:
        return parse_timezone(timezone).key
    except BadRequest as err:
        raise ValueError(err.message) from None


def create_site(
    conn: Connection, project_id: str, domain: str, name: str | None = None,
    timezone: str = "UTC",
) -> dict:  # fmt: skip
    """Adds a site; ValueError naming the field for a bad domain, name or time zone."""
    zone = _zone_key(timezone)
    if conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is None:
        raise ValueError(f"no project {project_id}")
    row = {
        "id": str(uuid.uuid4()),
        "project_id": project_id,
        "domain": _domain(conn, project_id, domain),
        "name": _site_name(name) if name else domain,
        "site_key": keys.new_site_key(),
        "is_active": True,
        "created_at": _now(),
        "timezone": zone,
    }
    conn.execute(sites.insert().values(**row))
    return row


def update_site(
    conn: Connection, site_id: str, name: str | None = None, timezone: str | None = None
) -> dict:
    """Changes what is given of the site's name and time zone; returns the site as it is now.

    The zone changes how later queries bucket local days, never stored rows.
    """
    changes: dict[str, str] = {}
    if timezone is not None:
        changes["timezone"] = _zone_key(timezone)
    if name is not None:
        changes["name"] = _site_name(name)
    if changes:
        conn.execute(update(sites).where(sites.c.id == site_id).values(**changes))
    row = conn.execute(select(sites).where(sites.c.id == site_id)).first()
    if row is None:
        raise ValueError(f"no site {site_id}")
    return dict(row._mapping)


def create_api_key(
    conn: Connection,
    project_id: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    site_id: str | None = None,
) -> dict:
    """Creates a key and returns it with its secret, which is never stored or shown again.

    `expires_at` (naive UTC) makes the key invalid from that moment on;
    `site_id` limits it to that one site of the project.
    """
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValueError(f"unknown scope {', '.join(unknown)}; scopes are {', '.join(SCOPES)}")
    if conn.execute(select(projects.c.id).where(projects.c.id == project_id)).first() is None:
        raise ValueError(f"no project {project_id}")
    if site_id is not None and site_project(conn, site_id) != project_id:
        raise ValueError(f"no site {site_id} in project {project_id}")
    secret = keys.new_api_key()
    key_id = str(uuid.uuid4())
    conn.execute(
        api_keys.insert().values(
            id=key_id,
            project_id=project_id,
            key_hash=keys.hash_key(secret),
            prefix=keys.display_prefix(secret),
            scopes=" ".join(scopes),
            created_at=_now(),
            expires_at=expires_at,
            site_id=site_id,
        )
    )
    key = {"id": key_id, "key": secret, "project_id": project_id, "scopes": scopes}
    return key if site_id is None else {**key, "site_id": site_id}


def site_project(conn: Connection, site_id: str) -> str | None:
    """The id of the site's project, or None if there is no such site."""
    return conn.execute(select(sites.c.project_id).where(sites.c.id == site_id)).scalar()


def revoke_api_key_stmt(key_id: str) -> Update:
    return (
        update(api_keys)
        .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


def touch_api_key_stmt(key_id: str, now: datetime) -> Update:
    return update(api_keys).where(api_keys.c.id == key_id).values(last_used_at=now)


def key_owner_stmt(key_hash: str) -> Select:
    """The key with this hash, its project's plan, its revocation, expiry, last use and site."""
    return (
        select(
            api_keys.c.id,
            api_keys.c.key_hash,
            api_keys.c.scopes,
            api_keys.c.revoked_at,
            api_keys.c.expires_at,
            api_keys.c.last_used_at,
            api_keys.c.site_id,
            projects.c.id.label("project_id"),
            projects.c.plan,
        )
        .join(projects, projects.c.id == api_keys.c.project_id)
        .where(api_keys.c.key_hash == key_hash)
    )


def project_sites_stmt(project_id: str, only: str | None = None) -> Select:
    """The project's sites, oldest first; with `only`, just that one (a site-limited key's)."""
    stmt = select(sites).where(sites.c.project_id == project_id)
    if only is not None:
        stmt = stmt.where(sites.c.id == only)
    return stmt.order_by(sites.c.created_at, sites.c.id)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its project and the ids of the sites it may see.

    `site_ids` are the project's sites, or for a key limited to one site
    (`site_limit`) that site alone.
    """

    key_id: str
    project_id: str
    plan: str
    scopes: frozenset[str]
    site_ids: tuple[str, ...]
    site_limit: str | None = None


def site_by_key_stmt(site_key: str) -> Select:
    return select(sites.c.id, sites.c.domain, sites.c.is_active).where(sites.c.site_key == site_key)


def site_by_id_stmt(site_id: str) -> Select:
    return select(sites.c.id, sites.c.domain, sites.c.timezone).where(sites.c.id == site_id)
