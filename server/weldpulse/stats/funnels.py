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
    Integer,
    Select,
    and_,
    case,
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
    return and_(e.c.name == PAGEVIEW, path_condition(e.c.pathname, step.page_path))


def funnel_stmt(
    site_id: str, span: Span, steps: Sequence[Step], minutes: int | None, filters: Node | None
) -> Select:
    """One row: `reached0` … `reached{n-1}`, the distinct visitors reaching each step."""
    e, s = events.alias("e"), sessions.alias("s")
    source: FromClause = e
    if filters is not None and "session" in filters.dimensions():
        source = e.join(s, s.c.session_id == e.c.session_id)
    part = e.c.session_id if minutes is None else e.c.visitor_id
    # One flag per distinct step condition (repeated steps share theirs).
    conds: list[Step] = []
    for step in steps:
        if (step.event_name, step.page_path) not in [(c.event_name, c.page_path) for c in conds]:
            conds.append(step)
    flag_of = [
        next(i for i, c in enumerate(conds) if (c.event_name, c.page_path) ==
             (st.event_name, st.page_path)) for st in steps
    ]  # fmt: skip
    hits = [_matches(c, e) for c in conds]
    scope = [e.c.site_id == site_id, e.c.ts >= span.start, e.c.ts <= span.end, or_(*hits)]
    if filters is not None:
        scope.append(where(filters, e, s))
    # One row per (partition, instant): events at the same instant are never consecutive steps.
    h = (
        select(
            part.label("part"),
            e.c.visitor_id,
            e.c.ts,
            *(func.max(case((hit, 1), else_=0)).label(f"f{i}") for i, hit in enumerate(hits)),
        )
        .select_from(source)
        .where(*scope)
        .group_by(part, e.c.visitor_id, e.c.ts)
        .subquery("h")
    )
    first = h.c[f"f{flag_of[0]}"] == 1
    nexts = select(
        h.c.part,
        h.c.visitor_id,
        h.c.ts,
        first.label("start"),
        func.min(case((first, h.c.ts))).over(partition_by=h.c.part).label("first_start"),
        # n{k}: the earliest instant strictly after this row's at which step k matches.
        *(
            func.min(case((h.c[f"f{flag_of[k]}"] == 1, h.c.ts)))
            .over(partition_by=h.c.part, order_by=h.c.ts, rows=(1, None))
            .label(f"n{k}")
            for k in range(1, len(steps))
        ),
    ).cte("n")  # one CTE: every step's join reads it, neither engine recomputes it
    a0 = nexts.alias("a0")
    times = [a0.c.ts, a0.c.n1]
    chain: FromClause = a0
    for k in range(2, len(steps)):
        ak = nexts.alias(f"a{k - 1}")
        chain = chain.outerjoin(ak, and_(ak.c.part == a0.c.part, ak.c.ts == times[-1]))
        times.append(ak.c[f"n{k}"])
    starts: list[ColumnElement[bool]] = [a0.c.start]
    inside: list[ColumnElement[bool]]
    if minutes is None:  # the session's earliest start reaches as far as any
        starts.append(a0.c.ts == a0.c.first_start)
        inside = [t.is_not(None) for t in times[1:]]
    else:
        deadline = a0.c.ts + literal(timedelta(minutes=minutes))
        inside = [t <= deadline for t in times[1:]]
    # The chain's instants increase, so the steps inside the window are a prefix.
    level = literal(1, Integer) + sum(
        (case((ok, 1), else_=0) for ok in inside), literal(0, Integer)
    )
    per_start = (
        select(a0.c.visitor_id, level.label("level"))
        .select_from(chain)
        .where(*starts)
        .subquery("per_start")
    )
    best = (
        select(per_start.c.visitor_id, func.max(per_start.c.level).label("level"))
        .group_by(per_start.c.visitor_id)
        .subquery("best")
    )
    return select(
        *(
            func.count().filter(best.c.level >= k + 1).label(f"reached{k}")
            for k in range(len(steps))
        )
    ).select_from(best)
