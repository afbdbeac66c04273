"""Funnels: step and window validation, and the one statement counting visitors per step.

A visitor reaches step k when, among the events in range satisfying the
filter, a chain of k events matches steps 1..k in order, each strictly later
than the one before, inside the window (one session, or N minutes from the
chain's first event). From a fixed first event, taking at each step the
earliest matching event strictly later than the previous one reaches every
step any chain from that first event reaches, as early as possible; so
per start event the statement follows that greedy chain, and a visitor's
level is the best over their start events (in session mode the earliest
start of each session is as good as any later one).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import (
    ColumnElement,
    FromClause,
    Select,
    and_,
    func,
    literal,
    or_,
    select,
)
from weldpulse.domain import PAGEVIEW
from weldpulse.errors import BadRequest
from weldpulse.stats.engine.filters import Node
from weldpulse.stats.engine.sql import where
from weldpulse.stats.engine.zones import Span
from weldpulse.stats.paths import path_condition
from weldpulse.storage.schema import events, sessions

MIN_STEPS, MAX_STEPS = 2, 8
MAX_NAME = 120  # characters of a goal or event name
MAX_PATH_BYTES = 2000
MAX_MINUTES = 10_080  # a week
MODES = ("session", "minutes")
KINDS = ("goal", "event_name", "page_path")


@dataclass(frozen=True)
class StepSpec:
    """A step as given: its kind (one of KINDS) and value."""

    kind: str
    value: str


@dataclass(frozen=True)
class Definition:
    """Steps and window as given (goals not yet resolved); `minutes` None: one session."""

    steps: tuple[StepSpec, ...]
    minutes: int | None

    def as_json(self) -> dict:
        window = {"mode": "session"} if self.minutes is None else {
            "mode": "minutes", "minutes": self.minutes}  # fmt: skip
        return {"steps": [{s.kind: s.value} for s in self.steps], "window": window}


@dataclass(frozen=True)
class Step:
    """A resolved step: events named `event_name`, or pageviews whose pathname matches."""

    label: str
    event_name: str | None = None
    page_path: str | None = None


def parse_definition(
    steps: Sequence[tuple[str, str, str]], mode: str, minutes: int, field: str = "steps"
) -> Definition:
    """Steps given as (goal, event_name, page_path) with "" for unset, and the window."""
    if not MIN_STEPS <= len(steps) <= MAX_STEPS:
        raise BadRequest(
            f"Invalid {field}: {len(steps)} steps given; {MIN_STEPS} to {MAX_STEPS} allowed"
        )
    specs = []
    for i, values in enumerate(steps):
        given = [(k, v) for k, v in zip(KINDS, values, strict=True) if v]
        if len(given) != 1:
            raise BadRequest(
                f"Invalid {field}[{i}]: exactly one of goal, event_name, page_path is required "
                f"({len(given)} given)"
            )
        kind, value = given[0]
        if "\x00" in value:  # text columns and PostgreSQL parameters refuse NUL
            raise BadRequest(f"Invalid {field}[{i}].{kind}: contains a NUL character")
        if kind == "page_path":
            if len(value.encode()) > MAX_PATH_BYTES:
                raise BadRequest(
                    f"Invalid {field}[{i}].page_path: longer than {MAX_PATH_BYTES} bytes"
                )
        elif len(value) > MAX_NAME:
            raise BadRequest(f"Invalid {field}[{i}].{kind}: longer than {MAX_NAME} characters")
        specs.append(StepSpec(kind, value))
    return Definition(tuple(specs), _window(mode, minutes))


def _window(mode: str, minutes: int) -> int | None:
    if mode not in ("", *MODES):
        raise BadRequest(f"Invalid window.mode: {mode[:40]!r}; expected one of {', '.join(MODES)}")
    if mode == "minutes":
        if not 1 <= minutes <= MAX_MINUTES:
            raise BadRequest(
                f"Invalid window.minutes: {minutes} is not between 1 and {MAX_MINUTES}"
            )
        return minutes
    if minutes:
        raise BadRequest("Invalid window.minutes: only with window.mode 'minutes'")
    return None


def _matches(step: Step, e: FromClause) -> ColumnElement[bool]:
    if step.event_name is not None:
        return e.c.name == step.event_name
    assert step.page_path is not None
    if "*" not in step.page_path:  # a literal pattern: equality, which PostgreSQL does not
        return and_(e.c.name == PAGEVIEW, e.c.pathname == step.page_path)  # infer from a regex
    return and_(e.c.name == PAGEVIEW, path_condition(e.c.pathname, step.page_path))


def funnel_stmt(
    site_id: str, span: Span, steps: Sequence[Step], minutes: int | None, filters: Node | None
) -> Select:
    """One row: `reached0` … `reached{n-1}`, the distinct visitors reaching each step.

    A chain of CTEs: `e`, the events in scope matching some step, with one flag
    per distinct step condition; `s0`, the starts (per session its earliest
    step-1 event, or with a minute window every step-1 event of the visitor);
    `s{k}`, per start the earliest step-k event strictly after the chain's
    previous instant (and inside the window). A strict `>` join: events at the
    same instant are never consecutive steps.
    """
    ev, ss = events.alias("ev"), sessions.alias("ss")
    source: FromClause = ev
    if filters is not None and "session" in filters.dimensions():
        source = ev.join(ss, ss.c.session_id == ev.c.session_id)
    keys = list(dict.fromkeys((st.event_name, st.page_path) for st in steps))
    flag_of = [keys.index((st.event_name, st.page_path)) for st in steps]
    hits = [_matches(Step("", name, path), ev) for name, path in keys]
    scope = [ev.c.site_id == site_id, ev.c.ts >= span.start, ev.c.ts <= span.end, or_(*hits)]
    if filters is not None:
        scope.append(where(filters, ev, ss))
    part = ev.c.session_id if minutes is None else ev.c.visitor_id
    e = (
        select(part.label("part"), ev.c.visitor_id, ev.c.ts,
               *(hit.label(f"f{i}") for i, hit in enumerate(hits)))
        .select_from(source)
        .where(*scope)
        .cte("e")
    )  # fmt: skip
    first = e.c[f"f{flag_of[0]}"]
    if minutes is None:  # a session's earliest start reaches as far as any later one
        start = func.min(e.c.ts)
        reached = (
            select(e.c.part, e.c.visitor_id, start.label("s"), start.label("t"))
            .where(first)
            .group_by(e.c.part, e.c.visitor_id)
            .cte("s0")
        )
    else:  # a later start may fit a chain into the window that an earlier one cannot
        reached = (
            select(e.c.part, e.c.visitor_id, e.c.ts.label("s"), e.c.ts.label("t"))
            .where(first)
            .distinct()
            .cte("s0")
        )
    chain = [reached]
    for k in range(1, len(steps)):
        prev = chain[-1]
        on = [e.c.part == prev.c.part, e.c.ts > prev.c.t]
        if minutes is not None:
            on.append(e.c.ts <= prev.c.s + literal(timedelta(minutes=minutes)))
        chain.append(
            select(prev.c.part, prev.c.visitor_id, prev.c.s, func.min(e.c.ts).label("t"))
            .select_from(prev.join(e, and_(*on)))
            .where(e.c[f"f{flag_of[k]}"])
            .group_by(prev.c.part, prev.c.visitor_id, prev.c.s)
            .cte(f"s{k}")
        )
    return select(
        *(
            select(func.count(func.distinct(c.c.visitor_id))).scalar_subquery().label(f"reached{k}")
            for k, c in enumerate(chain)
        )
    )
