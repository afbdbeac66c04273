"""Parsing and validation of a QueryRequest into a Query: every contract violation is a 400."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from weldpulse.domain import ONE_MICROSECOND
from weldpulse.errors import BadRequest
from weldpulse.stats.engine import buckets, paging
from weldpulse.stats.engine.filters import Node, parse_filters
from weldpulse.stats.engine.goals import Goal, selected, split
from weldpulse.stats.engine.registry import (
    DIMENSIONS,
    GOAL,
    METRICS,
    PENDING,
    Dimension,
    Metric,
    dimension,
)
from weldpulse.stats.engine.zones import (
    Span,
    day_start,
    span_of_days,
    utc_to_wall,
    wall_to_utc,
)
from weldpulse.timezones import parse_timezone
from weldpulse.v1 import analytics_pb2 as pb

MAX_METRICS = 10
MAX_DIMENSIONS = 3
DEFAULT_LIMIT, MAX_LIMIT = 100, 10_000
MAX_DATE = 64
MODES = ("previous_period", "year_over_year", "custom")


@dataclass(frozen=True)
class Query:
    sites: tuple[str, ...]
    zone: ZoneInfo
    span: Span
    metrics: tuple[Metric, ...]
    dimensions: tuple[Dimension, ...]
    filters: Node | None
    order: tuple[tuple[str, bool], ...]  # (field, descending)
    limit: int
    offset: int
    compare: Span | None
    include_totals: bool
    fingerprint: bytes  # of everything but limit and page token: binds page tokens
    # With `goal` as a dimension or in the filter: the goals the filter selects (the `goal`
    # dimension's values), and the filter without its goal conditions (conversion_rate).
    goals: tuple[Goal, ...] = ()
    base_filters: Node | None = None

    @property
    def time(self) -> Dimension | None:
        return next((d for d in self.dimensions if d.kind == "time"), None)


def parse_query(
    request: pb.QueryRequest, sites: tuple[str, ...], site_zone: Callable[[str], str],
    site_goals: Sequence[Goal] = (),
) -> Query:  # fmt: skip
    """`sites`: the caller's sites narrowed to `site_id`; `site_zone` names a site's zone;
    `site_goals`: the goals of those sites, oldest first."""
    zone_name = request.timezone or (site_zone(request.site_id) if request.site_id else "UTC")
    zone = parse_timezone(zone_name)
    if not request.HasField("date_range"):
        raise BadRequest("Missing required field: date_range")
    span = parse_span(request.date_range, zone, "date_range")
    metrics = _metrics(list(request.metrics))
    dims = _dimensions(list(request.dimensions), metrics)
    filters = parse_filters(request.filters) if request.HasField("filters") else None
    order = _order(request, metrics, dims)
    limit = request.limit if request.HasField("limit") else DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        raise BadRequest(f"Invalid limit: {limit} is not between 1 and {MAX_LIMIT}")
    compare = _compare(request, span, zone) if request.HasField("compare") else None
    time = next((d for d in dims if d.kind == "time"), None)
    if time is not None:  # bounded before any SQL runs, also when rows are not filled in
        buckets.check(span, time.column, zone, "dimensions")
        if compare is not None:
            buckets.check(compare, time.column, zone, "compare.date_range")
    normal = pb.QueryRequest()
    normal.CopyFrom(request)
    normal.ClearField("limit")
    normal.ClearField("page_token")
    normal.timezone = zone_name
    fingerprint = normal.SerializeToString(deterministic=True)
    offset = paging.offset_of(request.page_token, fingerprint)
    goals: tuple[Goal, ...] = ()
    base = filters
    if GOAL in dims or (filters is not None and "goal" in _names(filters)):
        conds, base = split(filters)
        goals = selected(site_goals, conds)
        # Only events completing a selected goal are in scope (totals and percentage too).
        only = Node("goals", goals=goals)
        filters = Node("and", (base, only)) if base is not None else only
    elif any(m.name == "conversion_rate" for m in metrics):
        raise BadRequest(
            "Invalid metrics: conversion_rate needs the goal dimension or a goal condition in "
            "filters"
        )
    return Query(sites, zone, span, metrics, dims, filters, order, limit, offset, compare,
                 request.include_totals, fingerprint, goals, base)  # fmt: skip


def _names(node: Node) -> set[str]:
    own = {node.cond.dim.name} if node.cond else set()
    return own.union(*(_names(c) for c in node.children))


def _metrics(names: list[str]) -> tuple[Metric, ...]:
    if not 1 <= len(names) <= MAX_METRICS:
        raise BadRequest(f"Invalid metrics: {len(names)} given; 1 to {MAX_METRICS} allowed")
    for name in names:
        if name not in METRICS:
            raise BadRequest(
                f"Invalid metrics: unknown metric {name[:100]!r}; known: {', '.join(METRICS)}"
            )
    if len(set(names)) != len(names):
        raise BadRequest("Invalid metrics: a metric is repeated")
    return tuple(METRICS[n] for n in names)


def _dimensions(names: list[str], metrics: tuple[Metric, ...]) -> tuple[Dimension, ...]:
    if len(names) > MAX_DIMENSIONS:
        raise BadRequest(f"Invalid dimensions: {len(names)} given; at most {MAX_DIMENSIONS}")
    dims = []
    for name in names:
        dim = dimension(name)
        if dim is None:
            why = "not available yet" if name in PENDING else "unknown dimension"
            raise BadRequest(
                f"Invalid dimensions: {name[:100]!r}: {why}; known: "
                f"{', '.join(DIMENSIONS)}, prop:<key>"
            )
        dims.append(dim)
    if len(set(names)) != len(names):
        raise BadRequest("Invalid dimensions: a dimension is repeated")
    if sum(d.kind == "time" for d in dims) > 1:
        raise BadRequest("Invalid dimensions: at most one time:* dimension")
    session = next((m for m in metrics if m.kind == "session"), None)
    event = next((d for d in dims if d.kind == "event"), None)
    if session and event:
        raise BadRequest(
            f"Invalid dimensions: the session metric {session.name!r} cannot be grouped by the "
            f"event dimension {event.name!r}; use entry_page or exit_page instead"
        )
    return tuple(dims)


def _order(
    request: pb.QueryRequest, metrics: tuple[Metric, ...], dims: tuple[Dimension, ...]
) -> tuple[tuple[str, bool], ...]:
    fields = [m.name for m in metrics] + [d.name for d in dims]
    order = []
    for i, o in enumerate(request.order_by):
        if o.field not in fields:
            raise BadRequest(
                f"Invalid order_by[{i}].field: {o.field[:100]!r} is not a requested metric or "
                "dimension"
            )
        order.append((o.field, o.desc))
    if len({f for f, _ in order}) != len(order):
        raise BadRequest("Invalid order_by: a field is repeated")
    if not order:
        time = next((d for d in dims if d.kind == "time"), None)
        order = [(time.name, False)] if time else [(metrics[0].name, True)]
    return tuple(order)


def _point(value: str, zone: ZoneInfo, field: str) -> datetime | date:
    """A date, or an instant as naive UTC."""
    text = value.strip()
    if not text:
        raise BadRequest(f"Missing required field: {field}")
    if len(text) > MAX_DATE:
        raise BadRequest(f"Invalid {field}: longer than {MAX_DATE} characters")
    if len(text) == 10:
        try:
            return date.fromisoformat(text)
        except ValueError:
            pass
    try:
        parsed = datetime.fromisoformat(text)
        if parsed.tzinfo is None:
            return wall_to_utc(parsed, zone)
        return parsed.astimezone(UTC).replace(tzinfo=None)
    except ValueError:
        raise BadRequest(
            f"Invalid {field}: {value[:80]!r} is not a date (2026-11-01) or an ISO 8601 "
            "timestamp (2026-11-01T10:00:00, optionally with an offset)"
        ) from None
    except OverflowError:
        raise BadRequest(f"Invalid {field}: {value[:80]!r} is out of range") from None


def parse_span(rng: pb.QueryDateRange, zone: ZoneInfo, field: str) -> Span:
    first = _point(rng.start, zone, f"{field}.start")
    last = _point(rng.end, zone, f"{field}.end")
    try:
        if not isinstance(first, datetime) and not isinstance(last, datetime):
            span = span_of_days(first, last, zone)
        else:
            start = first if isinstance(first, datetime) else day_start(first, zone)
            end = (
                last
                if isinstance(last, datetime)
                else day_start(last + timedelta(1), zone) - ONE_MICROSECOND
            )
            span = Span(start, end, None, None, utc_to_wall(start, zone), utc_to_wall(end, zone))
    except OverflowError:
        raise BadRequest(f"Invalid {field}: out of range") from None
    if span.end < span.start:
        raise BadRequest(f"Invalid {field}: end is before start")
    return span


def _year_before(d: date) -> date:
    return d.replace(year=d.year - 1, day=28 if (d.month, d.day) == (2, 29) else d.day)


def _compare(request: pb.QueryRequest, span: Span, zone: ZoneInfo) -> Span:
    mode = request.compare.mode
    if mode not in MODES:
        raise BadRequest(f"Invalid compare.mode: {mode[:40]!r}; expected one of {', '.join(MODES)}")
    if mode != "custom" and request.compare.HasField("date_range"):
        raise BadRequest("Invalid compare.date_range: only with compare.mode 'custom'")
    try:
        if mode == "custom":
            if not request.compare.HasField("date_range"):
                raise BadRequest("Missing required field: compare.date_range")
            return parse_span(request.compare.date_range, zone, "compare.date_range")
        if span.first_day and span.last_day:
            if mode == "previous_period":
                days = (span.last_day - span.first_day).days + 1
                return span_of_days(span.first_day - timedelta(days), span.first_day - timedelta(1),
                                    zone)  # fmt: skip
            return span_of_days(_year_before(span.first_day), _year_before(span.last_day), zone)
        if mode == "previous_period":
            end = span.start - ONE_MICROSECOND
            start = end - (span.end - span.start)
        else:
            start = wall_to_utc(_shift(span.local_start), zone)
            end = wall_to_utc(_shift(span.local_end), zone)
        return Span(start, end, None, None, utc_to_wall(start, zone), utc_to_wall(end, zone))
    except (OverflowError, ValueError):
        raise BadRequest("Invalid compare: the comparison range is out of range") from None


def _shift(wall: datetime) -> datetime:
    return datetime.combine(_year_before(wall.date()), wall.time())
