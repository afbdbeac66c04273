"""The GET routes as presets on the engine: each asks an engine query, or where the route's
definition differs from the query contract (docs/metrics.md), a preset statement; the
planner decides rollups vs. raw rows for both. Callers shape the figures returned."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Row
from weldpulse.api.params import Interval, Range
from weldpulse.domain import PAGEVIEW
from weldpulse.stats import queries
from weldpulse.stats.engine import plan, run
from weldpulse.stats.engine.filters import Condition, Node
from weldpulse.stats.engine.registry import DIMENSIONS, METRICS
from weldpulse.stats.engine.request import Query
from weldpulse.stats.engine.runner import BUDGET_SECONDS, Budget
from weldpulse.stats.engine.zones import Span
from weldpulse.timezones import is_utc

Values = dict[str, Any]
MAX_ROWS = queries.MAX_ROWS  # rows of the breakdowns without a `limit` parameter


def _query(
    sites: tuple[str, ...], rng: Range, metrics: Sequence[str], dims: Sequence[str] = (),
    filters: Node | None = None,
) -> Query:  # fmt: skip
    """An engine query in UTC over the GET range (an instant range: no local days)."""
    span = Span(rng.start, rng.end, None, None, rng.start, rng.end)
    return Query(
        sites, ZoneInfo("UTC"), span, tuple(METRICS[m] for m in metrics),
        tuple(DIMENSIONS[d] for d in dims), filters, (), 1, 0, None, False, b"",
    )  # fmt: skip


def _event_name(op: str) -> Node:
    return Node("cond", cond=Condition(DIMENSIONS["event_name"], op, (PAGEVIEW,), True))


def _budget(conn: Connection) -> Budget:
    return Budget(conn, BUDGET_SECONDS)


def _top(budget: Budget, q: Query, first: str, second: str, limit: int) -> list:
    """(label, figures) of the query's first `limit` groups by `first` and `second`
    descending, then label ascending (in code-point order, as the engine's ties)."""
    table = run.figures(budget, q, ((first, second), limit))
    rows = sorted(table.items(), key=lambda kv: (-kv[1].get(first, 0), -kv[1].get(second, 0),
                                                  kv[0]))  # fmt: skip
    return [(key[0], values) for key, values in rows[:limit]]


def stats_query(sites: tuple[str, ...], rng: Range) -> Query:
    metrics = ("visitors", "pageviews", "sessions", "avg_duration", "bounce_rate")
    return _query(sites, rng, metrics)


def pages_query(sites: tuple[str, ...], rng: Range) -> Query:
    return _query(sites, rng, ("visitors", "pageviews"), ("page",), _event_name("is"))


def _these(dimension: str, values: Sequence[str]) -> Node:
    return Node("cond", cond=Condition(DIMENSIONS[dimension], "is", tuple(values), True))


def times_query(sites: tuple[str, ...], rng: Range, paths: Sequence[str]) -> Query:
    scope = Node("and", (_event_name("is"), _these("page", paths)))
    return _query(sites, rng, ("time_on_page",), ("page",), scope)


def entries_query(sites: tuple[str, ...], rng: Range, paths: Sequence[str]) -> Query:
    metrics = ("sessions", "bounce_rate")
    return _query(sites, rng, metrics, ("entry_page",), _these("entry_page", paths))


def events_query(sites: tuple[str, ...], rng: Range) -> Query:
    return _query(sites, rng, ("events", "visitors"), ("event_name",), _event_name("is_not"))


def stats(conn: Connection, sites: tuple[str, ...], rng: Range) -> Values:
    """visitors, pageviews, sessions, bounces, duration: the query without dimensions."""
    return run.figures(_budget(conn), stats_query(sites, rng))[()]


@dataclass(frozen=True)
class Page:
    pathname: str
    figures: Values  # visitors, pageviews, time_total, time_count over pageviews
    entries: Values  # sessions, bounces of the sessions entering here


def pages(conn: Connection, sites: tuple[str, ...], rng: Range, limit: int) -> list[Page]:
    """Top pages over pageviews (visitors, pageviews), then the top pages' time on page and
    their entries' bounces: three queries, as the route's visitors count pageviews only."""
    budget = _budget(conn)
    top = _top(budget, pages_query(sites, rng), "visitors", "pageviews", limit)
    if not top:
        return []
    paths = [path for path, _ in top]
    times = run.figures(budget, times_query(sites, rng, paths))
    entries = run.figures(budget, entries_query(sites, rng, paths))
    out = []
    for path, values in top:
        time = times.get((path,), {})
        seconds = {k: time[k] for k in ("time_total", "time_count") if k in time}
        out.append(Page(path, values | seconds, entries.get((path,), {})))
    return out


def events(conn: Connection, sites: tuple[str, ...], rng: Range) -> list[tuple[str, Values]]:
    """Custom events (all but pageviews) by events, visitors, name."""
    return _top(_budget(conn), events_query(sites, rng), "events", "visitors", MAX_ROWS)


def _rows(budget: Budget, stmt: Select) -> Sequence[Row]:
    return budget.execute(stmt).all()


def referrers(conn: Connection, sites: tuple[str, ...], rng: Range, limit: int) -> Sequence[Row]:
    """Sources of the sessions starting in range, with those sessions' visitors and pageviews
    (the query's visitors by source count events): a preset statement."""
    budget = _budget(conn)
    return _rows(budget, queries.top_referrers(budget.plan(sites, rng), limit))


def breakdown(
    kind: str, conn: Connection, sites: tuple[str, ...], rng: Range, limit: int
) -> Sequence[Row]:
    """geo or devices by each event's own attributes (the query's are the session's)."""
    budget = _budget(conn)
    return _rows(budget, queries.breakdown(kind, budget.plan(sites, rng), limit))


def timeseries(
    conn: Connection, sites: tuple[str, ...], rng: Range, interval: Interval,
    zone: ZoneInfo | None,
) -> tuple[Sequence[Row], Sequence[Row]]:  # fmt: skip
    """Per N-unit bucket aligned to 1970 (the query's time:* are single units): visitors and
    pageviews, and sessions starting. Sub-day or local buckets split UTC days: raw rows."""
    budget = _budget(conn)
    whole_days = interval.unit not in ("minute", "hour") and (
        zone is None or is_utc(zone, rng.start, rng.end)
    )
    p = budget.plan(sites, rng) if whole_days else plan.raw(sites, rng)
    by_event = _rows(budget, queries.events_by_bucket(p, interval, zone))
    return by_event, _rows(budget, queries.sessions_by_bucket(p, interval, zone))


def realtime(conn: Connection, sites: tuple[str, ...]) -> Sequence[Row]:
    """Visitors of the last 5 minutes under their latest page: not a range query."""
    now = datetime.now(UTC).replace(tzinfo=None)
    return _rows(_budget(conn), queries.realtime(sites, now))
