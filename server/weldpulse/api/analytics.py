"""AnalyticsService: thin servicers that parse, authorize, query and shape each /v1 call."""

from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import TypeAlias

import grpc
from sqlalchemy import Connection, Engine, Select
from sqlalchemy.engine import Row
from weldpulse.api.context import principal_var
from weldpulse.api.params import (
    Range,
    bucket_start,
    buckets,
    parse_interval,
    parse_limit,
    parse_range,
    parse_site,
)
from weldpulse.stats import exact, queries
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
    return parse_site(site_id, principal_var.get().site_ids)


def _ratio(part: float | None, whole: int) -> float:
    """A fraction rounded to 4 places (0.01 %), so JSON shows 0.4286, not 0.42857142857142855."""
    return round(float(part or 0) / whole, 4) if whole else 0.0


def _seconds(value: float | None) -> float:
    return round(float(value or 0), 1)


def _rows(conn: Connection, stmt: Select) -> Sequence[Row]:
    return conn.execute(stmt).all()


def _rolled(conn: Connection, sites: Sequence[str], rng: Range) -> list[date]:
    """Whole days of the range that pages and referrers may read from the day rollups."""
    return [r.day for r in _rows(conn, exact.rolled_days_of(sites, rng))]


class AnalyticsServicer(analytics_pb2_grpc.AnalyticsServiceServicer):
    def __init__(self, metadata: Engine, events: Engine) -> None:
        self.metadata = metadata
        self.events = events

    def GetStats(self, request: pb.GetStatsRequest, context: Ctx) -> pb.GetStatsResponse:
        rng = parse_range(request.start, request.end)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rolled = _rolled(conn, sites, rng)
            ev = _rows(conn, queries.event_totals(sites, rng, rolled))[0]
            se = _rows(conn, queries.session_totals(sites, rng, rolled))[0]
        row = pb.StatsRow(
            visitors=ev.visitors,
            pageviews=ev.pageviews,
            sessions=se.sessions,
            avg_duration=_seconds(se.avg_duration),
            bounce_rate=_ratio(se.bounces, se.sessions),
        )
        return pb.GetStatsResponse(data=[row])

    def ListPages(self, request: pb.ListPagesRequest, context: Ctx) -> pb.ListPagesResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 10)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rolled = _rolled(conn, sites, rng)
            top = _rows(conn, queries.top_pages(sites, rng, limit, rolled))
            paths = [r.pathname for r in top]
            times = queries.time_on_page(sites, rng, paths, rolled)
            durations = {r.pathname: r.avg_duration for r in _rows(conn, times)}
            entries = queries.entry_page_bounces(sites, rng, paths, rolled)
            bounces = {r.entry_page: r for r in _rows(conn, entries)}
        data = []
        for r in top:
            entry = bounces.get(r.pathname)
            data.append(
                pb.PageRow(
                    pathname=r.pathname,
                    visitors=r.visitors,
                    pageviews=r.pageviews,
                    avg_duration=_seconds(durations.get(r.pathname)),
                    bounce_rate=_ratio(entry.bounces, entry.sessions) if entry else 0.0,
                )
            )
        return pb.ListPagesResponse(data=data)

    def ListReferrers(
        self, request: pb.ListReferrersRequest, context: Ctx
    ) -> pb.ListReferrersResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 10)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = _rows(conn, queries.top_referrers(sites, rng, limit, _rolled(conn, sites, rng)))
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
            rolled = _rolled(conn, sites, rng)
            by_event = queries.events_by_bucket(sites, rng, interval, rolled, zone)
            event_rows = _rows(conn, by_event)
            by_session = queries.sessions_by_bucket(sites, rng, interval, rolled, zone)
            session_rows = _rows(conn, by_session)
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
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = _rows(conn, queries.realtime(sites, now))
        return pb.GetRealtimeResponse(
            data=[
                pb.RealtimeRow(
                    pathname=r.exit_page,
                    country=r.country,
                    device_type=r.device_type,
                    referrer_source=r.referrer_source,
                    current_visitors=r.current_visitors,
                )
                for r in rows
            ]
        )

    def ListEvents(self, request: pb.ListEventsRequest, context: Ctx) -> pb.ListEventsResponse:
        rng = parse_range(request.start, request.end)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rows = _rows(conn, queries.custom_events(sites, rng, _rolled(conn, sites, rng)))
        return pb.ListEventsResponse(
            data=[
                pb.EventRow(event_name=r.name, total=r.total, unique_visitors=r.unique_visitors)
                for r in rows
            ]
        )

    def ListGeo(self, request: pb.ListGeoRequest, context: Ctx) -> pb.ListGeoResponse:
        rng = parse_range(request.start, request.end)
        limit = _limit(request, 50)
        sites = _sites(request.site_id)
        with snapshot(self.events) as conn:
            rolled = _rolled(conn, sites, rng)
            rows = _rows(conn, queries.breakdown("geo", sites, rng, limit, rolled))
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
            rolled = _rolled(conn, sites, rng)
            rows = _rows(conn, queries.breakdown("devices", sites, rng, limit, rolled))
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
            rows = conn.execute(accounts.project_sites_stmt(principal_var.get().project_id)).all()
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
