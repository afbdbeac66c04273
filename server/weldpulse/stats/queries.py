"""Preset statements: the GET routes' own definitions where they differ from the query
contract (referrers, N-unit timeseries, geo/devices by each event, realtime), and the exact
visitor counts over day rollups that the engine's rolled plans share.

Each is a small function returning one SQLAlchemy statement for a planner's Plan (its
sites, range and rolled days), unchanged on DuckDB and PostgreSQL. Metric definitions:
docs/metrics.md.
"""

from collections.abc import Callable, Sequence
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Double,
    Select,
    Subquery,
    and_,
    case,
    cast,
    distinct,
    extract,
    func,
    literal,
    select,
    union_all,
)
from weldpulse.api.params import EPOCH, UNIT_SECONDS, WEEK_EPOCH, Interval, Range
from weldpulse.domain import ONE_MICROSECOND, PAGEVIEW
from weldpulse.stats.engine.plan import Plan
from weldpulse.stats.engine.plan import raw as raw_only
from weldpulse.stats.exact import (
    distinct_parts,
    multi_day,
    part,
    total,
    whole_days,
)
from weldpulse.stats.wallclock import local_time
from weldpulse.storage.schema import (
    breakdown_days,
    events,
    sessions,
    source_days,
    visitor_days,
)
from weldpulse.timezones import is_utc

Local = tuple[ZoneInfo, Range] | None  # a wall clock: local_time's zone and range
REALTIME_WINDOW = timedelta(minutes=5)
MAX_ROWS = 1000  # rows of the breakdowns without a `limit` parameter

# The registry of metrics over events and over sessions.
visitors = func.count(distinct(events.c.visitor_id)).label("visitors")
pageviews = func.count().filter(events.c.name == PAGEVIEW).label("pageviews")
session_bounce = case((and_(sessions.c.pageviews == 1, sessions.c.events == 1), 1), else_=0)
session_count = func.count().label("sessions")
session_bounces = func.sum(session_bounce).label("bounces")

# The registry of event dimensions that breakdowns group by, per endpoint.
BREAKDOWNS = {
    "geo": ("country", "region"),
    "devices": ("device_type", "browser", "os"),
}


def _events_in(sites: Sequence[str], rng: Range) -> ColumnElement[bool]:
    return and_(events.c.site_id.in_(sites), events.c.ts >= rng.start, events.c.ts <= rng.end)


def _sessions_starting_in(sites: Sequence[str], rng: Range) -> ColumnElement[bool]:
    return and_(
        sessions.c.site_id.in_(sites),
        sessions.c.started_at >= rng.start,
        sessions.c.started_at <= rng.end,
    )


def visitor_rows(
    sites: Sequence[str], ranges: Range | Sequence[Range], dims: Sequence[str] = (),
    with_time: bool = False,
) -> Subquery:  # fmt: skip
    """(visitor_id, pageviews, site_id, day, *dims[, t]) rows whose distinct ids and sums
    equal the ranges'.

    Whole days come from the visitor_days rollup, the partial days at either
    end from raw events; count(DISTINCT visitor_id) over the union is exact
    even for ids seen on several days. `t` lies in the row's UTC day.
    """
    parts = []
    for rng in [ranges] if isinstance(ranges, Range) else ranges:
        days = whole_days(rng)
        edges = [rng]
        if days:
            first, last = days
            start_of_first = datetime.combine(first, time.min)
            after_last = datetime.combine(last + timedelta(1), time.min)
            edges = [Range(rng.start, start_of_first - ONE_MICROSECOND), Range(after_last, rng.end)]
            v = visitor_days.c
            cols: list[ColumnElement] = [
                v.visitor_id, v.pageviews, v.site_id, v.day, *(v[d] for d in dims)
            ]  # fmt: skip
            if with_time:
                cols.append(cast(v.day, DateTime).label("t"))
            parts.append(select(*cols).where(v.site_id.in_(sites), v.day >= first, v.day <= last))
        for edge in edges:
            if edge.start > edge.end:
                continue
            e = events.c
            views = case((e.name == PAGEVIEW, 1), else_=0).label("pageviews")
            raw: list[ColumnElement] = [
                e.visitor_id, views, e.site_id, cast(e.ts, Date).label("day"), *(e[d] for d in dims)
            ]  # fmt: skip
            if with_time:
                raw.append(e.ts.label("t"))
            parts.append(select(*raw).where(_events_in(sites, edge)))
    return union_all(*parts).subquery("visitor_rows")


def _rollup_metrics(rows: Subquery) -> tuple[ColumnElement[int], ColumnElement[int]]:
    return (
        func.count(distinct(rows.c.visitor_id)).label("visitors"),
        func.coalesce(func.sum(rows.c.pageviews), 0).label("pageviews"),
    )


def _session_parts(p: Plan, interval: Interval | None, local: Local = None) -> list[Select]:
    """sessions, bounces and duration of the sessions starting in range (per bucket of
    `interval`, if given, on the wall clock of `local`): rolled days from source_days,
    the raw pieces from sessions."""
    d, se, sites = source_days.c, sessions.c, p.sites

    def grouped(query: Select, start: ColumnElement[datetime]) -> Select:
        if interval is None:
            return query
        at = local_time(start, *local) if local else start
        bucket = _bucket(at, interval).label("bucket")  # one object: see exact_visitors
        return query.add_columns(bucket).group_by(bucket)

    raw = select(session_count, session_bounces, func.sum(se.duration).label("duration"))
    parts = [grouped(raw.where(_sessions_starting_in(sites, r)), se.started_at) for r in p.raw]
    if p.days:
        rolled = select(
            total(d.sessions).label("sessions"),
            total(d.bounces).label("bounces"),
            func.sum(d.duration).label("duration"),
        ).where(d.site_id.in_(sites), d.day.in_(p.days))
        parts.append(grouped(rolled, cast(d.day, DateTime)))
    return parts


def page_pairs(sites: Sequence[str], rng: Range) -> list[ColumnElement[bool]]:
    """Pageviews whose previous pageview (same session) lies in the range.

    Each pageview stores its session's previous pageview (prev_pathname,
    prev_ts), so time on page is one filtered scan. The next pageview may lie
    after `end`, but never after the last event of a session that overlaps
    the range, which bounds the scan.
    """
    horizon = (
        select(func.coalesce(func.max(sessions.c.ended_at), rng.end))
        .where(
            sessions.c.site_id.in_(sites),
            sessions.c.started_at <= rng.end,
            sessions.c.ended_at >= rng.start,
        )
        .scalar_subquery()
    )
    e = events.c
    return [
        e.site_id.in_(sites),
        e.name == PAGEVIEW,
        e.ts >= rng.start,
        e.ts <= horizon,
        e.prev_ts >= rng.start,
        e.prev_ts <= rng.end,
    ]


SECONDS_TO_NEXT = extract("epoch", events.c.ts - events.c.prev_ts)


SOURCE_METRICS = ("visitors", "pageviews", "sessions", "bounces")


def top_referrers(p: Plan, limit: int) -> Select:
    """Session sources over sessions starting in range.

    Rolled days come from source_days, the rest from raw sessions, as in top_pages.
    """
    se, d, sites = sessions.c, source_days.c, p.sites
    rolled_rows = part(d.referrer_source, SOURCE_METRICS, **{n: d[n] for n in SOURCE_METRICS})
    parts = distinct_parts(
        sites, p.rng, p.split, rolled_rows.where(d.site_id.in_(sites), d.day.in_(p.days)),
        se.referrer_source, se.site_id, se.visitor_id, se.started_at, (se.site_id.in_(sites),),
        SOURCE_METRICS, pageviews=func.sum(se.pageviews), sessions=session_count,
        bounces=session_bounces,
    )  # fmt: skip
    c = union_all(*parts).subquery("source_rows").c
    by_visitors, by_views = (
        total(c.visitors).label("visitors"),
        total(c.pageviews).label("pageviews"),
    )
    return (
        select(
            c.key.label("referrer_source"),
            by_visitors,
            by_views,
            total(c.sessions).label("sessions"),
            total(c.bounces).label("bounces"),
        )
        .group_by(c.key)
        .order_by(by_visitors.desc(), by_views.desc(), c.key)
        .limit(limit)
    )


def _bucket(column: ColumnElement[datetime], interval: Interval) -> ColumnElement[int]:
    """SQL twin of params.bucket_of: the bucket number of `column`."""
    if interval.unit == "month":
        months = (extract("year", column) - 1970) * 12 + extract("month", column) - 1
        return cast(func.floor(cast(months, Double) / interval.count), BigInteger)
    origin = (WEEK_EPOCH if interval.unit == "week" else EPOCH) - EPOCH
    seconds = cast(extract("epoch", column), Double) - origin.total_seconds()
    width = UNIT_SECONDS[interval.unit] * interval.count
    return cast(func.floor(seconds / width), BigInteger)


def _wall_clock(zone: ZoneInfo | None, rng: Range) -> Local:
    """The zone to bucket in, if its wall clock is not UTC somewhere in the range."""
    return None if zone is None or is_utc(zone, rng.start, rng.end) else (zone, rng)


def events_by_bucket(p: Plan, interval: Interval, zone: ZoneInfo | None = None) -> Select:
    """Visitors and pageviews per bucket of `interval` on the wall clock of `zone` (UTC if None)."""
    local = _wall_clock(zone, p.rng)
    if interval.unit in ("minute", "hour") or local:
        # The day rollups hold UTC days, which other wall clocks' buckets split: raw rows.
        at = local_time(events.c.ts, *local) if local else events.c.ts
        bucket = _bucket(at, interval).label("bucket")
        in_range = _events_in(p.sites, p.rng)
        return select(bucket, visitors, pageviews).where(in_range).group_by(bucket)
    # Day, week and month buckets start at midnight: whole visitor-days fall in one bucket.
    return exact_visitors(p, bucket=lambda t: _bucket(t, interval))


def sessions_by_bucket(p: Plan, interval: Interval, zone: ZoneInfo | None = None) -> Select:
    """Sessions starting per bucket of `interval` on the wall clock of `zone` (UTC if None)."""
    local = _wall_clock(zone, p.rng)
    if interval.unit in ("minute", "hour") or local:
        p = raw_only(p.sites, p.rng)  # rolled days are whole UTC days; these buckets split them
    c = union_all(*_session_parts(p, interval, local)).subquery("s").c
    return select(c.bucket, total(c.sessions).label("sessions")).group_by(c.bucket)


def realtime(sites: Sequence[str], now: datetime) -> Select:
    """Visitors whose session saw an event in the last 5 minutes, under its latest page."""
    current = func.count(distinct(sessions.c.visitor_id)).label("current_visitors")
    labels = (
        sessions.c.exit_page,
        sessions.c.country,
        sessions.c.device_type,
        sessions.c.referrer_source,
    )
    return (
        select(*labels, current)
        .where(sessions.c.site_id.in_(sites), sessions.c.ended_at >= now - REALTIME_WINDOW)
        .group_by(*labels)
        .order_by(current.desc(), *labels)
        .limit(MAX_ROWS)
    )


def breakdown(kind: str, p: Plan, limit: int) -> Select:
    """Visitors and pageviews per combination of the `kind` dimensions (see BREAKDOWNS)."""
    stmt = exact_visitors(p, BREAKDOWNS[kind])
    c = stmt.selected_columns
    return stmt.order_by(
        c.visitors.desc(), c.pageviews.desc(), *(c[d] for d in BREAKDOWNS[kind])
    ).limit(limit)


KINDS = {(): "total", **{dims: kind for kind, dims in BREAKDOWNS.items()}}


def exact_visitors(
    p: Plan, dims: Sequence[str] = (),
    bucket: Callable[[ColumnElement[datetime]], ColumnElement] | None = None,
) -> Select:  # fmt: skip
    """Distinct visitors and pageviews per combination of `dims` (and `bucket` of the row's
    time, for buckets made of whole UTC days).

    Rolled days come from breakdown_days (per-day distinct counts), the rest
    from visitor_rows; _once_per_range's rule keeps the sums exact.
    """
    sites, rng, s = p.sites, p.rng, p.split

    def keys(c: Any) -> list[ColumnElement]:
        by_time = [bucket(c.t).label("bucket")] if bucket else []
        return [c[d].label(d) for d in dims] + by_time

    if not s.days:
        rows = visitor_rows(sites, rng, dims, with_time=bucket is not None)
        k = keys(rows.c)
        return select(*k, *_rollup_metrics(rows)).group_by(*k)
    multi = multi_day(sites, rng, s)
    b = breakdown_days.c
    day_rows = (
        select(*(b[d] for d in dims), cast(b.day, DateTime).label("t"), b.visitors, b.pageviews)
        .where(b.site_id.in_(sites), b.day.in_(s.days), b.kind == KINDS[tuple(dims)])
        .subquery("day_rows")
    )
    parts = [select(*keys(day_rows.c), day_rows.c.visitors, day_rows.c.pageviews)]
    if s.raw:
        raw = visitor_rows(sites, s.raw, dims, with_time=True).c
        single = func.count(distinct(raw.visitor_id)).filter(raw.visitor_id.not_in(multi))
        k = keys(raw)  # one object per key: DuckDB matches GROUP BY to SELECT by parameter
        parts.append(
            select(*k, single.label("visitors"), func.sum(raw.pageviews).label("pageviews"))
            .group_by(*k)
        )  # fmt: skip
    every = visitor_rows(sites, rng, dims, with_time=True).c
    seen = (
        select(*keys(every), every.site_id, every.day, every.visitor_id)
        .where(every.visitor_id.in_(multi))
        .distinct()
        .subquery("seen")
    )
    once = func.count(distinct(seen.c.visitor_id)) - func.count().filter(seen.c.day.in_(s.days))
    names = [d for d in dims] + (["bucket"] if bucket else [])
    seen_keys = [seen.c[n] for n in names]
    parts.append(
        select(*seen_keys, once.label("visitors"), literal(0).label("pageviews")).group_by(
            *seen_keys
        )
    )
    u = union_all(*parts).subquery("visitor_parts").c
    group = [u[n] for n in names]
    return select(
        *group, total(u.visitors).label("visitors"), total(u.pageviews).label("pageviews")
    ).group_by(*group)
