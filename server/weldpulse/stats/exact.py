"""Exact distinct counts over day rollups plus raw rows.

A range splits into whole days whose day rollups are current (rolled_days)
and raw pieces; the planner (stats/engine/plan.py) makes the split. Per-day
distinct counts add up for visitor ids that live one day; the few seen on
several (site, day)s are counted once per range from raw rows instead
(`once_per_range`). The statements of weldpulse.stats.queries, the engine's
rolled.py and weldpulse.storage.rollups build on these helpers.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Date,
    Select,
    and_,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
    union,
)
from weldpulse.api.params import Range
from weldpulse.domain import ONE_MICROSECOND
from weldpulse.storage.schema import multi_day_visitors, rolled_days, visitor_days


def whole_days(rng: Range) -> tuple[date, date] | None:
    """The first and last UTC day lying wholly inside the range, if any."""
    first = rng.start.date() if rng.start.time() == time.min else rng.start.date() + timedelta(1)
    last = (rng.end + ONE_MICROSECOND).date() - timedelta(1)
    return (first, last) if first <= last else None


@dataclass(frozen=True)
class Split:
    """A range as whole days read from the day rollups plus the rest, read from raw rows."""

    days: tuple[date, ...]
    raw: tuple[Range, ...]


def split(rng: Range, rolled: Sequence[date]) -> Split:
    """Rolled whole days of the range, and the raw pieces between them (contiguous, in order)."""
    whole = whole_days(rng)
    days = tuple(sorted(d for d in set(rolled) if whole and whole[0] <= d <= whole[1]))
    raw, cursor = [], rng.start
    for d in days:
        start = datetime.combine(d, time.min)
        if cursor < start:
            raw.append(Range(cursor, start - ONE_MICROSECOND))
        cursor = start + timedelta(days=1)
    if cursor <= rng.end:
        raw.append(Range(cursor, rng.end))
    return Split(days, tuple(raw))


def rolled_days_of(sites: Sequence[str], rng: Range) -> Select:
    """Whole days of the range whose day rollups are current for every one of the sites."""
    whole = whole_days(rng)
    first, last = whole or (date.max, date.min)
    r = rolled_days.c
    return (
        select(r.day)
        .where(r.site_id.in_(sites), r.day >= first, r.day <= last)
        .group_by(r.day)
        .having(func.count() == len(set(sites)))
    )


def within(column: ColumnElement[datetime], ranges: Sequence[Range]) -> ColumnElement[bool]:
    return or_(*(and_(column >= r.start, column <= r.end) for r in ranges))


def multi_day(sites: Sequence[str], rng: Range, s: Split) -> CompoundSelect:
    """Visitor ids seen on more than one (site, day) of the range, and maybe a few more.

    Daily ids live one day, so these are the few sessions crossing midnight
    and imported ids; every other id has all its rows in one rolled day or
    in the raw pieces, whose distinct counts add up exactly. Rolls list the
    ids of rolled days (multi_day_visitors); ids of the raw pieces' days
    seen on a rolled day come from visitor_days, current at every write.
    """
    m, v = multi_day_visitors.c, visitor_days.c
    first, last = rng.start.date(), rng.end.date()
    raw_days = sorted(
        {r.start.date() + timedelta(days=i) for r in s.raw
         for i in range((r.end.date() - r.start.date()).days + 1)}
    )  # fmt: skip
    listed = select(m.visitor_id).where(m.site_id.in_(sites), m.day >= first, m.day <= last)
    in_raw = select(v.visitor_id).where(v.site_id.in_(sites), v.day.in_(raw_days))
    also_rolled = select(v.visitor_id).where(
        v.site_id.in_(sites), v.day.in_(s.days), v.visitor_id.in_(in_raw)
    )
    return union(listed, also_rolled)


Key = ColumnElement | Sequence[ColumnElement]  # one group column, or several (combos)


def keyed(key: Key) -> list[ColumnElement]:
    """The group columns of a part as labelled: `key`, or key0, key1, ... for several."""
    if isinstance(key, ColumnElement):
        return [key.label("key")]
    return [k.label(f"key{i}") for i, k in enumerate(key)]


def part(key: Key, names: Sequence[str], **sums: ColumnElement) -> Select:
    """One part of a union: `key` and a column per name, the given expression or 0."""
    return select(*keyed(key), *(sums.get(n, literal(0)).label(n) for n in names))


def once_per_range(
    key: Key, site: ColumnElement, visitor: ColumnElement, at: ColumnElement,
    where: Sequence[ColumnElement[bool]], rng: Range, s: Split, multi: CompoundSelect,
    names: Sequence[str],
) -> Select:  # fmt: skip
    """(key, visitors, 0...) rows correcting the rollups' per-day counts for multi-day ids.

    Those ids are counted once over the whole range here, minus once per
    rolled (site, day) that counted them already; raw pieces skip them.
    """
    labelled = keyed(key)
    seen = (
        select(*labelled, site.label("site"), cast(at, Date).label("day"), visitor)
        .where(*where, at >= rng.start, at <= rng.end, visitor.in_(multi))
        .distinct()
        .subquery()
    )
    once = func.count(distinct(seen.c[visitor.name])) - func.count().filter(seen.c.day.in_(s.days))
    keys = [seen.c[k.name] for k in labelled]
    return part(keys[0] if isinstance(key, ColumnElement) else keys, names,
                visitors=once).group_by(*keys)  # fmt: skip


def total(column: ColumnElement) -> ColumnElement[int]:
    return cast(func.coalesce(func.sum(column), 0), BigInteger)


def distinct_parts(
    sites: Sequence[str], rng: Range, s: Split, rolled_rows: Select, key: Key,
    site: ColumnElement, visitor: ColumnElement, at: ColumnElement,
    scope: Sequence[ColumnElement[bool]], names: Sequence[str], **sums: ColumnElement,
) -> list[Select]:  # fmt: skip
    """Union parts (key, *names) whose sums per key are the range's distinct visitors and `sums`.

    `rolled_rows` gives the day rollup's rows of the rolled days; raw rows are
    those of `scope` timed by `at`. Without rolled days that is one grouped
    scan; otherwise the rolled rows, the raw pieces without multi-day ids, and
    once_per_range for those ids.
    """

    def raw(count: ColumnElement, ranges: Sequence[Range]) -> Select:
        selected = part(key, names, visitors=count, **sums)
        return selected.where(*scope, within(at, ranges)).group_by(
            *([key] if isinstance(key, ColumnElement) else key)
        )

    if not s.days:
        return [raw(func.count(distinct(visitor)), [rng])]
    multi = multi_day(sites, rng, s)
    parts = [rolled_rows, once_per_range(key, site, visitor, at, scope, rng, s, multi, names)]
    if s.raw:
        parts.append(raw(func.count(distinct(visitor)).filter(visitor.not_in(multi)), s.raw))
    return parts
