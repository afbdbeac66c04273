"""Per-call state the interceptors set and the servicers read: the call and its caller."""

import contextvars
from collections.abc import Iterable
from dataclasses import dataclass, field

from weldpulse.api.params import parse_site
from weldpulse.errors import Forbidden
from weldpulse.storage.accounts import Principal


@dataclass
class Call:
    """One RPC: its request id, the text headers it came with, and those it will answer with."""

    method: str
    request_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    key_id: str | None = None  # the API key's id (never the key), once authenticated
    # Read once per call: grpc builds the whole metadata tuple again at each read.
    metadata: dict[str, str] = field(default_factory=dict)


def text_headers(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    """A call's text headers by name; the first of a repeated name wins, binary ones left out."""
    return {k: v for k, v in reversed(tuple(metadata or ())) if isinstance(v, str)}


# Set by the interceptors' layers for the duration of one call (api.interceptors).
call_var: contextvars.ContextVar[Call] = contextvars.ContextVar("call")
principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")


def authorize_site(site_id: str) -> None:
    """Refuses (403) a site other than the one the caller's key is limited to.

    Whether the site is in the caller's project at all (400 when not) is the
    route's own check against `Principal.site_ids`, which for a site-limited
    key hold that site alone, so a route's default "all sites" means it.
    """
    limit = principal_var.get().site_limit
    if site_id and limit is not None and site_id != limit:
        raise Forbidden("site_id: this API key is limited to one site (see GET /v1/sites)")


def caller_sites(site_id: str) -> tuple[str, ...]:
    """The sites a call reads: all of the caller's, or the one asked for (403 outside a
    site-limited key's site, 400 outside the caller's project)."""
    authorize_site(site_id)
    return parse_site(site_id, principal_var.get().site_ids)
