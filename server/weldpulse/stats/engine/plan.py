"""The planner: which rollup a query part can read, and which whole UTC days it reads from it.

A part (the event or the session statements of one span) reads the day
rollups only where they hold exactly what it asks: whole UTC days marked
current in rolled_days for every site, dimensions and filters the rollup has
columns for, and time buckets that are whole UTC days (a zone whose offset is
0 all along the span). Everything else reads raw rows, which are exact for
any query; so the planner may always say "raw" and only speed is lost.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Executable
from weldpulse.api.params import Range
from weldpulse.domain import ONE_MICROSECOND
from weldpulse.stats.engine.filters import Node
from weldpulse.stats.engine.registry import Dimension, Metric
from weldpulse.stats.exact import Split, rolled_days_of, split, whole_days
from weldpulse.timezones import is_utc, offsets


@dataclass(frozen=True)
class Plan:
    """A range's whole rolled days (read from the day rollups) and raw pieces (from raw rows)."""

    sites: tuple[str, ...]
    rng: Range
    split: Split

    @property
    def days(self) -> tuple[date, ...]:
        return self.split.days

    @property
    def raw(self) -> tuple[Range, ...]:
        return self.split.raw


def raw(sites: tuple[str, ...], rng: Range) -> Plan:
    return Plan(sites, rng, split(rng, ()))


def rolled(execute: Callable[[Executable], Any], sites: tuple[str, ...], rng: Range) -> Plan:
    """The range split at the whole UTC days whose rollups are current for every site."""
    days = [r.day for r in execute(rolled_days_of(sites, rng))]
    return Plan(sites, rng, split(rng, days))


@dataclass(frozen=True)
class LocalDays:
    """A range cut for a zone's day, week or month buckets along UTC days.

    Each whole UTC day of `days` (read from visitor_days, current at every
    write) goes to the bucket holding its 12:00 UTC, less its `minor` piece:
    the part lying in another bucket (before or after the local midnight
    inside the day, e.g. 23:00-24:00 UTC for Berlin's winter days), read raw
    with the `raw` pieces (the partial days at the ends, and days with an
    offset change, which may hold two local midnights).
    """

    days: tuple[date, ...]
    minor: tuple[Range, ...]
    raw: tuple[Range, ...]


def _starts_bucket(day: date, unit: str) -> bool:
    return unit == "day" or (unit == "week" and day.weekday() == 0) or (
        unit == "month" and day.day == 1
    )  # fmt: skip


def local_days(rng: Range, zone: ZoneInfo, unit: str) -> LocalDays:
    whole = whole_days(rng)
    if whole is None:
        return LocalDays((), (), (rng,))
    first, last = whole
    days: list[date] = []
    minor: list[Range] = []
    raw = [Range(rng.start, datetime.combine(first, time.min) - ONE_MICROSECOND)]
    day = first
    while day <= last:
        start = datetime.combine(day, time.min)
        after = start + timedelta(days=1)
        pieces = offsets(zone, start, after - ONE_MICROSECOND)
        if len(pieces) > 1:
            raw.append(Range(start, after - ONE_MICROSECOND))
        else:
            days.append(day)
            offset = pieces[0].offset
            midnight = start + (-offset) % timedelta(days=1)  # the local midnight in this day
            if midnight != start and _starts_bucket((midnight + offset).date(), unit):
                noon = start + timedelta(hours=12)
                minor.append(Range(start, midnight - ONE_MICROSECOND) if midnight <= noon
                             else Range(midnight, after - ONE_MICROSECOND))  # fmt: skip
        day += timedelta(days=1)
    raw.append(Range(datetime.combine(last + timedelta(days=1), time.min), rng.end))
    return LocalDays(tuple(days), tuple(minor), tuple(r for r in raw if r.start <= r.end))


# Metrics each rollup holds the sums of; any other (or a new) metric reads raw rows.
TOTAL_METRICS = {"visitors", "pageviews", "time_on_page", "percentage"}
LOCAL_METRICS = {"visitors", "pageviews", "percentage"}
PAGE_METRICS = {"visitors", "pageviews", "events", "time_on_page", "percentage"}
CUSTOM_METRICS = {"visitors", "events", "pageviews", "percentage"}
SOURCE_METRICS = {"sessions", "bounce_rate", "avg_duration", "views_per_session"}
ENTRY_METRICS = {"sessions", "bounce_rate"}


def _conditions(node: Node) -> list[tuple[str, str, tuple[str, ...], bool]]:
    own = [(node.cond.dim.name, node.cond.op, node.cond.values, node.cond.case_sensitive)] if (
        node.cond
    ) else []  # fmt: skip
    return own + [c for child in node.children for c in _conditions(child)]


def _only(node: Node | None, name: str, op: str) -> bool:
    """Whether the filter is exactly one case-sensitive `name op pageview` condition."""
    return (
        node is not None
        and node.cond is not None
        and _conditions(node) == [(name, op, ("pageview",), True)]
    )


def _on(node: Node | None, names: set[str]) -> bool:
    """Whether the filter (if any) reads only these dimensions."""
    return node is None or {c[0] for c in _conditions(node)} <= names


def _whole_days(dims: tuple[Dimension, ...], zone: ZoneInfo, rng: Range) -> bool:
    """Whether a time dimension (if any) has buckets made of whole UTC days."""
    time = next((d for d in dims if d.kind == "time"), None)
    return time is None or (
        time.column in ("day", "week", "month") and is_utc(zone, rng.start, rng.end)
    )


def event_rollup(
    metrics: tuple[Metric, ...], dims: tuple[Dimension, ...], filters: Node | None,
    zone: ZoneInfo, rng: Range,
) -> str | None:  # fmt: skip
    """The rollup the event statements of a query part can read: "totals" (visitor_days,
    breakdown_days, page_days times), "local" (visitor_days cut at local midnights), "pages"
    (page_days), "custom" (event_days), or None."""
    wanted = {m.name for m in metrics if m.kind == "event"}
    names = [d.name for d in dims]
    if filters is None and all(d.kind == "time" for d in dims) and wanted <= TOTAL_METRICS:
        if _whole_days(dims, zone, rng):
            return "totals"
        whole = len(dims) == 1 and dims[0].column in ("day", "week", "month")
        return "local" if whole and wanted <= LOCAL_METRICS else None
    if names == ["page"] and _only(filters, "event_name", "is") and wanted <= PAGE_METRICS:
        return "pages"
    if names == ["event_name"] and _only(filters, "event_name", "is_not"):
        return "custom" if wanted <= CUSTOM_METRICS else None
    return None


def session_rollup(
    metrics: tuple[Metric, ...], dims: tuple[Dimension, ...], filters: Node | None,
    zone: ZoneInfo, rng: Range,
) -> str | None:  # fmt: skip
    """The rollup the session statements of a query part can read: "sources" (source_days),
    "entries" (page_days entries), or None."""
    wanted = {m.name for m in metrics if m.kind == "session"}
    names = {d.name for d in dims if d.kind != "time"}
    if names <= {"source"} and _on(filters, {"source"}) and wanted <= SOURCE_METRICS:
        return "sources" if _whole_days(dims, zone, rng) else None
    if [d.name for d in dims] == ["entry_page"] and _on(filters, {"entry_page"}):
        return "entries" if wanted <= ENTRY_METRICS else None
    return None
