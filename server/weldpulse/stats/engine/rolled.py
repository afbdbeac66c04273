"""SQL of the query parts the planner sends to the day rollups: rolled days from the rollups,
the raw pieces from raw rows, as statements whose rows add up per group (d0, d1, ...).

Distinct visitors do not add up across days, so their statements are whole (exact.py's
multi-day correction); every other figure is a sum, one statement per rollup or raw piece.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    DateTime,
    FromClause,
    Select,
    Subquery,
    Text,
    cast,
    func,
    literal,
    select,
    union_all,
)
from weldpulse.api.params import Range
from weldpulse.domain import PAGEVIEW
from weldpulse.stats.engine.dialect import joined
from weldpulse.stats.engine.filters import Node
from weldpulse.stats.engine.plan import Plan, attr_kind
from weldpulse.stats.engine.registry import Dimension
from weldpulse.stats.engine.sql import (
    Clock,
    bucket,
    dim_value,
    session_stmt,
    time_on_page_stmt,
    where,
)
from weldpulse.stats.engine.zones import Span
from weldpulse.stats.exact import distinct_parts, part, total, within
from weldpulse.stats.queries import exact_visitors
from weldpulse.storage.schema import (
    ATTR_KINDS,
    attr_days,
    event_days,
    events,
    page_days,
    sessions,
    source_days,
)


def _span(r: Range) -> Span:
    return Span(r.start, r.end, None, None, r.start, r.end)


def _keys(
    dims: Sequence[Dimension], at: ColumnElement[datetime] | None, clock: Clock | None,
    rows: FromClause,
) -> list[ColumnElement]:  # fmt: skip
    """Group keys over a rollup's rows, whose columns are named as in events or sessions."""
    return [bucket(at, d.column, clock) if d.kind == "time" and at is not None
            else dim_value(d, rows, rows) for d in dims]  # fmt: skip


def _grouped(stmt: Select, keys: list[ColumnElement]) -> Select:
    labelled = [k.label(f"d{i}") for i, k in enumerate(keys)]
    return stmt.add_columns(*labelled).group_by(*labelled) if keys else stmt


def event_statements(
    rollup: str, p: Plan, dims: Sequence[Dimension], filters: Node | None, clock: Clock | None,
    time_on_page: bool, visitors: bool = True, top: tuple[Sequence[str], int] | None = None,
) -> list[Select]:  # fmt: skip
    """visitors, pageviews, events (and time_total, time_count) per group: see plan.event_rollup.

    `top` (metrics, n): only the first n groups by those metrics descending, then by group,
    where one statement holds every figure (pages, custom events), so the engine sorts them.
    """
    if rollup == "totals":
        time = next((d for d in dims if d.kind == "time"), None)
        by = (lambda t: bucket(t, time.column, clock)) if time else None
        x = exact_visitors(p, bucket=by).subquery("totals").c
        keys = [x.bucket.label("d0")] if time else []
        out = [select(x.visitors, x.pageviews, literal(0).label("events"), *keys)]
    elif rollup == "pages":
        # Without visitors asked, the rows with pageviews in scope come from additive counts.
        out = [_page_visitors(p, filters, distinct=visitors)]
    elif rollup == "attrs":
        out = [_attr_visitors(p, dims, filters, distinct=visitors)]
    else:
        out = [_custom_visitors(p)]
    if top is not None and rollup in ("pages", "custom") and not time_on_page:
        ranked, n = top
        c = out[0].selected_columns
        return [out[0].order_by(*(c[m].desc() for m in ranked), c.d0).limit(n)]
    if time_on_page:
        out += _page_times(p, dims, clock, filters)
        out += [time_on_page_stmt(p.sites, _span(r), dims, filters, clock) for r in p.raw]
    return out


def _page_visitors(p: Plan, filters: Node | None, distinct: bool) -> Select:
    """Per pathname: distinct visitors (if `distinct`, else 0) and pageviews over pageviews
    (page_days' rolled days); conditions on the page filter whole groups, so they may apply
    after the union, and prune the raw rows before it."""
    e, d, names = events.c, page_days.c, ("visitors", "pageviews")
    # Rows with no pageview carry only entries or times of their day.
    rolled = part(d.pathname, names, visitors=d.visitors if distinct else literal(0),
                  pageviews=d.pageviews).where(
        d.site_id.in_(p.sites), d.day.in_(p.days), d.pageviews > 0
    )  # fmt: skip
    scope = (e.site_id.in_(p.sites), e.name == PAGEVIEW,
             *([where(filters, events, None)] if filters is not None else []))  # fmt: skip
    if distinct:
        count = func.count()
        parts = distinct_parts(p.sites, p.rng, p.split, rolled, e.pathname, e.site_id,
                               e.visitor_id, e.ts, scope, names, pageviews=count)  # fmt: skip
    else:  # pageviews add up across days: no multi-day correction
        raw = part(e.pathname, names, pageviews=func.count()).where(*scope)
        parts = [rolled, *([raw.where(within(e.ts, p.raw)).group_by(e.pathname)] if p.raw
                           else [])]  # fmt: skip
    c = union_all(*parts).subquery("page_rows").c
    rows = select(c.key.label("pathname"), literal(PAGEVIEW, Text).label("name"), c.visitors,
                  c.pageviews).subquery("pages")  # fmt: skip
    views = total(rows.c.pageviews)
    stmt = select(
        total(rows.c.visitors).label("visitors"),
        views.label("pageviews"),
        views.label("events"),
        rows.c.pathname.label("d0"),
    ).group_by(rows.c.pathname)
    return stmt.where(where(filters, rows, rows)) if filters is not None else stmt


def _attr_rows(p: Plan, dims: Sequence[Dimension], *sums: str) -> Subquery:
    """attr_days rows of the rolled days, of the kind of `dims`, with its values named as the
    events and sessions columns they hold (so dim_value and where read them)."""
    kind = attr_kind(tuple(dims))
    assert kind is not None
    a = attr_days.c
    return (
        select(*(a[f"v{i}"].label(c) for i, c in enumerate(ATTR_KINDS[kind])),
               cast(a.day, DateTime).label("started_at"), *(a[n] for n in sums))
        .where(a.site_id.in_(p.sites), a.day.in_(p.days), a.kind == kind, a[sums[0]] > 0)
        .subquery("attr_rows")
    )  # fmt: skip


def _attr_visitors(p: Plan, dims: Sequence[Dimension], filters: Node | None,
                   distinct: bool) -> Select:  # fmt: skip
    """Per value of the page, hostname or session attributes: distinct visitors (if `distinct`,
    else 0), pageviews and events of the events in range (attr_days' rolled days). Conditions
    on those dimensions filter whole groups: they apply after the union, and prune raw rows."""
    names = ("visitors", "pageviews", "events")
    d = _attr_rows(p, dims, "events", "visitors", "pageviews")
    rolled = part([dim_value(x, d, d) for x in dims], names,
                  visitors=d.c.visitors if distinct else literal(0), pageviews=d.c.pageviews,
                  events=d.c.events)  # fmt: skip
    e, s = events.c, sessions.alias("s")
    scope: list[ColumnElement[bool]] = [e.site_id.in_(p.sites)]
    if any(x.kind == "session" for x in dims):  # the session's attributes, as event_stmt joins
        # A session holds its events' times: only those overlapping the range can match.
        scope += [s.c.session_id == e.session_id, s.c.site_id.in_(p.sites),
                  s.c.started_at <= p.rng.end, s.c.ended_at >= p.rng.start]  # fmt: skip
    if filters is not None:
        scope.append(where(filters, events, s))
    keys = [dim_value(x, events, s) for x in dims]
    views = func.count().filter(e.name == PAGEVIEW)
    if distinct:
        parts = distinct_parts(p.sites, p.rng, p.split, rolled, keys, e.site_id,
                               e.visitor_id, e.ts, scope, names, pageviews=views,
                               events=func.count())  # fmt: skip
    else:  # pageviews and events add up across days: no multi-day correction
        raw = part(keys, names, pageviews=views, events=func.count()).where(*scope)
        parts = [rolled, *([raw.where(within(e.ts, p.raw)).group_by(*keys)] if p.raw else [])]
    c = union_all(*parts).subquery("attr_parts").c
    rows = select(*(c[f"key{i}"].label(x.column) for i, x in enumerate(dims)), c.visitors,
                  c.pageviews, c.events).subquery("attrs")  # fmt: skip
    group = [rows.c[x.column] for x in dims]
    stmt = select(
        total(rows.c.visitors).label("visitors"),
        total(rows.c.pageviews).label("pageviews"),
        total(rows.c.events).label("events"),
        *(g.label(f"d{i}") for i, g in enumerate(group)),
    ).group_by(*group)
    stmt = stmt.where(where(filters, rows, rows)) if filters is not None else stmt
    return joined(stmt, any(x.kind == "session" for x in dims))  # the raw rows join sessions


def _custom_visitors(p: Plan) -> Select:
    """Per custom event name: distinct visitors and events (event_days' rolled days)."""
    e, d, names = events.c, event_days.c, ("visitors", "events")
    rolled = part(d.name, names, visitors=d.visitors, events=d.total).where(
        d.site_id.in_(p.sites), d.day.in_(p.days)
    )
    scope = (e.site_id.in_(p.sites), e.name != PAGEVIEW)
    parts = distinct_parts(p.sites, p.rng, p.split, rolled, e.name, e.site_id, e.visitor_id, e.ts,
                           scope, names, events=func.count())  # fmt: skip
    c = union_all(*parts).subquery("event_rows").c
    return select(total(c.visitors).label("visitors"), literal(0).label("pageviews"),
                  total(c.events).label("events"), c.key.label("d0")).group_by(c.key)  # fmt: skip


def _page_times(
    p: Plan, dims: Sequence[Dimension], clock: Clock | None, filters: Node | None
) -> list[Select]:
    """Seconds to the next pageview of the rolled days' pageviews (page_days), per group."""
    if not p.days:
        return []
    d = page_days.c
    rows = (
        select(
            d.pathname,
            literal(PAGEVIEW, Text).label("name"),
            cast(d.day, DateTime).label("ts"),
            d.time_total,
            d.time_count,
        )
        .where(d.site_id.in_(p.sites), d.day.in_(p.days), d.time_count > 0)
        .subquery("p")
    )
    stmt = select(func.sum(rows.c.time_total).label("time_total"),
                  total(rows.c.time_count).label("time_count"))  # fmt: skip
    if filters is not None:
        stmt = stmt.where(where(filters, rows, rows))
    return [_grouped(stmt, _keys(dims, rows.c.ts, clock, rows))]


def session_statements(
    rollup: str, p: Plan, dims: Sequence[Dimension], filters: Node | None, clock: Clock | None
) -> list[Select]:
    """sessions, bounces, duration, views per group: see plan.session_rollup."""
    out = [session_stmt(p.sites, _span(r), dims, filters, clock) for r in p.raw]
    if not p.days:
        return out
    if rollup == "sources":
        d = source_days.c
        rows = (
            select(
                d.referrer_source,
                cast(d.day, DateTime).label("started_at"),
                d.sessions,
                d.bounces,
                d.duration,
                d.pageviews.label("views"),
            )
            .where(d.site_id.in_(p.sites), d.day.in_(p.days))
            .subquery("s")
        )
        duration: ColumnElement = func.sum(rows.c.duration)
        views: ColumnElement = total(rows.c.views)
    elif rollup == "attrs":
        rows = _attr_rows(p, dims, "sessions", "bounces", "duration", "views")
        duration, views = func.sum(rows.c.duration), total(rows.c.views)
    else:  # entries
        e = page_days.c
        rows = (
            select(e.pathname.label("entry_page"), e.entries.label("sessions"), e.bounces)
            .where(e.site_id.in_(p.sites), e.day.in_(p.days), e.entries > 0)
            .subquery("s")
        )
        duration, views = literal(0), literal(0)
    stmt = select(total(rows.c.sessions).label("sessions"), total(rows.c.bounces).label("bounces"),
                  duration.label("duration"), views.label("views"))  # fmt: skip
    if filters is not None:
        stmt = stmt.where(where(filters, None, rows))
    at = rows.c.started_at if rollup in ("sources", "attrs") else None
    return [*out, _grouped(stmt, _keys(dims, at, clock, rows))]
