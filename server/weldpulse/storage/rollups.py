"""Day rollups: rolling a finished day, and unmarking days on writes.

A (site, day) is read from its day rollups only while rolled_days
marks it. Every write that changes what a day's rows would be removes the
mark in the same transaction (`unmark`), so a query never combines a stale
rollup with new raw rows; the collector rolls unmarked finished days again.
Rolls and writes never interleave (storage.locks).
"""

import time
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Date,
    Engine,
    Float,
    Integer,
    Interval,
    Select,
    and_,
    case,
    delete,
    distinct,
    extract,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
)
from weldpulse.api.params import Range
from weldpulse.domain import ONE_MICROSECOND, PAGEVIEW
from weldpulse.stats.queries import (
    BREAKDOWNS,
    SECONDS_TO_NEXT,
    page_pairs,
    session_bounce,
)
from weldpulse.storage.locks import write_transaction
from weldpulse.storage.schema import (
    ATTR_KINDS,
    EVENT_ATTRS,
    attr_days,
    breakdown_days,
    event_days,
    events,
    local_slots,
    multi_day_visitors,
    page_days,
    rolled_days,
    sessions,
    source_days,
    visitor_days,
    visitor_spans,
)


def unmark(conn: Connection, touched: Iterable[tuple[str, date]]) -> None:
    """Forgets the rollups of the (site, day) pairs a write changes."""
    days: dict[str, set[date]] = defaultdict(set)
    for site, day in touched:
        days[site].add(day)
    if days:
        r = rolled_days.c
        conn.execute(
            delete(rolled_days).where(
                or_(*(and_(r.site_id == s, r.day.in_(sorted(d))) for s, d in days.items()))
            )
        )


def _key(site: str, day: date) -> tuple[ColumnElement, ColumnElement]:
    """The site_id and day columns of a day rollup's rows."""
    return literal(site).label("site_id"), literal(day, Date).label("day")


def _day(day: date) -> Range:
    start = datetime.combine(day, datetime.min.time())
    return Range(start, start + timedelta(days=1) - ONE_MICROSECOND)


PAGE_SUMS = ("visitors", "pageviews", "time_total", "time_count", "entries", "bounces")


def _page_part(path: ColumnElement, **sums: ColumnElement) -> Select:
    """One source of page_days columns: the given sums, zeros for the others."""
    zero = {"time_total": literal(0.0, Float)}
    return select(
        path.label("pathname"),
        *(sums.get(n, zero.get(n, literal(0, Integer))).label(n) for n in PAGE_SUMS),
    ).group_by(path)


def page_day_rows(site: str, day: date) -> Select:
    """page_days rows of one site and day, from the raw events and sessions."""
    rng, e, s = _day(day), events.c, sessions.c
    views = _page_part(
        e.pathname, visitors=func.count(distinct(e.visitor_id)), pageviews=func.count()
    ).where(e.site_id == site, e.name == PAGEVIEW, e.ts >= rng.start, e.ts <= rng.end)
    times = _page_part(
        e.prev_pathname, time_total=func.sum(SECONDS_TO_NEXT), time_count=func.count()
    ).where(*page_pairs([site], rng))
    entries = _page_part(
        s.entry_page, entries=func.count(), bounces=func.sum(session_bounce)
    ).where(s.site_id == site, s.started_at >= rng.start, s.started_at <= rng.end)
    c = union_all(views, times, entries).subquery("day_pages").c
    return select(
        *_key(site, day),
        c.pathname,
        *(func.sum(c[n]).label(n) for n in PAGE_SUMS),
    ).group_by(c.pathname)


def source_day_rows(site: str, day: date) -> Select:
    """source_days rows of one site and day, from the sessions that started that day."""
    rng, s = _day(day), sessions.c
    return (
        select(
            *_key(site, day),
            s.referrer_source,
            func.count(distinct(s.visitor_id)).label("visitors"),
            func.sum(s.pageviews).label("pageviews"),
            func.count().label("sessions"),
            func.sum(session_bounce).label("bounces"),
            func.sum(s.duration).label("duration"),
        )
        .where(s.site_id == site, s.started_at >= rng.start, s.started_at <= rng.end)
        .group_by(s.referrer_source)
    )


def event_day_rows(site: str, day: date) -> Select:
    """event_days rows of one site and day: custom events per name."""
    rng, e = _day(day), events.c
    return (
        select(
            *_key(site, day),
            e.name,
            func.count().label("total"),
            func.count(distinct(e.visitor_id)).label("visitors"),
        )
        .where(e.site_id == site, e.name != PAGEVIEW, e.ts >= rng.start, e.ts <= rng.end)
        .group_by(e.name)
    )


VISITOR_DIMS = ("country", "region", "device_type", "browser", "os")


def breakdown_day_rows(site: str, day: date) -> CompoundSelect:
    """breakdown_days rows of one site and day: every kind, from its visitor_days rows."""
    v = visitor_days.c
    parts = []
    for kind, dims in (("total", ()), *BREAKDOWNS.items()):
        keys = [v[d] for d in dims]
        parts.append(
            select(
                *_key(site, day),
                literal(kind).label("kind"),
                *(v[d].label(d) if d in dims else literal("").label(d) for d in VISITOR_DIMS),
                func.count(distinct(v.visitor_id)).label("visitors"),
                func.sum(v.pageviews).label("pageviews"),
            )
            .where(v.site_id == site, v.day == day)
            .group_by(*keys)
        )
    return union_all(*parts)


ATTR_SUMS = ("visitors", "pageviews", "events", "sessions", "bounces", "duration", "views")


def _attr_part(kind: str, keys: list[ColumnElement], **sums: ColumnElement) -> Select:
    """One kind's attr_days columns, grouped by its keys: the given sums, zeros for the others."""
    values = [*keys, *[literal("")] * (3 - len(keys))]
    zero = {"duration": literal(0.0, Float)}
    return select(
        literal(kind).label("kind"),
        *(v.label(f"v{i}") for i, v in enumerate(values)),
        *(sums.get(n, zero.get(n, literal(0, Integer))).label(n) for n in ATTR_SUMS),
    ).group_by(*keys)


def attr_day_rows(site: str, day: date) -> Select:
    """attr_days rows of one site and day: every kind, from the day's events (with their
    sessions' attributes) and the sessions that started that day."""
    rng, e, s = _day(day), events.c, sessions.c
    session_cols = {c for cols in ATTR_KINDS.values() for c in cols} - set(EVENT_ATTRS)
    # One join read by every kind (each kind's own join would scan the day once per kind).
    day_events = (
        select(e.visitor_id, e.name, *(e[c] for c in EVENT_ATTRS),
               *(s[c] for c in sorted(session_cols)))
        .select_from(events.join(sessions, s.session_id == e.session_id))
        # A session holds its events' times: only those overlapping the day can match.
        .where(e.site_id == site, e.ts >= rng.start, e.ts <= rng.end, s.site_id == site,
               s.started_at <= rng.end, s.ended_at >= rng.start)
        .cte("day_events")
    )  # fmt: skip
    x = day_events.c
    parts = []
    for kind, cols in ATTR_KINDS.items():
        parts.append(
            _attr_part(kind, [x[c] for c in cols], visitors=func.count(distinct(x.visitor_id)),
                       pageviews=func.count().filter(x.name == PAGEVIEW), events=func.count())
        )  # fmt: skip
        if not set(cols) & set(EVENT_ATTRS):
            parts.append(
                _attr_part(kind, [s[c] for c in cols], sessions=func.count(),
                           bounces=func.sum(session_bounce), duration=func.sum(s.duration),
                           views=func.sum(s.pageviews))
                .where(s.site_id == site, s.started_at >= rng.start, s.started_at <= rng.end)
            )  # fmt: skip
    c = union_all(*parts).subquery("day_attrs").c
    group = (c.kind, c.v0, c.v1, c.v2)
    return select(*_key(site, day), *group, *(func.sum(c[n]).label(n) for n in ATTR_SUMS)).group_by(
        *group
    )


def multi_day_rows(site: str, day: date) -> Select:
    """Visitor ids of one site and day that visitor_days also has on another site or day.

    Queries count such ids once per range from raw rows (weldpulse.stats.queries).
    Of any two (site, day) pairs an id appears on, the one rolled later
    lists it, so a range holding both finds it among its days' rows.
    """
    v = visitor_days.alias("v")
    w = visitor_days.alias("w")
    elsewhere = select(w.c.visitor_id).where(
        w.c.visitor_id == v.c.visitor_id, or_(w.c.site_id != site, w.c.day != day)
    )
    return (
        select(v.c.site_id, v.c.day, v.c.visitor_id)
        .where(v.c.site_id == site, v.c.day == day, elsewhere.exists())
        .distinct()
    )


def roll_day(engine: Engine, site: str, day: date) -> None:
    """(Re)computes one site's day rollups from raw rows and marks them current."""
    with write_transaction(engine, exclusive=True) as conn:
        tables = (page_days, source_days, event_days, breakdown_days, attr_days,
                  multi_day_visitors, local_slots, visitor_spans)  # fmt: skip
        for table in (*tables, rolled_days):
            conn.execute(delete(table).where(table.c.site_id == site, table.c.day == day))
        for table, rows in (
            (page_days, page_day_rows),
            (source_days, source_day_rows),
            (event_days, event_day_rows),
            (breakdown_days, breakdown_day_rows),
            (attr_days, attr_day_rows),
            (multi_day_visitors, multi_day_rows),
            (local_slots, local_slot_rows),
            (visitor_spans, visitor_span_rows),
        ):
            stmt = rows(site, day)
            conn.execute(insert(table).from_select(list(stmt.selected_columns.keys()), stmt))
        now = datetime.now(UTC).replace(tzinfo=None)
        conn.execute(insert(rolled_days).values(site_id=site, day=day, rolled_at=now))


def unrolled_stmt(before: date) -> CompoundSelect:
    """(site, day) pairs before `before` that have events but no current rollup."""
    v, r = visitor_days.c, rolled_days.c
    return (
        select(v.site_id, v.day).where(v.day < before).distinct().except_(select(r.site_id, r.day))
    )


def roll_pending(engine: Engine, before: date, budget_s: float | None = None) -> int:
    """Rolls unmarked days before `before`, oldest first; returns how many are left.

    With a budget it stops starting new days after budget_s seconds, so the
    collector's writes wait at most about that long.
    """
    with engine.connect() as conn:
        todo = sorted((r[1], r[0]) for r in conn.execute(unrolled_stmt(before)))
    started = time.monotonic()
    for done, (day, site) in enumerate(todo):
        if budget_s is not None and time.monotonic() - started > budget_s:
            return len(todo) - done
        roll_day(engine, site, day)
    return 0


SLOT_SUMS = ("firsts", "lasts", "pageviews", "sessions", "bounces", "duration", "views")


def slot_of(at: ColumnElement[datetime]) -> ColumnElement[datetime]:
    """The start of `at`'s 15-minute slot (a CASE of interval literals: the same SQL on
    DuckDB and PostgreSQL)."""
    minute = extract("minute", at)
    starts = [literal(timedelta(minutes=m), Interval()) for m in (0, 15, 30, 45)]
    quarter = case(*((minute < m, at) for m, at in zip((15, 30, 45), starts, strict=False)),
                   else_=starts[3])  # fmt: skip
    return func.date_trunc("hour", at) + quarter


def _slot_part(at: ColumnElement[datetime], **sums: ColumnElement) -> Select:
    """One source of local_slots columns: the given sums per slot of `at`, zeros for the others."""
    slot = slot_of(at).label("slot_at")  # one object: DuckDB matches GROUP BY by parameter
    zero = {"duration": literal(0.0, Float)}
    return select(
        slot, *(sums.get(n, zero.get(n, literal(0, Integer))).label(n) for n in SLOT_SUMS)
    ).group_by(slot)


def local_slot_rows(site: str, day: date) -> Select:
    """local_slots rows of one site and day: each visitor's first and last event of the day,
    pageviews, and the sessions starting that day, per 15-minute slot."""
    rng, e, s = _day(day), events.c, sessions.c
    in_day = (e.site_id == site, e.ts >= rng.start, e.ts <= rng.end)
    spans = (
        select(func.min(e.ts).label("first"), func.max(e.ts).label("last"))
        .where(*in_day)
        .group_by(e.visitor_id)
        .subquery("spans")
    )
    c = union_all(
        _slot_part(spans.c.first, firsts=func.count()),
        _slot_part(spans.c.last, lasts=func.count()),
        _slot_part(e.ts, pageviews=func.count()).where(*in_day, e.name == PAGEVIEW),
        _slot_part(s.started_at, sessions=func.count(), bounces=func.sum(session_bounce),
                   duration=func.sum(s.duration), views=func.sum(s.pageviews)).where(
            s.site_id == site, s.started_at >= rng.start, s.started_at <= rng.end
        ),
    ).subquery("day_slots").c  # fmt: skip
    return select(
        *_key(site, day), c.slot_at, *(func.sum(c[n]).label(n) for n in SLOT_SUMS)
    ).group_by(c.slot_at)


def visitor_span_rows(site: str, day: date) -> Select:
    """visitor_spans rows of one site and day: each visitor's first and last event time."""
    rng, e = _day(day), events.c
    return (
        select(*_key(site, day), e.visitor_id, func.min(e.ts).label("first_ts"),
               func.max(e.ts).label("last_ts"))
        .where(e.site_id == site, e.ts >= rng.start, e.ts <= rng.end)
        .group_by(e.visitor_id)
    )  # fmt: skip
