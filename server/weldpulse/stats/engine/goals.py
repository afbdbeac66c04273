"""Goals in a query: which goals a filter selects, and when an event completes one (SQL).

A goal condition may only be the whole filter or a direct condition of its
top-level `and`, so a filter is (goal conditions) AND (the rest): an (event,
goal) pair passes when the goal's name passes the goal conditions and the event
passes the rest. The goal conditions are therefore decided here, in Python,
over the site's goal names, and the SQL only asks whether an event completes
one of the selected goals.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]
from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    String,
    Values,
    and_,
    case,
    column,
    false,
    literal,
    or_,
    select,
    union_all,
    values,
)
from weldpulse.domain import PAGEVIEW
from weldpulse.errors import BadRequest
from weldpulse.stats.engine.filters import Condition, Node
from weldpulse.stats.engine.registry import GOAL
from weldpulse.stats.paths import path_condition


@dataclass(frozen=True)
class Goal:
    """A goal of a site, as the servicer read it from the metadata store."""

    site_id: str
    name: str
    event_name: str  # "" when a page-path goal
    page_path: str  # "" when an event-name goal


def _is_goal(node: Node) -> bool:
    return node.cond is not None and node.cond.dim.name == GOAL.name


def _has_goal(node: Node) -> bool:
    return _is_goal(node) or any(_has_goal(c) for c in node.children)


def split(filters: Node | None) -> tuple[list[Condition], Node | None]:
    """The goal conditions and the rest of the filter; a 400 for a goal condition elsewhere."""
    if filters is None:
        return [], None
    if _is_goal(filters):
        return [filters.cond] if filters.cond else [], None
    top = list(filters.children) if filters.kind == "and" else [filters]
    conds = [c.cond for c in top if _is_goal(c) and c.cond is not None]
    rest = [c for c in top if not _is_goal(c)]
    if any(_has_goal(c) for c in rest):
        raise BadRequest(
            "Invalid filters: a goal condition may only be the whole filter or a direct "
            "condition of the top-level 'and' (not under 'or' or 'not')"
        )
    if not rest:
        return conds, None
    return conds, rest[0] if len(rest) == 1 and filters.kind != "and" else Node("and", tuple(rest))


def _holds(c: Condition, name: str) -> bool:
    """The condition on one goal name, as the SQL conditions read any other value."""
    if c.op in ("matches", "not_matches"):
        flags = "" if c.case_sensitive else "(?i)"
        hit = any(re2.search(flags + v, name) is not None for v in c.values)
    else:
        x = name if c.case_sensitive else name.lower()
        vals = c.values if c.case_sensitive else tuple(v.lower() for v in c.values)
        if c.op in ("is", "is_not"):
            hit = x in vals
        elif c.op in ("contains", "not_contains"):
            hit = any(v in x for v in vals)
        else:  # starts_with
            hit = any(x.startswith(v) for v in vals)
    return not hit if c.op in ("is_not", "not_contains", "not_matches") else hit


def selected(goals: Sequence[Goal], conds: Sequence[Condition]) -> tuple[Goal, ...]:
    """The goals whose names pass every goal condition."""
    return tuple(g for g in goals if all(_holds(c, g.name) for c in conds))


def _completes(ec: Any, g: Goal) -> ColumnElement[bool]:
    if g.event_name:
        return ec.name == g.event_name
    return and_(ec.name == PAGEVIEW, path_condition(ec.pathname, g.page_path))


def completes(e: FromClause, goals: Sequence[Goal]) -> ColumnElement[bool]:
    """SQL: the event row of `e` (site_id, name, pathname) completes one of `goals`."""
    parts = [and_(e.c.site_id == g.site_id, _completes(e.c, g)) for g in goals]
    return or_(*parts) if parts else false()


def goal_pairs(in_scope: Select, goals: Sequence[Goal]) -> Select:
    """The rows of `in_scope` (events with site_id, name, pathname) once per goal of `goals`
    each completes, the goal's name as `goal`.

    Only hash joins touch the events: event-name goals join on the name; page-path goals
    are matched against the distinct pathnames first (thousands of patterns tests, not one
    per event and goal), and events join on the matching pathnames."""
    ev = in_scope.cte("ev")
    parts = []
    by_name = [(g.site_id, g.event_name, g.name) for g in goals if g.event_name]
    if by_name:
        gn = _table("gn", ("site_id", "event_name", "name"), by_name)
        on = and_(ev.c.site_id == gn.c.site_id, ev.c.name == gn.c.event_name)
        parts.append(select(ev, gn.c.name.label("goal")).select_from(ev.join(gn, on)))
    by_path = [g for g in goals if not g.event_name]
    if by_path:
        views = select(ev.c.site_id, ev.c.pathname).where(ev.c.name == PAGEVIEW).distinct()
        p = views.subquery("p")
        gp = _table("gp", ("i", "site_id", "name"), [(str(i), g.site_id, g.name)
                                                      for i, g in enumerate(by_path)])  # fmt: skip
        # A CASE on the goal's index keeps every pattern a constant (compiled once).
        hit = case(*((gp.c.i == str(i), path_condition(p.c.pathname, g.page_path))
                     for i, g in enumerate(by_path)), else_=false())  # fmt: skip
        matched = (
            select(p.c.site_id, p.c.pathname, gp.c.name)
            .select_from(p.join(gp, and_(p.c.site_id == gp.c.site_id, hit)))
            .subquery("m")
        )
        on = and_(ev.c.site_id == matched.c.site_id, ev.c.name == PAGEVIEW,
                  ev.c.pathname == matched.c.pathname)  # fmt: skip
        parts.append(select(ev, matched.c.name.label("goal")).select_from(ev.join(matched, on)))
    if not parts:  # no goal selected: no pairs
        return select(ev, literal("", String).label("goal")).where(false())
    return parts[0] if len(parts) == 1 else union_all(*parts)  # type: ignore[return-value]


def _table(name: str, columns: tuple[str, ...], rows: list[tuple]) -> Values:
    return values(*(column(c, String) for c in columns), name=name).data(rows)
