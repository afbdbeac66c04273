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

from sqlalchemy import Connection, Executable, Integer, Select, literal_column, select, union_all
from weldpulse.api.params import Range
from weldpulse.stats.engine import buckets, dialect, local, paging, plan, rolled, runner
from weldpulse.stats.engine.filters import Condition, Node
from weldpulse.stats.engine.registry import GOAL, METRICS, POINTS, Dimension, Metric
from weldpulse.stats.engine.request import Query
from weldpulse.stats.engine.runner import Budget
from weldpulse.stats.engine.sql import (
    Clock,
    by_links,
    event_stmt,
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


Tables = list[dict[Key, Values]]  # one per span, in the order of the spans


def _tables(
    run: Budget, q: Query, spans: Sequence[Span], dims: Sequence[Dimension],
    top: tuple[Sequence[str], int] | None = None,
) -> Tables:  # fmt: skip
    """Raw per-group figures of `dims` over each span: event and session statements merged
    (`top`: at least the first groups by those metrics; see rolled.event_statements).

    The statements reading the day rollups run as one per part for all the spans (a
    comparison's two); raw rows are read span by span."""
    kinds = {m.kind for m in q.metrics}
    time = next((d for d in dims if d.kind == "time"), None)
    dims = tuple(dims)
    tables: Tables = [{} for _ in spans]
    ranges = [Range(span.start, span.end) for span in spans]
    clocks = [(q.zone, rng) if time else None for rng in ranges]
    rollups = [(plan.event_rollup(q.metrics, dims, q.filters, q.zone, rng) if "event" in kinds
                else None,
                plan.session_rollup(q.metrics, dims, q.filters, q.zone, rng) if "session" in kinds
                else None) for rng in ranges]  # fmt: skip
    day_parts = [rng for rng, parts in zip(ranges, rollups, strict=True)
                 if any(p and p != "local" for p in parts)]  # fmt: skip
    run.prefetch(q.sites, day_parts)
    wants_time = any(m.name == "time_on_page" for m in q.metrics)
    visitors = any(m.name in ("visitors", "percentage") for m in q.metrics)
    local_plans: dict[int, local.LocalPlan] = {}

    def local_plan(i: int) -> local.LocalPlan:  # looked up only for the parts that read it
        if i not in local_plans:
            column = time.column if time else None
            local_plans[i] = local.plan(run.execute, q.sites, ranges[i], q.zone, column)
        return local_plans[i]

    rolled_parts: list[tuple[int, Select]] = []
    for i, (span, rng, clock) in enumerate(zip(spans, ranges, clocks, strict=True)):
        if rollups[i][0] == "local":
            rolled_parts += [(i, s) for s in local.event_statements(local_plan(i), dims, clock)]
        elif rollup := rollups[i][0]:
            stmts = rolled.event_statements(rollup, run.plan(q.sites, rng), dims, q.filters, clock,
                                            wants_time, visitors, top)  # fmt: skip
            rolled_parts += [(i, stmt) for stmt in stmts]
        elif "event" in kinds:
            _raw_events(run, q, span, dims, clock, wants_time, tables[i])
    _add(run, rolled_parts, len(dims), tables)
    if any(m.name == "conversion_rate" for m in q.metrics):
        for span, rows in zip(spans, tables, strict=True):
            _add_divisors(run, q, rows, dims, span)
    rolled_parts = []
    for i, (span, rng, clock) in enumerate(zip(spans, ranges, clocks, strict=True)):
        if rollups[i][1] == "local":
            rolled_parts += [(i, s) for s in local.session_statements(local_plan(i), dims, clock)]
        elif rollup := rollups[i][1]:
            stmts = rolled.session_statements(rollup, run.plan(q.sites, rng), dims,
                                              q.filters, clock)  # fmt: skip
            rolled_parts += [(i, stmt) for stmt in stmts]
        elif "session" in kinds:
            _raw_sessions(run, q, span, dims, clock, tables[i])
    _add(run, rolled_parts, len(dims), tables)
    return tables


def _raw_events(
    run: Budget, q: Query, span: Span, dims: tuple[Dimension, ...], clock: Clock | None,
    wants_time: bool, rows: dict[Key, Values],
) -> None:  # fmt: skip
    links = wants_time and by_links(dims, q.filters)
    # With the goal dimension, joining the selected goals already keeps only the events
    # completing one: the filter without goal conditions is all that is left to apply.
    filters = q.base_filters if GOAL in dims else q.filters
    stmt = event_stmt(q.sites, span, dims, filters, clock, wants_time and not links, q.goals)
    for r in run.execute(stmt):
        key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
        rows.setdefault(key, {}).update(
            visitors=r.visitors, pageviews=r.pageviews, events=r.events,
            time_total=r.time_total or 0, time_count=r.time_count,
        )  # fmt: skip
    if links:
        stmt = time_on_page_stmt(q.sites, span, dims, q.filters, clock)
        for r in run.execute(stmt):
            key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
            if key in rows:  # a pageview in scope: its row has events in scope
                rows[key].update(time_total=r.time_total or 0, time_count=r.time_count)


def _raw_sessions(
    run: Budget, q: Query, span: Span, dims: tuple[Dimension, ...], clock: Clock | None,
    rows: dict[Key, Values],
) -> None:  # fmt: skip
    stmt = session_stmt(q.sites, span, dims, q.filters, clock)
    for r in run.execute(stmt):
        key = tuple(_key(r._mapping[f"d{i}"]) for i in range(len(dims)))
        rows.setdefault(key, {}).update(
            sessions=r.sessions, bounces=r.bounces, duration=r.duration, views=r.views,
        )  # fmt: skip


def figures(
    run: Budget, q: Query, top: tuple[Sequence[str], int] | None = None
) -> dict[Key, Values]:
    """The raw sums per group of the query's dimensions over its range, for presets to shape;
    with `top` (metrics, n) at least the first n groups by those metrics descending."""
    return _tables(run, q, [q.span], q.dimensions, top)[0]


def _merged(parts: Sequence[tuple[int, Select]]) -> list[tuple[Executable, int | None]]:
    """The statements as few: those with the same columns as one UNION ALL whose `period`
    column says whose rows are whose (None); a statement alone as it is, with its span's."""
    by_columns: dict[tuple[str, ...], list[tuple[int, Select]]] = {}
    for i, stmt in parts:
        by_columns.setdefault(tuple(sorted(stmt.selected_columns.keys())), []).append((i, stmt))
    out: list[tuple[Executable, int | None]] = []
    for names, group in by_columns.items():
        if len(group) == 1:
            out.append((group[0][1], group[0][0]))
            continue
        members = []
        for i, stmt in group:
            sub = stmt.subquery()
            period = literal_column(str(i), Integer).label("period")
            members.append(select(period, *(sub.c[name] for name in names)))
        joins = any(dialect.is_joined(stmt) for _, stmt in group)
        out.append((dialect.joined(union_all(*members), joins), None))
    return out


def _add(run: Budget, parts: Sequence[tuple[int, Select]], n: int, tables: Tables) -> None:
    """Adds up the sums of several statements' rows per span and group (d0 … d{n-1})."""
    for stmt, span in _merged(parts):
        for r in run.execute(stmt):
            values = dict(r._mapping)
            rows = tables[values.pop("period") if span is None else span]
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
    run: Budget, q: Query, rows: dict[Key, Values], dims: Sequence[Dimension], span: Span
) -> None:
    """conversion_rate's divisor on each row: the visitors of the events in scope without the
    goal conditions, with the row's values of its other dimensions."""
    others = tuple(d for d in dims if d is not GOAL)
    at = next((i for i, d in enumerate(dims) if d is GOAL), None)
    # The same question as a query of its own, so the planner may answer it from the day
    # rollups (with no other dimension: every visitor of the range, a raw scan before).
    base = replace(q, metrics=(METRICS["visitors"],), dimensions=others, filters=q.base_filters,
                   goals=(), base_filters=None, compare=None)  # fmt: skip
    table = _tables(run, base, [span], others)[0]
    divisors = {key: values.get("visitors", 0) for key, values in table.items()}
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


Figures = tuple[dict[Key, Values], Values]  # every group's raw figures, and the total's


def _figures(run: Budget, q: Query, spans: Sequence[Span]) -> list[Figures]:
    """The raw figures of every group of each span (none without dimensions) and of its total."""
    needs_total = q.include_totals or any(m.name == "percentage" for m in q.metrics)
    totals = [t.get((), {}) for t in _tables(run, q, spans, ())] if (
        needs_total or not q.dimensions) else [{} for _ in spans]  # fmt: skip
    tables = _tables(run, q, spans, q.dimensions) if q.dimensions else [{} for _ in spans]
    return list(zip(tables, totals, strict=True))


def _rows(q: Query, span: Span, figures: Figures) -> tuple[list[Row], Row]:
    """Every row of `span` (unordered) and its totals row."""
    table, total_raw = figures
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


def _narrows(q: Query) -> bool:
    """Whether the comparison reads raw rows only, narrowed to the page's groups (_on_keys):
    then it runs once the page is known; else with the query's own statements."""
    rng = Range(q.span.start, q.span.end)
    args = (q.metrics, q.dimensions, q.filters, q.zone, rng)
    rolls = plan.event_rollup(*args) or plan.session_rollup(*args)
    return not rolls and any(d.kind != "time" for d in q.dimensions)


def _on_keys(q: Query, page: list[Row]) -> Query:
    """The query for the comparison's groups: narrowed to the page's values of each
    non-time dimension (a superset of the page's keys, so exact)."""
    conds = []
    for i, d in enumerate(q.dimensions):
        values = tuple(sorted({r.dimensions[i] for r in page}))
        if d.kind != "time" and len(values) <= MAX_KEYS:
            conds.append(Node("cond", cond=Condition(d, "is", values, True)))
    if not conds:
        return q
    narrowed = Node("and", (*conds, *([q.filters] if q.filters else [])))
    return replace(q, filters=narrowed)


def _on_page(run: Budget, q: Query, page: list[Row]) -> Figures:
    """The comparison's figures of the page's groups (and its total), from raw rows."""
    assert q.compare is not None
    needs_total = q.include_totals or any(m.name == "percentage" for m in q.metrics)
    total_raw = _tables(run, q, [q.compare], ())[0].get((), {}) if needs_total else {}
    if not page:  # no row to compare
        return {}, total_raw
    return _tables(run, _on_keys(q, page), [q.compare], q.dimensions)[0], total_raw


def _compare(q: Query, page: list[Row], totals: Row | None, then: Figures) -> None:
    """Comparison rows for the page's rows only: their metrics are computed, no others."""
    assert q.compare is not None
    table, total_raw = then
    if not q.dimensions:
        table = {(): total_raw}
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
        then_totals = _metrics(total_raw, q.metrics, total_visitors)
        totals.comparison = Row((), then_totals)
        totals.change = _change(totals.metrics, then_totals, q.metrics)


def answer(conn: Connection, q: Query) -> Answer:
    """Runs the query's statements on `conn` (one snapshot) within the budget; shapes the page."""
    return _answer(Budget(conn, runner.BUDGET_SECONDS), q)


def _answer(run: Budget, q: Query) -> Answer:
    # A comparison not narrowed to the page reads both spans at once: one statement per part.
    later = q.compare is not None and _narrows(q)
    spans = [q.span] if q.compare is None or later else [q.span, q.compare]
    figures = _figures(run, q, spans)
    rows, totals = _rows(q, q.span, figures[0])
    ordered = _order(rows, q)
    page = ordered[q.offset : q.offset + q.limit]
    end = q.offset + q.limit
    token = paging.token(q.fingerprint, end) if end < len(ordered) else None
    shown = totals if q.include_totals else None
    if q.compare is not None:
        _compare(q, page, shown, _on_page(run, q, page) if later else figures[1])
    return Answer(page, shown, len(ordered), token)
