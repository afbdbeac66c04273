"""Running a query: which statements it needs, their rows merged, ordered, paged.

_table asks the planner (plan.py) whether a part can read the day rollups
(rolled.py builds those statements) or reads raw events and sessions (sql.py).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sqlalchemy import Connection, Executable
from weldpulse.api.params import Range
from weldpulse.stats.engine import buckets, local, paging, plan, rolled, runner
from weldpulse.stats.engine.filters import Condition, Node
from weldpulse.stats.engine.registry import GOAL, POINTS, Dimension, Metric
from weldpulse.stats.engine.request import Query
from weldpulse.stats.engine.runner import Budget
from weldpulse.stats.engine.sql import (
    Clock,
    by_links,
    event_stmt,
    joins_events,
    joins_sessions,
    session_stmt,
    time_on_page_stmt,
)
from weldpulse.stats.engine.zones import Span

Key = tuple[str, ...]


Values = dict[str, Any]  # raw sums and counts as the database returns them


@dataclass
class Row:
    dimensions: Key
    metrics: list[float]
    comparison: "Row | None" = None
    change: list[float | None] = field(default_factory=list)


@dataclass
class Answer:
    rows: list[Row]
    totals: Row | None
    total_rows: int
    next_page_token: str | None


def _key(value: Any) -> str:
    if isinstance(value, datetime):
        return buckets.label(value)
    if isinstance(value, date):  # date_trunc of a day or longer may come back as a date
        return buckets.label(datetime.combine(value, datetime.min.time()))
    return str(value)


def _exact(value: Any) -> Fraction:
    """The decimal a number prints as (a float's shortest repr, a Decimal as is), exactly."""
    return Fraction(str(value))


def _round(value: Fraction, places: int) -> float:
    """Half away from zero, on the exact value: 31.25 → 31.3 on every engine, whatever
    binary float or numeric the database summed in."""
    scaled = abs(value) * 10**places
    whole = math.floor(scaled + Fraction(1, 2))
    return math.copysign(whole / 10**places, value) if whole else 0.0


def _ratio(part: Any, whole: Any, places: int) -> float:
    return _round(_exact(part) / _exact(whole), places) if whole else 0.0


def _table(
    run: Budget, q: Query, span: Span, dims: Sequence[Dimension],
    top: tuple[Sequence[str], int] | None = None,
) -> dict[Key, Values]:  # fmt: skip
    """Raw per-group figures of `dims` over `span`: event and session statements merged
    (`top`: at least the first groups by those metrics; see rolled.event_statements)."""
    kinds = {m.kind for m in q.metrics}
    time = next((d for d in dims if d.kind == "time"), None)
    rng = Range(span.start, span.end)
    clock = (q.zone, rng) if time else None
    wants_time = any(m.name == "time_on_page" for m in q.metrics)
    dims = tuple(dims)
    event_rollup = plan.event_rollup(q.metrics, dims, q.filters, q.zone, rng)
    session_rollup = plan.session_rollup(q.metrics, dims, q.filters, q.zone, rng)
    day_rollups = {r for r in (event_rollup, session_rollup) if r and r != "local"}
    if (event_rollup in day_rollups and "event" in kinds) or (
        session_rollup in day_rollups and "session" in kinds
    ):
        rolled_plan = run.plan(q.sites, rng)
    if (event_rollup == "local" and "event" in kinds) or (
        session_rollup == "local" and "session" in kinds
    ):
        local_plan = local.plan(run.execute, q.sites, rng, q.zone, time.column if time else None)
    rows: dict[Key, Values] = {}
    if "event" in kinds and event_rollup == "local":
        _add(run, local.event_statements(local_plan, dims, clock), len(dims), rows)
    elif "event" in kinds and event_rollup:
        visitors = any(m.name in ("visitors", "percentage") for m in q.metrics)
        stmts = rolled.event_statements(event_rollup, rolled_plan, dims, q.filters, clock,
                                        wants_time, visitors, top)  # fmt: skip
        _add(run, stmts, len(dims), rows)
    elif "event" in kinds:
        links = wants_time and by_links(dims, q.filters)
        # With the goal dimension, joining the selected goals already keeps only the events
        # completing one: the filter without goal conditions is all that is left to apply.
        filters = q.base_filters if GOAL in dims else q.filters
        stmt = event_stmt(q.sites, span, dims, filters, clock, wants_time and not links,
                          q.goals)  # fmt: skip
        for r in run.execute(stmt, joins_sessions(dims, filters)):
            key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
            rows.setdefault(key, {}).update(
                visitors=r.visitors, pageviews=r.pageviews, events=r.events,
                time_total=r.time_total or 0, time_count=r.time_count,
            )  # fmt: skip
        if links:
            stmt = time_on_page_stmt(q.sites, span, dims, q.filters, clock)
            for r in run.execute(stmt, joins_sessions(dims, q.filters)):
                key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
                if key in rows:  # a pageview in scope: its row has events in scope
                    rows[key].update(time_total=r.time_total or 0, time_count=r.time_count)
    if any(m.name == "conversion_rate" for m in q.metrics):
        _add_divisors(run, q, rows, dims, span, clock)
    if "session" in kinds and session_rollup == "local":
        _add(run, local.session_statements(local_plan, dims, clock), len(dims), rows)
    elif "session" in kinds and session_rollup:
        stmts = rolled.session_statements(session_rollup, rolled_plan, dims, q.filters, clock)
        _add(run, stmts, len(dims), rows)
    elif "session" in kinds:
        stmt = session_stmt(q.sites, span, dims, q.filters, clock)
        for r in run.execute(stmt, joins_events(q.filters)):
            key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
            rows.setdefault(key, {}).update(
                sessions=r.sessions, bounces=r.bounces, duration=r.duration, views=r.views,
            )  # fmt: skip
    return rows


def figures(
    run: Budget, q: Query, top: tuple[Sequence[str], int] | None = None
) -> dict[Key, Values]:
    """The raw sums per group of the query's dimensions over its range, for presets to shape;
    with `top` (metrics, n) at least the first n groups by those metrics descending."""
    return _table(run, q, q.span, q.dimensions, top)


def _add(run: Budget, stmts: Sequence[Executable], n: int, rows: dict[Key, Values]) -> None:
    """Adds up the sums of several statements' rows per group (d0 … d{n-1})."""
    for stmt in stmts:
        for r in run.execute(stmt):
            values = dict(r._mapping)
            key = tuple(_key(values.pop(f"d{i}")) for i in range(n))
            into = rows.setdefault(key, {})
            for name, value in values.items():
                into[name] = _sum(into[name], value or 0) if name in into else value or 0


def _sum(a: Any, b: Any) -> Any:
    """Exact: whole numbers stay ints, others add as the decimals they print as."""
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    whole = isinstance(b, Decimal) and b == b.to_integral_value()
    if isinstance(a, int) and whole:
        return a + int(b)
    return _exact(a) + _exact(b)


def _add_divisors(
    run: Budget, q: Query, rows: dict[Key, Values], dims: Sequence[Dimension], span: Span,
    clock: Clock | None,
) -> None:  # fmt: skip
    """conversion_rate's divisor on each row: the visitors of the events in scope without the
    goal conditions, with the row's values of its other dimensions."""
    others = [d for d in dims if d is not GOAL]
    at = next((i for i, d in enumerate(dims) if d is GOAL), None)
    stmt = event_stmt(q.sites, span, others, q.base_filters, clock, False)
    divisors = {tuple(_key(r._mapping[f"d{i}"]) for i in range(len(others))): r.visitors
                for r in run.execute(stmt)}  # fmt: skip
    for key, raw in rows.items():
        other = key if at is None else key[:at] + key[at + 1 :]
        raw["base_visitors"] = divisors.get(other, 0)


def _metrics(raw: Values, metrics: Sequence[Metric], total_visitors: float) -> list[float]:
    """The requested metrics only (exact fractions cost; a page of rows needs few)."""
    g = raw.get
    n = g("sessions", 0)
    values: dict[str, Callable[[], Any]] = {
        "visitors": lambda: g("visitors", 0), "pageviews": lambda: g("pageviews", 0),
        "events": lambda: g("events", 0),
        "time_on_page": lambda: _ratio(g("time_total", 0), g("time_count", 0), 1),
        "percentage": lambda: _ratio(g("visitors", 0), total_visitors, 4),
        "sessions": lambda: n, "bounce_rate": lambda: _ratio(g("bounces", 0), n, 4),
        "avg_duration": lambda: _ratio(g("duration", 0), n, 1),
        "views_per_session": lambda: _ratio(g("views", 0), n, 2),
        "conversion_rate": lambda: _ratio(g("visitors", 0), g("base_visitors", 0), 4),
    }  # fmt: skip
    return [float(values[m.name]()) for m in metrics]


def _figures(run: Budget, q: Query, span: Span) -> tuple[dict[Key, Values], Values]:
    """The raw figures of every group of `span` (none without dimensions) and of its total."""
    needs_total = q.include_totals or any(m.name == "percentage" for m in q.metrics)
    total_raw = _table(run, q, span, ())[()] if needs_total or not q.dimensions else {}
    return (_table(run, q, span, q.dimensions) if q.dimensions else {}), total_raw


def _rows(run: Budget, q: Query, span: Span) -> tuple[list[Row], Row]:
    """Every row of `span` (unordered) and its totals row."""
    table, total_raw = _figures(run, q, span)
    total_visitors = total_raw.get("visitors", 0)
    totals = Row((), _metrics(total_raw, q.metrics, total_visitors))
    if not q.dimensions:
        return [totals], totals
    if q.time and len(q.dimensions) == 1:  # every bucket, empty ones as zeros
        for label in buckets.labels(span, q.time.column, q.zone):
            table.setdefault((label,), {})
    rows = [Row(k, _metrics(v, q.metrics, total_visitors)) for k, v in table.items()]
    return rows, totals


def _order(rows: list[Row], q: Query) -> list[Row]:
    """The requested order; ties by dimension values ascending in code-point order."""
    ordered = sorted(rows, key=lambda r: r.dimensions)
    metric_at = {m.name: i for i, m in enumerate(q.metrics)}
    dim_at = {d.name: i for i, d in enumerate(q.dimensions)}
    for name, desc in reversed(q.order):  # stable sorts, least significant key first
        if name in metric_at:
            i = metric_at[name]
            ordered.sort(key=lambda r: r.metrics[i], reverse=desc)
        else:
            j = dim_at[name]
            ordered.sort(key=lambda r: r.dimensions[j], reverse=desc)
    return ordered


def _change(now: list[float], then: list[float], metrics: Sequence[Metric]) -> list[float | None]:
    out: list[float | None] = []
    for a, b, m in zip(now, then, metrics, strict=True):
        if b == 0:
            out.append(None)
        elif m.name in POINTS:
            out.append(_round((_exact(a) - _exact(b)) * 100, 1))
        else:
            out.append(_round((_exact(a) - _exact(b)) / _exact(b) * 100, 1))
    return out


MAX_KEYS = 100


def _on_keys(q: Query, page: list[Row]) -> Query:
    """The query for the comparison's groups: where no rollup serves it, narrowed to the
    page's values of each non-time dimension (a superset of the page's keys, so exact)."""
    rng = Range(q.span.start, q.span.end)
    args = (q.metrics, q.dimensions, q.filters, q.zone, rng)
    if plan.event_rollup(*args) or plan.session_rollup(*args) or not page:
        return q
    conds = []
    for i, d in enumerate(q.dimensions):
        values = tuple(sorted({r.dimensions[i] for r in page}))
        if d.kind != "time" and len(values) <= MAX_KEYS:
            conds.append(Node("cond", cond=Condition(d, "is", values, True)))
    if not conds:
        return q
    narrowed = Node("and", (*conds, *([q.filters] if q.filters else [])))
    return replace(q, filters=narrowed)


def _compare(run: Budget, q: Query, page: list[Row], totals: Row | None) -> None:
    """Comparison rows for the page's rows only: their metrics are computed, no others."""
    assert q.compare is not None
    needs_total = q.include_totals or any(m.name == "percentage" for m in q.metrics)
    total_raw = _table(run, q, q.compare, ())[()] if needs_total or not q.dimensions else {}
    table: dict[Key, Values] = {(): total_raw}
    if q.dimensions:
        table = _table(run, _on_keys(q, page), q.compare, q.dimensions)
    total_visitors = total_raw.get("visitors", 0)
    t = next((i for i, d in enumerate(q.dimensions) if d.kind == "time"), None)
    if t is not None:
        assert q.time is not None
        mine = {label: i for i, label in enumerate(buckets.labels(q.span, q.time.column, q.zone))}
        theirs = buckets.labels(q.compare, q.time.column, q.zone)
    for row in page:
        key = row.dimensions
        if t is not None:
            pos = mine.get(key[t], len(theirs))
            key = (*key[:t], theirs[pos] if pos < len(theirs) else "", *key[t + 1 :])
        row.comparison = Row(key, _metrics(table.get(key, {}), q.metrics, total_visitors))
        row.change = _change(row.metrics, row.comparison.metrics, q.metrics)
    if totals is not None:
        then = _metrics(total_raw, q.metrics, total_visitors)
        totals.comparison = Row((), then)
        totals.change = _change(totals.metrics, then, q.metrics)


def answer(conn: Connection, q: Query) -> Answer:
    """Runs the query's statements on `conn` (one snapshot) within the budget; shapes the page."""
    return _answer(Budget(conn, runner.BUDGET_SECONDS), q)


def _answer(run: Budget, q: Query) -> Answer:
    rows, totals = _rows(run, q, q.span)
    ordered = _order(rows, q)
    page = ordered[q.offset : q.offset + q.limit]
    end = q.offset + q.limit
    token = paging.token(q.fingerprint, end) if end < len(ordered) else None
    shown = totals if q.include_totals else None
    if q.compare is not None:
        _compare(run, q, page, shown)
    return Answer(page, shown, len(ordered), token)
