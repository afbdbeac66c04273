"""FunnelService: run funnels (inline or saved) and keep a site's saved funnels."""

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import grpc
from sqlalchemy import Engine
from weldpulse.api.context import caller_sites
from weldpulse.api.params import is_record_id
from weldpulse.errors import ApiError, BadRequest
from weldpulse.stats import funnels as stats
from weldpulse.stats.engine.dialect import custom_plans
from weldpulse.stats.engine.filters import Node, parse_filters
from weldpulse.stats.engine.request import parse_span
from weldpulse.stats.engine.zones import aware
from weldpulse.storage import accounts
from weldpulse.storage import funnels as store
from weldpulse.storage.engines import snapshot
from weldpulse.timezones import parse_timezone
from weldpulse.v1 import analytics_pb2 as apb
from weldpulse.v1 import funnels_pb2 as pb
from weldpulse.v1 import funnels_pb2_grpc

Ctx: TypeAlias = grpc.ServicerContext
MAX_ID = 64  # characters of a site or funnel id (UUIDs are 36)


class NotFound(ApiError):
    """HTTP 404 NOT_FOUND: no such funnel in this site."""

    code = grpc.StatusCode.NOT_FOUND


def _site(site_id: str) -> str:
    """The site if it is one of the caller's; another project's site is as unknown as none."""
    if not site_id:
        raise BadRequest("Missing required field: site_id")
    return caller_sites(site_id[:MAX_ID])[0]


def _has_goal(node: Node) -> bool:
    """Whether a filter has a `goal` condition anywhere (a funnel step, not a filter)."""
    own = node.cond is not None and node.cond.dim.name == "goal"
    return own or any(_has_goal(child) for child in node.children)


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _definition(steps: Sequence[pb.FunnelStep], window: pb.FunnelWindow | None) -> stats.Definition:
    mode, minutes = (window.mode, window.minutes) if window is not None else ("", 0)
    return stats.parse_definition(
        [(s.goal, s.event_name, s.page_path) for s in steps], mode, minutes
    )


def _saved(definition: str) -> stats.Definition:
    data = json.loads(definition)
    window = data.get("window", {})
    return stats.parse_definition(
        [
            (s.get("goal", ""), s.get("event_name", ""), s.get("page_path", ""))
            for s in data["steps"]
        ],
        window.get("mode", ""),
        window.get("minutes", 0),
    )


def _funnel(row: Mapping[Any, Any]) -> pb.Funnel:
    """A stored funnel (a row's mapping) as the API shows it."""
    d = _saved(row["definition"])
    window = pb.FunnelWindow(mode="session" if d.minutes is None else "minutes",
                             minutes=d.minutes)  # fmt: skip
    return pb.Funnel(
        id=row["id"],
        site_id=row["site_id"],
        name=row["name"],
        steps=[pb.FunnelStep(**{s.kind: s.value}) for s in d.steps],
        window=window,
        created_at=row["created_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


class FunnelServicer(funnels_pb2_grpc.FunnelServiceServicer):
    def __init__(self, metadata: Engine, events: Engine) -> None:
        self.metadata = metadata
        self.events = events

    def _resolve(self, site_id: str, definition: stats.Definition) -> list[stats.Step]:
        """Steps with each goal replaced by its condition; an unknown goal is a 400."""
        names = [s.value for s in definition.steps if s.kind == "goal"]
        found = {}
        if names:
            with self.metadata.connect() as conn:
                found = {r.name: r for r in conn.execute(store.goals_named_stmt(site_id, names))}
        out = []
        for i, s in enumerate(definition.steps):
            if s.kind == "event_name":
                out.append(stats.Step(s.value, event_name=s.value))
            elif s.kind == "page_path":
                out.append(stats.Step(s.value, page_path=s.value))
            elif s.value not in found:
                raise BadRequest(f"Invalid steps[{i}].goal: no goal {s.value!r} in this site")
            else:
                goal = found[s.value]
                out.append(stats.Step(s.value, goal.event_name, goal.page_path))
        return out

    def RunFunnel(self, request: pb.RunFunnelRequest, context: Ctx) -> pb.RunFunnelResponse:
        site_id = _site(request.site_id)
        with self.metadata.connect() as conn:
            site = conn.execute(accounts.site_by_id_stmt(site_id)).first()
            saved = None
            if request.funnel_id:
                if request.steps or request.HasField("window"):
                    raise BadRequest("Invalid funnel_id: give either funnel_id or steps/window")
                if is_record_id(request.funnel_id):
                    saved = conn.execute(store.funnel_stmt(site_id, request.funnel_id)).first()
                if saved is None:
                    raise BadRequest(
                        f"Invalid funnel_id: no funnel {request.funnel_id[:MAX_ID]!r} in this site"
                    )
        zone = parse_timezone(request.timezone or (site.timezone if site else "UTC"))
        if not request.HasField("date_range"):
            raise BadRequest("Missing required field: date_range")
        span = parse_span(request.date_range, zone, "date_range")
        if saved is not None:
            definition = _saved(saved.definition)
        else:
            window = request.window if request.HasField("window") else None
            definition = _definition(request.steps, window)
        filters = parse_filters(request.filters) if request.HasField("filters") else None
        if filters is not None and _has_goal(filters):
            raise BadRequest(
                "Invalid filters: a funnel's filters cannot name a goal (make it a step)"
            )
        steps = self._resolve(site_id, definition)
        stmt = stats.funnel_stmt(site_id, span, steps, definition.minutes, filters)
        with snapshot(self.events) as conn:
            custom_plans(conn)
            row = conn.execute(stmt).one()
        counts = [int(row[i]) for i in range(len(steps))]
        results = []
        for i, (step, n) in enumerate(zip(steps, counts, strict=True)):
            before = counts[i - 1] if i else n
            results.append(
                pb.FunnelStepResult(
                    label=step.label,
                    visitors=n,
                    conversion_rate=_ratio(n, counts[0]),
                    step_conversion_rate=_ratio(n, before) if i else 1.0,
                    dropoff=before - n,
                )
            )
        meta = pb.FunnelMeta(
            timezone=zone.key,
            date_range=apb.QueryDateRange(start=aware(span.start, zone), end=aware(span.end, zone)),
        )
        return pb.RunFunnelResponse(steps=results, meta=meta)

    def CreateFunnel(self, request: pb.CreateFunnelRequest, context: Ctx) -> pb.Funnel:
        site_id = _site(request.site_id)
        name = request.name
        if not name.strip():
            raise BadRequest("Missing required field: name")
        if len(name) > stats.MAX_NAME:
            raise BadRequest(f"Invalid name: longer than {stats.MAX_NAME} characters")
        if "\x00" in name:
            raise BadRequest("Invalid name: contains a NUL character")
        window = request.window if request.HasField("window") else None
        definition = _definition(request.steps, window)
        with self.metadata.begin() as conn:
            row = store.create_funnel(conn, site_id, name, definition.as_json())
        return _funnel(row)

    def ListFunnels(self, request: pb.ListFunnelsRequest, context: Ctx) -> pb.ListFunnelsResponse:
        site_id = _site(request.site_id)
        with self.metadata.connect() as conn:
            rows = conn.execute(store.site_funnels_stmt(site_id)).all()
        return pb.ListFunnelsResponse(data=[_funnel(r._mapping) for r in rows])

    def DeleteFunnel(
        self, request: pb.DeleteFunnelRequest, context: Ctx
    ) -> pb.DeleteFunnelResponse:
        site_id = _site(request.site_id)
        gone = 0
        if is_record_id(request.funnel_id):
            with self.metadata.begin() as conn:
                gone = conn.execute(store.delete_funnel_stmt(site_id, request.funnel_id)).rowcount
        if gone == 0:
            raise NotFound(f"No funnel {request.funnel_id[:MAX_ID]!r} in this site")
        return pb.DeleteFunnelResponse()
