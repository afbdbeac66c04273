"""Local-time buckets and ranges from the 15-minute slot rollup (local_slots) plus raw rows.

A local bucket edge (or a range end) inside a rolled UTC day cuts it in a
prefix and a suffix. Every event of a visitor-day lies in that day, so the
visitor has an event in the prefix iff its first event of the day is before
the cut, and in the suffix iff its last one is at or after it: the firsts of
the slots before the cut and the lasts of the slots from it on count each
visitor-day once per part it touches. Pageviews and sessions add up per slot.
A day is read so when at most one such cut lies inside it, on a slot edge,
and no offset change falls inside a slot (`_readable`); other days read raw
rows. Ids seen on several (site, day)s are corrected as in exact.py, their
(site, day)s' buckets read from visitor_spans (first and last event) by the
same rule.
"""

from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    Executable,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    select,
    union,
)
from weldpulse.api.params import Range
from weldpulse.domain import ONE_MICROSECOND, PAGEVIEW
from weldpulse.stats.engine.buckets import truncate
from weldpulse.stats.engine.registry import Dimension
from weldpulse.stats.engine.sql import Clock, bucket, session_stmt
from weldpulse.stats.engine.zones import Span
from weldpulse.stats.exact import Split, multi_day, total, within
from weldpulse.storage.schema import (
    events,
    local_slots,
    rolled_days,
    visitor_days,
    visitor_spans,
)
from weldpulse.timezones import Piece, offsets

SLOT = timedelta(minutes=15)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class LocalPlan:
    """A range's rolled UTC days read from local_slots, and the raw pieces between them."""

    sites: tuple[str, ...]
    rng: Range
    days: tuple[date, ...]
    raw: tuple[Range, ...]


def _rolled(sites: Sequence[str], rng: Range) -> Select:
    """UTC days the range touches whose rollups are current for every one of the sites."""
    r = rolled_days.c
    return (
        select(r.day)
        .where(r.site_id.in_(sites), r.day >= rng.start.date(), r.day <= rng.end.date())
        .group_by(r.day)
        .having(func.count() == len(set(sites)))
    )


def plan(
    execute: Callable[[Executable], Any], sites: tuple[str, ...], rng: Range, zone: ZoneInfo,
    unit: str | None,
) -> LocalPlan:  # fmt: skip
    """The rolled days whose slots give the range's `unit` buckets (or its total) in `zone`."""
    pieces = offsets(zone, rng.start, rng.end)
    days = tuple(sorted(r.day for r in execute(_rolled(sites, rng))
                        if _readable(r.day, unit, pieces, rng)))  # fmt: skip
    raw = _raw(rng, days)
    if raw and days:  # a raw piece makes exact.multi_day look up every rolled day's ids
        v = visitor_days.c
        wanted = sorted({d for r in raw for d in _days_of(r)})
        held = select(v.day).where(v.site_id.in_(sites), v.day.in_(wanted)).distinct()
        have = {r.day for r in execute(held)}
        # Every event writes its visitor-day: pieces on days without one have no rows.
        raw = tuple(r for r in raw if have.intersection(_days_of(r)))
    return LocalPlan(sites, rng, days, raw)


def _days_of(r: Range) -> list[date]:
    return [r.start.date() + timedelta(i) for i in range((r.end.date() - r.start.date()).days + 1)]


def _raw(rng: Range, days: Sequence[date]) -> tuple[Range, ...]:
    """The range without the days (in order): the pieces read from raw rows."""
    out, cursor = [], rng.start
    for d in days:
        start = max(datetime.combine(d, time.min), rng.start)
        if cursor < start:
            out.append(Range(cursor, start - ONE_MICROSECOND))
        cursor = datetime.combine(d, time.min) + DAY
    if cursor <= rng.end:
        out.append(Range(cursor, rng.end))
    return tuple(out)


def _offset(at: datetime, pieces: Sequence[Piece]) -> timedelta:
    """The offset wallclock.local_time adds at `at`."""
    return pieces[max(bisect_right([p.start for p in pieces], at) - 1, 0)].offset


def _key(at: datetime, unit: str | None, pieces: Sequence[Piece]) -> datetime | None:
    """Python twin of sql.bucket with the same offsets (None: no time dimension)."""
    return None if unit is None else truncate(at + _offset(at, pieces), unit)


def _readable(day: date, unit: str | None, pieces: Sequence[Piece], rng: Range) -> bool:
    """Whether the day's slots in range are whole and its part of the range has at most one cut
    (a bucket edge or a range end inside the day), on a slot edge."""
    start = datetime.combine(day, time.min)
    a, z = max(start, rng.start), min(start + DAY, rng.end + ONE_MICROSECOND)  # [a, z)
    if a >= z or (a - start) % SLOT or (z - start) % SLOT:
        return False
    changes = [p.start for p in pieces[1:] if a < p.start < z]
    if any((c - start) % SLOT for c in changes):
        return False  # an offset change inside a slot would split its events' buckets
    if changes:  # DST days: the bucket of every slot, the same at its start and its end
        slots = [start + i * SLOT for i in range(96)]
        keys = [_key(t, unit, pieces) if a <= t < z else "out" for t in slots]
        ends = [_key(t + SLOT - ONE_MICROSECOND, unit, pieces) if a <= t < z else "out"
                for t in slots]  # fmt: skip
        return keys == ends and sum(x != y for x, y in pairwise(keys)) <= 1
    # One offset all day: buckets of a day or more change at most once in it.
    cuts = (a > start) + (z < start + DAY)
    first, last = _key(a, unit, pieces), _key(z - ONE_MICROSECOND, unit, pieces)
    if first == last:
        return cuts <= 1
    assert last is not None
    return cuts == 0 and (last - _offset(a, pieces) - start) % SLOT == timedelta(0)


def _by(dims: Sequence[Dimension], clock: Clock | None) -> Callable[[ColumnElement], Any] | None:
    unit = next((d.column for d in dims if d.kind == "time"), None)
    return (lambda at: bucket(at, unit, clock)) if unit else None


def _grouped(stmt: Select, key: Callable[[ColumnElement], Any] | None, at: ColumnElement) -> Select:
    if key is None:
        return stmt
    k = key(at).label("d0")  # one object: DuckDB matches GROUP BY to SELECT by parameter
    return stmt.add_columns(k).group_by(k)


def _slots(p: LocalPlan) -> Any:
    s = local_slots.c
    return s, (s.site_id.in_(p.sites), s.day.in_(p.days), s.slot_at >= p.rng.start,
               s.slot_at <= p.rng.end)  # fmt: skip


def event_statements(p: LocalPlan, dims: Sequence[Dimension], clock: Clock | None) -> list[Select]:
    """visitors, pageviews (events 0) per local bucket of `dims` (a time dimension or none)."""
    key, e = _by(dims, clock), events.c
    views = func.count().filter(e.name == PAGEVIEW).label("pageviews")
    scope = e.site_id.in_(p.sites)
    if not p.days:
        raw = select(func.count(distinct(e.visitor_id)).label("visitors"), views,
                     literal(0).label("events")).where(scope, within(e.ts, [p.rng]))  # fmt: skip
        return [_grouped(raw, key, e.ts)]
    s, in_range = _slots(p)
    day_start = cast(s.day, DateTime)
    # The slot lies in the day's prefix: the day starts in range, in the slot's bucket.
    prefix = day_start >= p.rng.start
    if key is not None:
        prefix = and_(prefix, key(s.slot_at) == key(day_start))
    rolled = select(total(case((prefix, s.firsts), else_=s.lasts)).label("visitors"),
                    total(s.pageviews).label("pageviews"),
                    literal(0).label("events")).where(*in_range)  # fmt: skip
    out = [_grouped(rolled, key, s.slot_at)]
    multi = multi_day(p.sites, p.rng, Split(p.days, p.raw))
    if p.raw:
        single = func.count(distinct(e.visitor_id)).filter(e.visitor_id.not_in(multi))
        raw = select(single.label("visitors"), views, literal(0).label("events"))
        out.append(_grouped(raw.where(scope, within(e.ts, p.raw)), key, e.ts))
    # Multi-day ids once per bucket, minus once per rolled (site, day) that counted them.
    seen = union(*_seen(p, key, multi)).subquery("seen")
    once = func.count(distinct(seen.c.visitor_id)) - func.count().filter(seen.c.day.in_(p.days))
    stmt = select(once.label("visitors"), literal(0).label("pageviews"), literal(0).label("events"))
    if key is not None:
        stmt = stmt.add_columns(seen.c.d0).group_by(seen.c.d0)
    return [*out, stmt]


def _seen(p: LocalPlan, key: Callable[[ColumnElement], Any] | None, multi: Any) -> list[Select]:
    """(d0, site_id, day, visitor_id) of the multi-day ids per bucket and (site, UTC day) they
    have an event in: rolled days from their first and last event (one cut at most, so those
    are in the buckets the visitor-day touches, if in range), raw pieces from events."""
    v, e = visitor_spans.c, events.c

    def row(at: ColumnElement, site: ColumnElement, day: ColumnElement, visitor: ColumnElement,
            *where: ColumnElement[bool]) -> Select:  # fmt: skip
        cols = [key(at).label("d0")] if key else []
        return select(*cols, site.label("site_id"), day.label("day"),
                      visitor.label("visitor_id")).where(*where)  # fmt: skip

    rolled = (v.site_id.in_(p.sites), v.day.in_(p.days), v.visitor_id.in_(multi))
    out = [row(at, v.site_id, v.day, v.visitor_id, *rolled, within(at, [p.rng]))
           for at in (v.first_ts, v.last_ts)]  # fmt: skip
    if p.raw:
        out.append(row(e.ts, e.site_id, cast(e.ts, Date), e.visitor_id, e.site_id.in_(p.sites),
                       within(e.ts, p.raw), e.visitor_id.in_(multi)))  # fmt: skip
    return out


def session_statements(
    p: LocalPlan, dims: Sequence[Dimension], clock: Clock | None
) -> list[Select]:
    """sessions, bounces, duration, views per local bucket of `dims` (a time dimension or none)."""
    out = [session_stmt(p.sites, Span(r.start, r.end, None, None, r.start, r.end), dims, None,
                        clock) for r in p.raw]  # fmt: skip
    if not p.days:
        return out
    s, in_range = _slots(p)
    rolled = select(total(s.sessions).label("sessions"), total(s.bounces).label("bounces"),
                    func.coalesce(func.sum(s.duration), 0).label("duration"),
                    total(s.views).label("views")).where(*in_range, s.sessions > 0)  # fmt: skip
    return [*out, _grouped(rolled, _by(dims, clock), s.slot_at)]
