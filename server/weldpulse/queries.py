"""Analytics queries: small functions that each return one SQLAlchemy statement.

Every statement starts from the same scope (the caller's sites and the
inclusive range) and runs unchanged on DuckDB and PostgreSQL. Metric
definitions: docs/metrics.md.
"""

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
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
    select,
    union_all,
)
from weldpulse.params import EPOCH, UNIT_SECONDS, WEEK_EPOCH, Interval, Range
from weldpulse.schema import events, sessions, visitor_days

PAGEVIEW = "pageview"
REALTIME_WINDOW = timedelta(minutes=5)
MAX_ROWS = 1000  # rows of the breakdowns without a `limit` parameter

# The registry of metrics over events and over sessions.
visitors = func.count(distinct(events.c.visitor_id)).label("visitors")
pageviews = func.count().filter(events.c.name == PAGEVIEW).label("pageviews")
session_bounce = case((and_(sessions.c.pageviews == 1, sessions.c.events == 1), 1), else_=0)
session_count = func.count().label("sessions")
session_bounces = func.sum(session_bounce).label("bounces")
session_duration = func.avg(sessions.c.duration).label("avg_duration")

# The registry of event dimensions that breakdowns group by, per endpoint.
BREAKDOWNS = {
    "geo": ("country", "region"),
    "devices": ("device_type", "browser", "os"),
}
ONE_MICROSECOND = timedelta(microseconds=1)  # the stores' timestamp resolution


def _events_in(sites: Sequence[str], rng: Range) -> ColumnElement[bool]:
    return and_(events.c.site_id.in_(sites), events.c.ts >= rng.start, events.c.ts <= rng.end)


def _sessions_starting_in(sites: Sequence[str], rng: Range) -> ColumnElement[bool]:
    return and_(
        sessions.c.site_id.in_(sites),
        sessions.c.started_at >= rng.start,
        sessions.c.started_at <= rng.end,
    )


def whole_days(rng: Range) -> tuple[date, date] | None:
    """The first and last UTC day lying wholly inside the range, if any."""
    first = rng.start.date() if rng.start.time() == time.min else rng.start.date() + timedelta(1)
    last = (rng.end + ONE_MICROSECOND).date() - timedelta(1)
    return (first, last) if first <= last else None


def visitor_rows(
    sites: Sequence[str], rng: Range, dims: Sequence[str] = (), with_time: bool = False
) -> Subquery:
    """(visitor_id, pageviews, *dims[, t]) rows whose distinct ids and sums equal the range's.

    Whole days come from the visitor_days rollup, the partial days at either
    end from raw events; count(DISTINCT visitor_id) over the union is exact
    even for ids seen on several days. `t` lies in the row's UTC day.
    """
    days = whole_days(rng)
    edges = [rng]
    parts = []
    if days:
        first, last = days
        start_of_first = datetime.combine(first, time.min)
        after_last = datetime.combine(last + timedelta(1), time.min)
        edges = [Range(rng.start, start_of_first - ONE_MICROSECOND), Range(after_last, rng.end)]
        v = visitor_days.c
        cols: list[ColumnElement] = [v.visitor_id, v.pageviews, *(v[d] for d in dims)]
        if with_time:
            cols.append(cast(v.day, DateTime).label("t"))
        parts.append(select(*cols).where(v.site_id.in_(sites), v.day >= first, v.day <= last))
    for edge in edges:
        if edge.start > edge.end:
            continue
        e = events.c
        views = case((e.name == PAGEVIEW, 1), else_=0).label("pageviews")
        raw: list[ColumnElement] = [e.visitor_id, views, *(e[d] for d in dims)]
        if with_time:
            raw.append(e.ts.label("t"))
        parts.append(select(*raw).where(_events_in(sites, edge)))
    return union_all(*parts).subquery("visitor_rows")


def _rollup_metrics(rows: Subquery) -> tuple[ColumnElement[int], ColumnElement[int]]:
    return (
        func.count(distinct(rows.c.visitor_id)).label("visitors"),
        func.coalesce(func.sum(rows.c.pageviews), 0).label("pageviews"),
    )


def event_totals(sites: Sequence[str], rng: Range) -> Select:
    """One row: visitors and pageviews of the events in range."""
    return select(*_rollup_metrics(visitor_rows(sites, rng)))


def session_totals(sites: Sequence[str], rng: Range) -> Select:
    """One row: sessions starting in range, their bounces and mean duration."""
    return select(session_count, session_bounces, session_duration).where(
        _sessions_starting_in(sites, rng)
    )


def top_pages(sites: Sequence[str], rng: Range, limit: int) -> Select:
    """Pathnames by visitors, pageviews, name: visitors and pageviews over pageviews in range."""
    views = func.count().label("pageviews")
    return (
        select(events.c.pathname, visitors, views)
        .where(_events_in(sites, rng), events.c.name == PAGEVIEW)
        .group_by(events.c.pathname)
        .order_by(visitors.desc(), views.desc(), events.c.pathname)
        .limit(limit)
    )


def time_on_page(sites: Sequence[str], rng: Range, pathnames: Sequence[str]) -> Select:
    """Per pathname, mean seconds from a pageview in range to the next one of its session.

    Each pageview stores its session's previous pageview (prev_pathname,
    prev_ts), so this scans the pageviews that follow one in range. The next
    pageview may lie after `end`, but never after the last event of a session
    that overlaps the range, which bounds the scan.
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
    return (
        select(
            e.prev_pathname.label("pathname"),
            func.avg(extract("epoch", e.ts - e.prev_ts)).label("avg_duration"),
        )
        .where(
            e.site_id.in_(sites),
            e.name == PAGEVIEW,
            e.ts >= rng.start,
            e.ts <= horizon,
            e.prev_ts >= rng.start,
            e.prev_ts <= rng.end,
            e.prev_pathname.in_(pathnames),
        )
        .group_by(e.prev_pathname)
    )


def entry_page_bounces(sites: Sequence[str], rng: Range, pathnames: Sequence[str]) -> Select:
    """Per entry page, sessions starting in range and how many bounced."""
    return (
        select(sessions.c.entry_page, session_count, session_bounces)
        .where(_sessions_starting_in(sites, rng), sessions.c.entry_page.in_(pathnames))
        .group_by(sessions.c.entry_page)
    )


def top_referrers(sites: Sequence[str], rng: Range, limit: int) -> Select:
    """Session sources over sessions starting in range."""
    source_visitors = func.count(distinct(sessions.c.visitor_id)).label("visitors")
    source_pageviews = func.sum(sessions.c.pageviews).label("pageviews")
    return (
        select(
            sessions.c.referrer_source,
            source_visitors,
            source_pageviews,
            session_count,
            session_bounces,
        )
        .where(_sessions_starting_in(sites, rng))
        .group_by(sessions.c.referrer_source)
        .order_by(source_visitors.desc(), source_pageviews.desc(), sessions.c.referrer_source)
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


def events_by_bucket(sites: Sequence[str], rng: Range, interval: Interval) -> Select:
    if interval.unit in ("minute", "hour"):
        bucket = _bucket(events.c.ts, interval).label("bucket")
        return select(bucket, visitors, pageviews).where(_events_in(sites, rng)).group_by(bucket)
    # Day, week and month buckets start at midnight: whole visitor-days fall in one bucket.
    rows = visitor_rows(sites, rng, with_time=True)
    day_bucket = _bucket(rows.c.t, interval).label("bucket")
    return select(day_bucket, *_rollup_metrics(rows)).group_by(day_bucket)


def sessions_by_bucket(sites: Sequence[str], rng: Range, interval: Interval) -> Select:
    bucket = _bucket(sessions.c.started_at, interval).label("bucket")
    return select(bucket, session_count).where(_sessions_starting_in(sites, rng)).group_by(bucket)


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


def custom_events(sites: Sequence[str], rng: Range) -> Select:
    total = func.count().label("total")
    unique = func.count(distinct(events.c.visitor_id)).label("unique_visitors")
    return (
        select(events.c.name, total, unique)
        .where(_events_in(sites, rng), events.c.name != PAGEVIEW)
        .group_by(events.c.name)
        .order_by(total.desc(), unique.desc(), events.c.name)
        .limit(MAX_ROWS)
    )


def breakdown(kind: str, sites: Sequence[str], rng: Range, limit: int) -> Select:
    """Visitors and pageviews per combination of the `kind` dimensions (see BREAKDOWNS)."""
    rows = visitor_rows(sites, rng, BREAKDOWNS[kind])
    dims = [rows.c[d] for d in BREAKDOWNS[kind]]
    by_visitors, by_pageviews = _rollup_metrics(rows)
    return (
        select(*dims, by_visitors, by_pageviews)
        .group_by(*dims)
        .order_by(by_visitors.desc(), by_pageviews.desc(), *dims)
        .limit(limit)
    )
