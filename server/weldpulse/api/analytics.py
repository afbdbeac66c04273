"""AnalyticsService: thin servicers that parse, authorize, query and shape each /v1 call."""

from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from sqlalchemy import Engine
from weldpulse.api.context import caller_sites, principal_var
from weldpulse.api.live import realtime_rows
from weldpulse.api.params import (
    bucket_start,
    buckets,
    parse_interval,
    parse_limit,
    parse_range,
)
from weldpulse.stats.engine import presets
from weldpulse.stats.engine import request as query_request
from weldpulse.stats.engine import run as query_run
from weldpulse.stats.engine import shape as query_shape
from weldpulse.stats.engine.goals import Goal
from weldpulse.storage import accounts, goals
from weldpulse.storage.engines import snapshot
from weldpulse.timezones import parse_timezone
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc

Ctx: TypeAlias = grpc.ServicerContext


def _limit(
    request: pb.ListPagesRequest
    | pb.ListReferrersRequest
    | pb.ListGeoRequest
    | pb.ListDevicesRequest,
    default: int,
) -> int:
    return parse_limit(request.limit if request.HasField("limit") else None, default)


def _sites(site_id: str) -> tuple[str, ...]:
    return caller_sites(site_id)


def _ratio(part: float | None, whole: int) -> float:
    """A fraction rounded to 4 places (0.01 %), so JSON shows 0.4286, not 0.42857142857142855."""
    return round(float(part or 0) / whole, 4) if whole else 0.0


def _seconds(value: float | None) -> float:
    return round(float(value or 0), 1)


def _mean(total: Any, count: Any) -> float | None:
    return float(total) / int(count) if count else None


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, metadata: Engine, events: Engine) -> None:
        self.metadata = metadata
        self.events = events

    def GetStats(self, request: pb.GetStatsRequest, context: Ctx) -> pb.GetStatsResponse:
        rng = parse_range(request.start, request.end)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            f = presets.stats(conn, sites, rng)
        row = pb.StatsRow(
            visitors=f["visitors"],
            pageviews=f["pageviews"],
            sessions=f["sessions"],
            avg_duration=_seconds(_mean(f["duration"], f["sessions"])),
            bounce_rate=_ratio(f["bounces"], f["sessions"]),
        )
        return pb.GetStatsResponse(data=[row])

    def ListPages(self, request: pb.ListPagesRequest, context: Ctx) -> pb.ListPagesResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 10)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            pages = presets.pages(conn, sites, rng, limit)
        return pb.ListPagesResponse(
            data=[
                pb.PageRow(
                    pathname=p.pathname,
                    visitors=p.figures["visitors"],
                    pageviews=p.figures["pageviews"],
                    avg_duration=_seconds(
                        _mean(p.figures.get("time_total"), p.figures.get("time_count"))
                    ),
                    bounce_rate=_ratio(p.entries.get("bounces"), p.entries.get("sessions", 0)),
                )
                for p in pages
            ]
        )

    def ListReferrers(
        self, request: pb.ListReferrersRequest, context: Ctx
    ) -> pb.ListReferrersResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 10)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = presets.referrers(conn, sites, rng, limit)
        return pb.ListReferrersResponse(
            data=[
                pb.ReferrerRow(
                    referrer_source=r.referrer_source,
                    visitors=r.visitors,
                    pageviews=r.pageviews,
                    bounce_rate=_ratio(r.bounces, r.sessions),
                )
                for r in rows
            ]
        )

    def GetTimeseries(
        self, request: pb.GetTimeseriesRequest, context: Ctx
    ) -> pb.GetTimeseriesResponse:
        rng = parse_range(request.start, request.end)
        interval = parse_interval(request.interval)
        # Absent: UTC, as before time zones existed (not the site's zone), so answers stay.
        zone = parse_timezone(request.timezone) if request.timezone else None
        indexes = buckets(rng, interval, zone)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            event_rows, session_rows = presets.timeseries(conn, sites, rng, interval, zone)
        by_events = {r.bucket: r for r in event_rows}
        by_sessions = {r.bucket: r.sessions for r in session_rows}
        data = []
        for i in indexes:
            ev = by_events.get(i)
            data.append(
                pb.TimeseriesRow(
                    t=bucket_start(i, interval).strftime("%Y-%m-%dT%H:%M:%S"),
                    visitors=ev.visitors if ev else 0,
                    pageviews=ev.pageviews if ev else 0,
                    sessions=by_sessions.get(i, 0),
                )
            )
        return pb.GetTimeseriesResponse(data=data)

    def GetRealtime(self, request: pb.GetRealtimeRequest, context: Ctx) -> pb.GetRealtimeResponse:
        now = datetime.now(UTC).replace(tzinfo=None)
        # The live stream's updates carry these same rows (api.live).
        return pb.GetRealtimeResponse(data=realtime_rows(self.events, _sites(request.site_id), now))

    def ListEvents(self, request: pb.ListEventsRequest, context: Ctx) -> pb.ListEventsResponse:
        rng = parse_range(request.start, request.end)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = presets.events(conn, sites, rng)
        return pb.ListEventsResponse(
            data=[
                pb.EventRow(event_name=name, total=f["events"], unique_visitors=f["visitors"])
                for name, f in rows
            ]
        )

    def ListGeo(self, request: pb.ListGeoRequest, context: Ctx) -> pb.ListGeoResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 50)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = presets.breakdown("geo", conn, sites, rng, limit)
        return pb.ListGeoResponse(
            data=[
                pb.GeoRow(
                    country=r.country, region=r.region, visitors=r.visitors, pageviews=r.pageviews
                )
                for r in rows
            ]
        )

    def ListDevices(self, request: pb.ListDevicesRequest, context: Ctx) -> pb.ListDevicesResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 50)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = presets.breakdown("devices", conn, sites, rng, limit)
        return pb.ListDevicesResponse(
            data=[
                pb.DeviceRow(
                    device_type=r.device_type,
                    browser=r.browser,
                    os=r.os,
                    visitors=r.visitors,
                    pageviews=r.pageviews,
                )
                for r in rows
            ]
        )

    def ListSites(self, request: pb.ListSitesRequest, context: Ctx) -> pb.ListSitesResponse:
        with self.metadata.connect() as conn:
            principal = principal_var.get()
            sites = accounts.project_sites_stmt(principal.project_id, only=principal.site_limit)
            rows = conn.execute(sites).all()
        return pb.ListSitesResponse(
            data=[
                pb.Site(
                    id=r.id,
                    domain=r.domain,
                    name=r.name,
                    site_key=r.site_key,
                    is_active=r.is_active,
                    created_at=r.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    timezone=r.timezone,
                )
                for r in rows
            ]
        )

    def Query(self, request: pb.QueryRequest, context: Ctx) -> pb.QueryResponse:
        sites = _sites(request.site_id)

        def zone_of(site_id: str) -> str:
            with self.metadata.connect() as conn:
                row = conn.execute(accounts.site_by_id_stmt(site_id)).first()
            return row.timezone if row is not None else "UTC"

        with self.metadata.connect() as conn:
            rows = conn.execute(goals.site_goals_stmt(sites)).all()
        site_goals = [Goal(r.site_id, r.name, r.event_name or "", r.page_path or "") for r in rows]
        query = query_request.parse_query(request, sites, zone_of, site_goals)
        with snapshot(self.events) as conn:
            answer = query_run.answer(conn, query)
        return query_shape.response(query, answer)
