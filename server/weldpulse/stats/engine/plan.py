"""The planner: which rollup a query part can read, and which whole UTC days it reads from it.

A part (the event or the session statements of one span) reads the day
rollups only where they hold exactly what it asks: whole UTC days marked
current in rolled_days for every site, dimensions and filters the rollup has
columns for, and time buckets that are whole UTC days (a zone whose offset is
0 all along the span; other zones' local days, weeks and months read the
15-minute slot rollup instead, see local.py). Everything else reads raw
rows, which are exact for any query; so the planner may always say "raw"
and only speed is lost.
"""

from dataclasses import dataclass
from datetime import date
from zoneinfo import ZoneInfo

from weldpulse.api.params import Range
from weldpulse.stats.engine.filters import Node
from weldpulse.stats.engine.registry import Dimension, Metric
from weldpulse.stats.exact import Split, split
from weldpulse.storage.schema import ATTR_KINDS, EVENT_ATTRS
from weldpulse.timezones import is_utc


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


# Metrics each rollup holds the sums of; any other (or a new) metric reads raw rows.
TOTAL_METRICS = {"visitors", "pageviews", "time_on_page", "percentage"}
PAGE_METRICS = {"visitors", "pageviews", "events", "time_on_page", "percentage"}
CUSTOM_METRICS = {"visitors", "events", "pageviews", "percentage"}
SOURCE_METRICS = {"sessions", "bounce_rate", "avg_duration", "views_per_session"}
ENTRY_METRICS = {"sessions", "bounce_rate"}
ATTR_METRICS = {"visitors", "pageviews", "events", "percentage"}


def _conditions(node: Node) -> list[tuple[str, str, tuple[str, ...], bool]]:
    own = [(node.cond.dim.name, node.cond.op, node.cond.values, node.cond.case_sensitive)] if (
        node.cond
    ) else []  # fmt: skip
    if node.kind == "goals":  # completing a goal: no rollup has the column for it
        own = [("goal", "completes", (), True)]
    return own + [c for child in node.children for c in _conditions(child)]


def _scoped(node: Node | None, op: str, names: set[str]) -> bool:
    """Whether the filter is the case-sensitive `event_name <op> pageview`, alone or and-ed
    with expressions on the dimensions `names` only (which the rollup has columns for)."""
    scope = [("event_name", op, ("pageview",), True)]
    if node is None or (node.cond is None and node.kind != "and"):
        return False
    children = [node] if node.cond is not None else list(node.children)
    at = next((i for i, c in enumerate(children) if c.cond and _conditions(c) == scope), None)
    return at is not None and all(_on(c, names) for i, c in enumerate(children) if i != at)


def _on(node: Node | None, names: set[str]) -> bool:
    """Whether the filter (if any) reads only these dimensions."""
    return node is None or {c[0] for c in _conditions(node)} <= names


def attr_kind(dims: tuple[Dimension, ...]) -> str | None:
    """The attr_days kind (schema.ATTR_KINDS) grouping by exactly the non-time dimensions, if
    any: page and hostname from the event row, the others from its session's."""
    attrs = [d for d in dims if d.kind != "time"]
    if not attrs or any((d.kind == "event") != (d.column in EVENT_ATTRS) for d in attrs):
        return None
    columns = {d.column for d in attrs}
    return next((k for k, cols in ATTR_KINDS.items() if set(cols) == columns), None)


def _whole_days(dims: tuple[Dimension, ...], zone: ZoneInfo, rng: Range) -> bool:
    """Whether a time dimension (if any) has buckets made of whole UTC days."""
    time = next((d for d in dims if d.kind == "time"), None)
    return time is None or (
        time.column in ("day", "week", "month") and is_utc(zone, rng.start, rng.end)
    )


# Local buckets (local.py): days or longer; the slot rollup has no times on page.
LOCAL_METRICS = {"visitors", "pageviews", "percentage"}


def _local(dims: tuple[Dimension, ...]) -> bool:
    """Whether the time dimension has buckets of whole local days (the slot rollup's)."""
    return all(d.column in ("day", "week", "month") for d in dims if d.kind == "time")


def event_rollup(
    metrics: tuple[Metric, ...], dims: tuple[Dimension, ...], filters: Node | None,
    zone: ZoneInfo, rng: Range,
) -> str | None:  # fmt: skip
    """The rollup the event statements of a query part can read: "totals" (visitor_days,
    breakdown_days, page_days times), "pages" (page_days), "custom" (event_days), "attrs"
    (attr_days: page, hostname or session attributes, no time), "local" (local_slots), or None."""
    wanted = {m.name for m in metrics if m.kind == "event"}
    names = [d.name for d in dims]
    if filters is None and all(d.kind == "time" for d in dims) and wanted <= TOTAL_METRICS:
        if _whole_days(dims, zone, rng):
            return "totals"
        # Local days split UTC days: their visitors come from the slot rollup (local.py).
        return "local" if _local(dims) and wanted <= LOCAL_METRICS else None
    if names == ["page"] and _scoped(filters, "is", {"page"}) and wanted <= PAGE_METRICS:
        return "pages"
    if names == ["event_name"] and _scoped(filters, "is_not", set()):
        return "custom" if wanted <= CUSTOM_METRICS else None
    # A day's distinct visitors per value add up across days but for multi-day ids (exact.py).
    if attr_kind(dims) and all(d.kind != "time" for d in dims) and _on(filters, set(names)):
        return "attrs" if wanted <= ATTR_METRICS else None
    return None


def session_rollup(
    metrics: tuple[Metric, ...], dims: tuple[Dimension, ...], filters: Node | None,
    zone: ZoneInfo, rng: Range,
) -> str | None:  # fmt: skip
    """The rollup the session statements of a query part can read: "sources" (source_days),
    "entries" (page_days entries), "attrs" (attr_days: session attributes), "local"
    (local_slots), or None."""
    wanted = {m.name for m in metrics if m.kind == "session"}
    names = {d.name for d in dims if d.kind != "time"}
    if names <= {"source"} and _on(filters, {"source"}) and wanted <= SOURCE_METRICS:
        if _whole_days(dims, zone, rng):
            return "sources"
        return "local" if not names and filters is None and _local(dims) else None
    if [d.name for d in dims] == ["entry_page"] and _on(filters, {"entry_page"}):
        return "entries" if wanted <= ENTRY_METRICS else None
    kind = attr_kind(dims)
    if kind and not set(ATTR_KINDS[kind]) & set(EVENT_ATTRS) and _on(filters, names):
        return "attrs" if wanted <= SOURCE_METRICS and _whole_days(dims, zone, rng) else None
    return None
