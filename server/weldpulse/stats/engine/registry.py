"""The one registry of the query's metrics and dimensions: name → kind, column, how '' shows."""

from dataclasses import dataclass

from weldpulse.storage.schema import events, sessions

NONE = "(none)"
TIME_UNITS = ("minute", "hour", "day", "week", "month")


@dataclass(frozen=True)
class Dimension:
    name: str
    kind: str  # "event" (events row), "session" (sessions row) or "time"
    column: str  # in `events` or `sessions`; the unit for time
    empty: str = ""  # what a stored '' shows (and is filtered) as


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str  # "event" or "session": which scope it is computed over
    decimals: int | None  # None: a whole count


_DIMENSIONS = [
    Dimension("page", "event", "pathname"),
    Dimension("hostname", "event", "hostname"),
    Dimension("event_name", "event", "name"),
    Dimension("entry_page", "session", "entry_page", NONE),
    Dimension("exit_page", "session", "exit_page", NONE),
    Dimension("source", "session", "referrer_source"),
    Dimension("referrer", "session", "referrer", NONE),
    Dimension("channel", "session", "channel"),
    *(
        Dimension(f"utm_{p}", "session", f"utm_{p}", NONE)
        for p in ("source", "medium", "campaign", "content", "term")
    ),
    Dimension("country", "session", "country"),
    Dimension("region", "session", "region"),
    Dimension("city", "session", "city"),
    Dimension("device_type", "session", "device_type"),
    Dimension("browser", "session", "browser"),
    Dimension("os", "session", "os"),
    *(Dimension(f"time:{unit}", "time", unit) for unit in TIME_UNITS),
]

_TABLES = {"event": events, "session": sessions}
# Dimensions whose column the stores do not have yet (a parallel branch adds them).
PENDING = tuple(
    d.name for d in _DIMENSIONS if d.kind != "time" and d.column not in _TABLES[d.kind].c
)
# `goal`: the goals of its site an event completes (a value per goal, from the query's goals).
GOAL = Dimension("goal", "event", "goal")
DIMENSIONS = {d.name: d for d in _DIMENSIONS if d.name not in PENDING} | {GOAL.name: GOAL}
PROP_PREFIX = "prop:"
MAX_PROP_KEY = 300

METRICS = {
    m.name: m
    for m in [
        Metric("visitors", "event", None),
        Metric("pageviews", "event", None),
        Metric("events", "event", None),
        Metric("time_on_page", "event", 1),
        Metric("percentage", "event", 4),
        Metric("sessions", "session", None),
        Metric("bounce_rate", "session", 4),
        Metric("avg_duration", "session", 1),
        Metric("views_per_session", "session", 2),
        # Visitors completing the goal / visitors of the same row without goal conditions.
        Metric("conversion_rate", "event", 4),
    ]
}
# Differences in percentage points rather than percent (contract: `change`).
POINTS = ("bounce_rate", "percentage")


def dimension(name: str) -> Dimension | None:
    """The registered dimension, a `prop:<key>` one, or None when unknown."""
    if name.startswith(PROP_PREFIX):
        key = name[len(PROP_PREFIX) :]
        if not key or len(key.encode()) > MAX_PROP_KEY:
            return None
        return Dimension(name, "event", "props", NONE)
    return DIMENSIONS.get(name)
