"""SitesService: thin servicers that create and change the project's sites and their goals."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, TypeAlias

import grpc
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError
from weldpulse.api.context import caller_sites, principal_var
from weldpulse.api.params import is_record_id
from weldpulse.errors import BadRequest, Forbidden, NotFound
from weldpulse.storage import accounts, goals
from weldpulse.v1 import analytics_pb2, sites_pb2_grpc
from weldpulse.v1 import sites_pb2 as pb

Ctx: TypeAlias = grpc.ServicerContext
MAX_ID = 36  # a UUID


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def site_message(row: Any) -> analytics_pb2.Site:
    """A sites row (mapping) as GET /v1/sites shows it."""
    shown = {k: row[k] for k in accounts.SITE_FIELDS}
    return analytics_pb2.Site(**{**shown, "created_at": _stamp(row["created_at"])})


def goal_message(row: Any) -> pb.Goal:
    return pb.Goal(
        id=row["id"],
        site_id=row["site_id"],
        name=row["name"],
        event_name=row["event_name"] or "",
        page_path=row["page_path"] or "",
        created_at=_stamp(row["created_at"]),
    )


def _own_site(site_id: str) -> str:
    """The site id if it is one of the caller's project, else a 400 naming site_id."""
    if not site_id:
        raise BadRequest("Missing required field: site_id")
    return caller_sites(site_id[:200])[0]


@contextmanager
def _checked(conn_source: Engine) -> Iterator[Connection]:
    """One transaction; the store's ValueErrors (`field: why`) become 400s naming the field."""
    try:
        with conn_source.begin() as conn:
            yield conn
    except ValueError as err:
        raise BadRequest(f"Invalid {err}") from None
    except IntegrityError:  # a concurrent twin won the unique (site_id, name) of goals
        raise BadRequest("Invalid name: the site already has a goal of that name") from None


class SitesServicer(sites_pb2_grpc.SitesServiceServicer):
    def __init__(self, metadata: Engine) -> None:
        self.metadata = metadata

    def CreateSite(self, request: pb.CreateSiteRequest, context: Ctx) -> analytics_pb2.Site:
        if not request.domain:
            raise BadRequest("Missing required field: domain")
        principal = principal_var.get()
        if principal.site_limit is not None:
            raise Forbidden("domain: this API key is limited to one site and cannot create sites")
        project = principal.project_id
        with _checked(self.metadata) as conn:
            row = accounts.create_site(
                conn, project, request.domain, request.name or None, request.timezone or "UTC"
            )
        return site_message(row)

    def UpdateSite(self, request: pb.UpdateSiteRequest, context: Ctx) -> analytics_pb2.Site:
        site = _own_site(request.site_id)
        name = request.name if request.HasField("name") else None
        zone = request.timezone if request.HasField("timezone") else None
        if name is None and zone is None:
            raise BadRequest("Invalid request: give name and/or timezone to change")
        with _checked(self.metadata) as conn:
            row = accounts.update_site(conn, site, name, zone)
        return site_message(row)

    def CreateGoal(self, request: pb.CreateGoalRequest, context: Ctx) -> pb.Goal:
        site = _own_site(request.site_id)
        with _checked(self.metadata) as conn:
            row = goals.create_goal(conn, site, request.name, request.event_name, request.page_path)
        return goal_message(row)

    def ListGoals(self, request: pb.ListGoalsRequest, context: Ctx) -> pb.ListGoalsResponse:
        site = _own_site(request.site_id)
        with self.metadata.connect() as conn:
            rows = conn.execute(goals.site_goals_stmt([site])).mappings().all()
        return pb.ListGoalsResponse(data=[goal_message(r) for r in rows])

    def DeleteGoal(self, request: pb.DeleteGoalRequest, context: Ctx) -> pb.DeleteGoalResponse:
        site = _own_site(request.site_id)
        gone = 0
        if is_record_id(request.goal_id):
            with self.metadata.begin() as conn:
                gone = conn.execute(goals.delete_goal_stmt(site, request.goal_id)).rowcount
        if not gone:
            raise NotFound(f"Not found: site {site} has no goal {request.goal_id[:MAX_ID]!r}")
        return pb.DeleteGoalResponse()
