"""SQL builder: the event and session statements of a query, as SQLAlchemy Core statements."""

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    Text,
    and_,
    case,
    extract,
    func,
    literal,
    not_,
    or_,
    select,
)
from weldpulse.api.params import Range
from weldpulse.domain import PAGEVIEW
from weldpulse.stats.engine.dialect import joined, matches, prop
from weldpulse.stats.engine.filters import Condition, Node
from weldpulse.stats.engine.goals import completes, goal_pairs
from weldpulse.stats.engine.registry import GOAL, PROP_PREFIX, Dimension
from weldpulse.stats.engine.zones import Span
from weldpulse.stats.wallclock import local_time
from weldpulse.storage.schema import events, sessions

# Event order within a session: timestamp, then receive order where stored.
_TIE = [events.c.seq] if "seq" in events.c else []


# A wall clock: the zone, and the range its stored instants lie in.
Clock = tuple[ZoneInfo, Range]


def bucket(column: ColumnElement[datetime], unit: str, clock: Clock | None) -> ColumnElement:
    """The local wall-clock start of `column`'s time:`unit` bucket (weeks start Monday)."""
    assert clock is not None
    return func.date_trunc(unit, local_time(column, *clock))


def dim_value(dim: Dimension, e: FromClause | None, s: FromClause | None) -> ColumnElement[str]:
    """A non-time dimension as the API shows it, from an events row `e` or sessions row `s`."""
    if dim.name.startswith(PROP_PREFIX):
        assert e is not None
        return func.coalesce(prop(e.c.props, dim.name[len(PROP_PREFIX) :]), dim.empty)
    table = e if dim.kind == "event" else s
    assert table is not None
    column = table.c[dim.column]
    if dim.empty:
        return case((column == "", literal(dim.empty, Text)), else_=column)
    return func.coalesce(column, "")


def _condition(c: Condition, value: ColumnElement[str]) -> ColumnElement[bool]:
    if c.op in ("matches", "not_matches"):
        hit = or_(
            *(
                matches(value, v, pg, c.case_sensitive)
                for v, pg in zip(c.values, c.postgres, strict=True)
            )
        )
        return not_(hit) if c.op == "not_matches" else hit
    x = value if c.case_sensitive else func.lower(value)

    def v(text: str) -> ColumnElement[str]:
        lit = literal(text, Text)
        return lit if c.case_sensitive else func.lower(lit)

    if c.op in ("is", "is_not"):
        hit = or_(*(x == v(t) for t in c.values))
    elif c.op in ("contains", "not_contains"):
        hit = or_(*(func.strpos(x, v(t)) > 0 for t in c.values))
    else:  # starts_with
        hit = or_(*(func.strpos(x, v(t)) == 1 for t in c.values))
    return not_(hit) if c.op.startswith(("is_not", "not_")) else hit


def where(node: Node, e: FromClause | None, s: FromClause | None) -> ColumnElement[bool]:
    if node.kind == "goals":
        assert e is not None
        return completes(e, node.goals)
    if node.cond is not None:
        return _condition(node.cond, dim_value(node.cond.dim, e, s))
    parts = [where(child, e, s) for child in node.children]
    if node.kind == "and":
        return and_(*parts)
    if node.kind == "or":
        return or_(*parts)
    return not_(parts[0])


def _group(stmt: Select, keys: list[ColumnElement]) -> Select:
    labelled = [k.label(f"d{i}") for i, k in enumerate(keys)]
    return stmt.add_columns(*labelled).group_by(*labelled) if keys else stmt


def event_stmt(
    sites: Sequence[str], span: Span, dims: Sequence[Dimension], filters: Node | None,
    clock: Clock | None, time_on_page: bool, goals: Sequence[Any] = (),
) -> Select:  # fmt: skip
    """Per group of `dims`: visitors, pageviews, events, and the seconds to the next pageview
    (sum, count) over the events in scope (in range, the filter holding for the event).

    With the `goal` dimension, each event counts once per goal of `goals` it completes."""
    ev = events.c
    scope = [ev.site_id.in_(sites), ev.ts >= span.start]
    fixed = ("site_id", "ts", "name", "visitor_id", "session_id", "props")
    cols: list[ColumnElement] = [ev[c] for c in (*fixed, *_event_columns(dims, filters))]
    if time_on_page:
        # The next pageview of an in-range pageview may lie after `end`, never after the last
        # event of a session overlapping the range.
        horizon = (
            select(func.coalesce(func.max(sessions.c.ended_at), span.end))
            .where(
                sessions.c.site_id.in_(sites),
                sessions.c.started_at <= span.end,
                sessions.c.ended_at >= span.start,
            )
            .scalar_subquery()
        )
        scope.append(ev.ts <= horizon)
        is_view = ev.name == PAGEVIEW
        nxt = func.lead(ev.ts).over(partition_by=[ev.session_id, is_view], order_by=[ev.ts, *_TIE])
        cols.append(nxt.label("next_view"))
    else:
        scope.append(ev.ts <= span.end)
    in_scope = select(*cols).where(*scope)
    # With goal: (event, goal) pairs; the window above saw each event once.
    e = goal_pairs(in_scope, goals).subquery("ep") if GOAL in dims else in_scope.subquery("e")
    needs_sessions = joins_sessions(dims, filters)
    s = sessions.alias("s")
    # The site and end bounds (a session ends at its last event) let the engine read only the
    # sessions that can match, not every site's.
    same = and_(s.c.session_id == e.c.session_id, s.c.site_id.in_(sites),
                s.c.ended_at >= span.start)  # fmt: skip
    source: FromClause = e.join(s, same) if needs_sessions else e
    view = e.c.name == PAGEVIEW
    seconds = extract("epoch", e.c.next_view - e.c.ts) if time_on_page else literal(0)
    timed = and_(view, e.c.next_view.is_not(None)) if time_on_page else literal(False)
    stmt = select(
        func.count(func.distinct(e.c.visitor_id)).label("visitors"),
        func.count().filter(view).label("pageviews"),
        func.count().label("events"),
        func.coalesce(func.sum(seconds).filter(timed), 0).label("time_total"),
        func.count().filter(timed).label("time_count"),
    ).select_from(source)
    if time_on_page:
        stmt = stmt.where(e.c.ts <= span.end)
    if filters is not None:
        stmt = stmt.where(where(filters, e, s))
    keys = [
        bucket(e.c.ts, d.column, clock) if d.kind == "time" else dim_value(d, e, s) for d in dims
    ]
    return joined(_group(stmt, keys), needs_sessions)


def joins_sessions(dims: Sequence[Dimension], filters: Node | None) -> bool:
    """Whether the event statements join sessions (for session dimensions or conditions)."""
    return any(d.kind == "session" for d in dims) or (
        filters is not None and "session" in filters.dimensions()
    )


def joins_events(filters: Node | None) -> bool:
    """Whether the session statement joins events (for event conditions)."""
    return filters is not None and "event" in filters.dimensions()


def _event_columns(dims: Sequence[Dimension], filters: Node | None) -> list[str]:
    """Event columns the dimensions and filter conditions read (besides the fixed ones)."""
    wanted = [d for d in dims if d.kind == "event"]
    if filters is not None:
        wanted += _conditions(filters)
    cols = {d.column for d in wanted if d.kind == "event" and d.column != "props"}
    if "goal" in cols:  # completing a goal reads the pathname
        cols.add("pathname")
    return sorted(cols - {"name", "goal"})


def _conditions(node: Node) -> list[Dimension]:
    own = [node.cond.dim] if node.cond else [GOAL] if node.kind == "goals" else []
    return own + [d for child in node.children for d in _conditions(child)]


def session_stmt(
    sites: Sequence[str], span: Span, dims: Sequence[Dimension], filters: Node | None,
    clock: Clock | None,
) -> Select:  # fmt: skip
    """Per group of `dims`: sessions, bounces, total duration and pageviews over the sessions in
    scope (starting in range, the filter holding for at least one of their events)."""
    s = sessions.alias("s")
    bounce = case((and_(s.c.pageviews == 1, s.c.events == 1), 1), else_=0)
    stmt = select(
        func.count().label("sessions"),
        func.coalesce(func.sum(bounce), 0).label("bounces"),
        func.coalesce(func.sum(s.c.duration), 0).label("duration"),
        func.coalesce(func.sum(s.c.pageviews), 0).label("views"),
    ).where(s.c.site_id.in_(sites), s.c.started_at >= span.start, s.c.started_at <= span.end)
    if filters is not None:
        if joins_events(filters):
            stmt = stmt.where(s.c.session_id.in_(_sessions_with_event(sites, span, filters)))
        else:  # session attributes hold for all of a session's events alike
            stmt = stmt.where(where(filters, None, s))
    keys = [bucket(s.c.started_at, d.column, clock) if d.kind == "time" else dim_value(d, None, s)
            for d in dims]  # fmt: skip
    return joined(_group(stmt, keys), joins_events(filters))


def _sessions_with_event(sites: Sequence[str], span: Span, filters: Node) -> Select:
    """Ids of the sessions starting in range with an event for which the filter holds.

    Uncorrelated, so every engine runs it as one hash semi-join (a correlated
    EXISTS made PostgreSQL rescan events per session). Their events lie from
    `start` to the last end of a session starting in range.
    """
    e, s = events.alias("e"), sessions.alias("s2")
    horizon = (
        select(func.coalesce(func.max(sessions.c.ended_at), span.end))
        .where(
            sessions.c.site_id.in_(sites),
            sessions.c.started_at >= span.start,
            sessions.c.started_at <= span.end,
        )
        .scalar_subquery()
    )
    source = e.join(s, s.c.session_id == e.c.session_id) if "session" in filters.dimensions() else e
    return (
        select(e.c.session_id)
        .select_from(source)
        .where(
            e.c.site_id.in_(sites), e.c.ts >= span.start, e.c.ts <= horizon, where(filters, e, s)
        )
    )


def by_links(dims: Sequence[Dimension], filters: Node | None) -> bool:
    """Whether time on page can come from the stored links (prev_pathname, prev_ts): when the
    pageview's own attributes the query reads are its page and name only."""
    wanted = [d for d in dims if d.kind == "event"]
    if filters is not None:
        wanted += _conditions(filters)
    return {d.column for d in wanted if d.kind == "event"} <= {"pathname", "name"}


def time_on_page_stmt(
    sites: Sequence[str], span: Span, dims: Sequence[Dimension], filters: Node | None,
    clock: Clock | None,
) -> Select:  # fmt: skip
    """Per group of `dims`: the seconds from each pageview in scope to the next pageview of its
    session (sum, count), from the links ingestion stores on that next pageview.

    The links are set in receive order, so pageviews with equal timestamps pair up as they
    arrived, on every engine (a window ordered by ts alone leaves ties to the engine).
    """
    n = events.c
    p = (
        select(
            n.site_id,
            n.session_id,
            n.visitor_id,
            n.prev_pathname.label("pathname"),
            literal(PAGEVIEW, Text).label("name"),
            n.prev_ts.label("ts"),
            extract("epoch", n.ts - n.prev_ts).label("seconds"),
        )
        .where(
            n.site_id.in_(sites),
            n.name == PAGEVIEW,
            n.prev_ts >= span.start,
            n.prev_ts <= span.end,
        )
        .subquery("p")
    )
    needs_sessions = joins_sessions(dims, filters)
    s = sessions.alias("s")
    source: FromClause = p.join(s, s.c.session_id == p.c.session_id) if needs_sessions else p
    stmt = select(
        func.coalesce(func.sum(p.c.seconds), 0).label("time_total"),
        func.count().label("time_count"),
    ).select_from(source)
    if filters is not None:
        stmt = stmt.where(where(filters, p, s))
    keys = [
        bucket(p.c.ts, d.column, clock) if d.kind == "time" else dim_value(d, p, s) for d in dims
    ]
    return joined(_group(stmt, keys), needs_sessions)
