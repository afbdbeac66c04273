"""The planner's rollup reads give the reference's answers, and the GET presets read rollups.

Every query shape the planner may answer from the day rollups (plan.py) is
asked over whole-day, partial-day and local-day ranges of the query data set,
with days unrolled, partly rolled and fully rolled, through Envoy on each
engine, and must equal the plain-Python reference (query_reference.py), as in
test_query_reference.py (whose random queries rarely draw these shapes).
"""

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from conftest import Stack
from query_data import load
from test_query_reference import Api, check
from weldpulse.api.params import Range
from weldpulse.stats.engine import plan, presets
from weldpulse.storage import rollups

SHAPES: list[dict[str, Any]] = [
    {"metrics": ["visitors", "pageviews", "time_on_page", "percentage"]},
    {"metrics": ["visitors", "pageviews", "time_on_page"], "dimensions": ["time:day"]},
    {"metrics": ["pageviews", "visitors"], "dimensions": ["time:week"]},
    {"metrics": ["visitors", "sessions", "bounce_rate"], "dimensions": ["time:month"]},
    {"metrics": ["visitors", "pageviews", "events", "time_on_page"], "dimensions": ["page"],
     "filters": {"dimension": "event_name", "op": "is", "values": ["pageview"]}},
    {"metrics": ["time_on_page"], "dimensions": ["page"],
     "filters": {"and": [{"dimension": "page", "op": "starts_with", "values": ["/docs", "/B"]},
                         {"dimension": "event_name", "op": "is", "values": ["pageview"]}]}},
    {"metrics": ["events", "visitors", "pageviews"], "dimensions": ["event_name"],
     "filters": {"dimension": "event_name", "op": "is_not", "values": ["pageview"]}},
    {"metrics": ["sessions", "bounce_rate", "avg_duration", "views_per_session"]},
    {"metrics": ["sessions", "avg_duration", "views_per_session"], "dimensions": ["source"]},
    {"metrics": ["bounce_rate", "sessions"], "dimensions": ["time:day", "source"],
     "filters": {"not": {"dimension": "source", "op": "contains", "values": ["goo"],
                         "case_sensitive": False}}},
    {"metrics": ["sessions", "bounce_rate"], "dimensions": ["entry_page"]},
    {"metrics": ["bounce_rate"], "dimensions": ["entry_page"],
     "filters": {"dimension": "entry_page", "op": "is", "values": ["/", "(none)", "/pricing"]}},
    # attr_days ("attrs"): page and session attributes, one or a combo, no filter or filters
    # on those dimensions only; with visitors (multi-day correction) and without.
    {"metrics": ["visitors", "pageviews", "percentage"], "dimensions": ["page"]},
    {"metrics": ["visitors", "sessions", "bounce_rate"], "dimensions": ["utm_campaign"]},
    {"metrics": ["visitors", "events", "avg_duration", "views_per_session"],
     "dimensions": ["referrer"],
     "filters": {"not": {"dimension": "referrer", "op": "contains", "values": ["GOOGLE"],
                         "case_sensitive": False}}},
    {"metrics": ["pageviews", "events", "sessions"], "dimensions": ["browser", "os", "device_type"]},
    {"metrics": ["percentage", "visitors", "pageviews"], "dimensions": ["region", "country"],
     "filters": {"dimension": "country", "op": "is_not", "values": ["US"]}},
    {"metrics": ["visitors", "sessions"], "dimensions": ["channel"]},
    {"metrics": ["sessions", "bounce_rate"], "dimensions": ["time:day", "city"]},
]  # fmt: skip


# A window rolled when partly rolled, one half rolled (7 March), one never until fully rolled.
WINDOWS = (date(2024, 2, 28), date(2026, 3, 7), date(2026, 11, 20))


def ranges() -> list[dict]:
    """Per window: whole days; a partial first and last day; one hour inside a day."""
    out = []
    for first in WINDOWS:
        last = first + timedelta(days=2)
        out += [
            {"start": first.isoformat(), "end": last.isoformat()},
            {"start": f"{first}T05:30:00Z", "end": f"{last}T20:00:00Z"},
        ]  # fmt: skip
    return [*out, {"start": "2026-03-08T10:00:00Z", "end": "2026-03-08T11:00:00Z"}]


@pytest.fixture(scope="module")
def api(stack: Stack) -> Api:
    return Api(stack, load(stack))


def comparison(k: int, j: int) -> dict[str, Any]:
    """By `k`: none, the previous period, or the next window's range to range `j` (rolled when
    j's is not, partly rolled): a comparison's spans read rollups in one statement per part."""
    if k % 3 == 0:
        return {}
    if k % 3 == 1:
        return {"compare": {"mode": "previous_period"}}
    other = ranges()[(j + 2) % 6]
    return {"compare": {"mode": "custom", "date_range": other}}


def run(api: Api) -> None:
    """Each shape over each range, in turn: all sites in UTC (with or without a comparison),
    the UTC site in its own zone, and all sites in Berlin (local days split UTC days) against
    the previous period."""
    site = next(s for s, tz in api.data.sites.items() if tz == "UTC")
    for i, shape in enumerate(SHAPES):
        for j, rng in enumerate(ranges()):
            req = {**shape, "date_range": rng, "limit": 100}
            variant = (i + j) % 3
            timed = any(d.startswith("time:") for d in shape.get("dimensions", []))
            if variant == 0 or (variant == 2 and timed):
                check(api, {**req, "timezone": "UTC", **comparison(i + j // 3, j)})
            elif variant == 1:
                check(api, {**req, "site_id": site})
            else:
                check(api, {**req, "timezone": "Europe/Berlin",
                            "compare": {"mode": "previous_period"}})  # fmt: skip


def test_rollup_shapes_equal_reference_unrolled(api: Api) -> None:
    run(api)


def test_rollup_shapes_equal_reference_partly_rolled(api: Api) -> None:
    rollups.roll_pending(api.stack.events, date(2026, 3, 8))
    run(api)


def test_rollup_shapes_equal_reference_fully_rolled(api: Api) -> None:
    rollups.roll_pending(api.stack.events, date(2026, 11, 30))
    run(api)


LOCAL_SHAPES: list[dict[str, Any]] = [
    {"metrics": ["visitors", "pageviews"], "dimensions": ["time:day"]},
    {"metrics": ["percentage", "visitors"], "dimensions": ["time:week"]},
    {"metrics": ["pageviews", "visitors"], "dimensions": ["time:month"]},
]
# Local midnight late in the UTC day (Berlin), early (New York), half-hour (Kolkata, Lord Howe
# with its half-hour DST); windows with their DST changes, 29 Feb, a month's and a week's start.
LOCAL_CASES = [
    ("Europe/Berlin", date(2026, 10, 24)), ("Europe/Berlin", date(2026, 3, 28)),
    ("America/New_York", date(2026, 3, 7)), ("America/New_York", date(2026, 10, 31)),
    ("Asia/Kolkata", date(2024, 2, 28)), ("Australia/Lord_Howe", date(2026, 10, 3)),
]  # fmt: skip


def test_local_day_buckets_equal_reference(api: Api) -> None:
    """Local days, weeks and months cut UTC days (plan.LocalDays): whole days, partial ends and
    DST days, against the previous period, must equal the reference."""
    rollups.roll_pending(api.stack.events, date(2026, 11, 30))  # read from local_slots
    for i, (zone, first) in enumerate(LOCAL_CASES):
        last = first + timedelta(days=2)
        for j, shape in enumerate(LOCAL_SHAPES):
            mid = first + timedelta(days=1)
            rng = [
                {"start": first.isoformat(), "end": last.isoformat()},
                {"start": f"{first}T07:15:00Z", "end": f"{last}T21:40:00Z"},
                # Ends on slot edges: the end days' slots are read, one UTC day cut twice is not.
                {"start": f"{first}T13:45:00Z", "end": f"{last}T02:29:59.999999Z"},
                {"start": f"{mid}T06:00:00Z", "end": f"{mid}T17:59:59.999999Z"},
            ][(i + j) % 4]
            req = {**shape, "date_range": rng, "timezone": zone, "limit": 100}
            check(api, req if j else {**req, "compare": {"mode": "previous_period"}})


def test_get_routes_that_are_queries_are_planned_onto_the_rollups() -> None:
    """stats, pages and events ask engine queries; at 10M events their speed rests on the
    planner reading rolled days from the rollups, for any range of UTC instants."""
    rng = Range(datetime(2026, 10, 31, 22), datetime(2026, 11, 30, 23, 59, 59))
    sites = ("a", "b")
    planned = {}
    for name, q in [("stats", presets.stats_query(sites, rng)),
                    ("pages", presets.pages_query(sites, rng)),
                    ("times", presets.times_query(sites, rng, ["/", "/a"])),
                    ("entries", presets.entries_query(sites, rng, ["/", "/a"])),
                    ("events", presets.events_query(sites, rng))]:  # fmt: skip
        args = (q.metrics, q.dimensions, q.filters, q.zone, rng)
        planned[name] = (plan.event_rollup(*args), plan.session_rollup(*args))
    assert planned == {
        "stats": ("totals", "sources"),
        "pages": ("pages", None),
        "times": ("pages", None),
        "entries": (None, "entries"),
        "events": ("custom", None),
    }
