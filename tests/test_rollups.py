"""Rollup-backed answers equal the definitions computed from the raw events.

stats, geo, devices and day/week/month timeseries read whole days from the
visitor_days rollup and partial days from raw events; pages and referrers
read rolled days from page_days/source_days, the query engine's page and
session-attribute breakdowns from attr_days; time on page reads the stored
previous-pageview links. Here all are checked against figures computed
directly from the events and sessions (in Python, and with plain SQL over
the raw tables), over ranges that are day-aligned, partial at either end
and inside one day, with a session crossing midnight, imported visitor ids
that keep their id (and change their attributes) across days and sites,
before and after days are rolled, and after writes into rolled days.
"""

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from conftest import Stack
from sqlalchemy import text
from weldpulse.domain import Event
from weldpulse.storage import accounts, rollups, writer

DAY0 = datetime(2024, 3, 1)
PATHS = ["/", "/a", "/b", "/c", "/d"]
PLACES = [("US", "Ohio"), ("DE", "Bavaria"), ("FR", "Brittany")]
AGENTS = [("desktop", "Chrome", "Linux"), ("mobile", "Safari", "iOS")]
RANGES = [
    ("2024-03-01", "2024-03-03"),  # whole days only
    ("2024-03-02", "2024-03-02"),
    ("2024-03-01T12:00:00Z", "2024-03-03T06:30:00Z"),  # partial days at both ends
    ("2024-03-01T00:00:00Z", "2024-03-02T23:59:59Z"),  # last day one second short
    ("2024-03-02T08:00:00Z", "2024-03-02T09:00:00Z"),  # inside one day
    ("2024-02-29", "2024-03-05"),
]


def _events(site: str, other: str) -> list[Event]:
    rng = random.Random(11)
    out = []

    def add(visitor: int, ts: datetime, name: str = "pageview", place: int = 0, agent: int = 0,
            on: str = site):  # fmt: skip
        (country, region), (device, browser, os_name) = PLACES[place], AGENTS[agent]
        out.append(Event(site_id=on, ts=ts, name=name, visitor_id=visitor,
                         pathname=rng.choice(PATHS), country=country, region=region,
                         device_type=device, browser=browser, os=os_name))  # fmt: skip

    for visitor in range(1, 120):  # daily ids: one day each, a few sessions
        day = DAY0 + timedelta(days=visitor % 3)
        place, agent = visitor % 3, visitor % 2
        for _ in range(rng.randint(1, 3)):
            ts = day + timedelta(seconds=rng.randint(0, 86_000))
            for _ in range(rng.randint(1, 4)):
                add(visitor, ts, "signup" if rng.random() < 0.1 else "pageview", place, agent)
                ts += timedelta(seconds=rng.randint(5, 1700))
    # A session crossing midnight keeps its id into the next day.
    for minute in (-10, -1, 5, 20):
        add(500, DAY0 + timedelta(days=1, minutes=minute), place=1)
    # Imported events with a stable id on every day, from changing places and devices.
    for d in range(3):
        for h in (1, 13, 22):
            add(600, DAY0 + timedelta(days=d, hours=h), place=d, agent=h % 2)
    # Custom events of the imported id on two days and both sites.
    for d, on in ((0, site), (2, site), (2, other)):
        add(600, DAY0 + timedelta(days=d, hours=14), "download", on=on)
    # A second site: the same imported id, and a daily id equal to one of the first site's.
    for visitor, d, h in ((600, 0, 3), (600, 2, 4), (5, 2, 9), (5, 2, 10), (701, 1, 8)):
        add(visitor, DAY0 + timedelta(days=d, hours=h), on=other)
    return out


@pytest.fixture(scope="module")
def rolled(stack: Stack) -> tuple[str, list[Event]]:
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, "Rollups", "pro")
        site = accounts.create_site(conn, project, "rollups.example")["id"]
        other = accounts.create_site(conn, project, "other.rollups.example")["id"]
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    events = _events(site, other)
    ordered = sorted(events, key=lambda e: e.ts)
    for lo in range(0, len(ordered), 97):  # many batches: several rollup rows per visitor-day
        writer.record(stack.events, ordered[lo : lo + 97])
    return key, events


def _api(stack: Stack, path: str, key: str, **params: Any) -> list[dict]:
    resp = stack.http.get(path, params=params, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def _instant(value: str, end: bool) -> datetime:
    if len(value) == 10:
        return datetime.fromisoformat(value) + (
            timedelta(days=1, microseconds=-1) if end else timedelta()
        )
    return datetime.fromisoformat(value.removesuffix("Z"))


def _sites(events: list[Event]) -> dict[str, str]:
    site = events[0].site_id
    return {"site": site, "other": next(e.site_id for e in events if e.site_id != site)}


def _grouped(events: list[Event], key: Any) -> dict[Any, tuple[int, int]]:
    visitors: dict[Any, set[int]] = defaultdict(set)
    views: dict[Any, int] = defaultdict(int)
    for e in events:
        visitors[key(e)].add(e.visitor_id)
        views[key(e)] += e.name == "pageview"
    return {k: (len(v), views[k]) for k, v in visitors.items()}


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_visitor_metrics_equal_raw_events(
    stack: Stack, rolled: tuple, start: str, end: str
) -> None:
    key, events = rolled
    _check_visitor_metrics(stack, key, events, start, end)


SESSIONS = """
    SELECT started_at, duration, CASE WHEN pageviews = 1 AND events = 1 THEN 1 ELSE 0 END AS bounce
    FROM sessions WHERE site_id IN (:site, :other) AND started_at >= :lo AND started_at <= :hi"""


def _check_visitor_metrics(
    stack: Stack, key: str, events: list[Event], start: str, end: str
) -> None:
    """stats, geo, devices and timeseries over one range equal the definitions on raw rows."""
    lo, hi = _instant(start, False), _instant(end, True)
    inside = [e for e in events if lo <= e.ts <= hi]
    params = {"start": start, "end": end, "limit": 1000}
    with stack.events.connect() as conn:
        started = conn.execute(text(SESSIONS), {**_sites(events), "lo": lo, "hi": hi}).all()
    total = _grouped(inside, lambda e: ())
    stats = _api(stack, "/v1/stats", key, start=start, end=end)[0]
    assert (stats["visitors"], stats["pageviews"]) == total.get((), (0, 0))
    n = len(started)
    assert (stats["sessions"], stats["bounce_rate"], stats["avg_duration"]) == (
        n,
        _rate(sum(r.bounce for r in started), n),
        round(sum(r.duration for r in started) / n, 1) if n else 0.0,
    )
    geo = _api(stack, "/v1/geo", key, **params)
    assert {(r["country"], r["region"]): (r["visitors"], r["pageviews"]) for r in geo} == _grouped(
        inside, lambda e: (e.country, e.region)
    )
    devices = _api(stack, "/v1/devices", key, **params)
    assert {
        (r["device_type"], r["browser"], r["os"]): (r["visitors"], r["pageviews"]) for r in devices
    } == _grouped(inside, lambda e: (e.device_type, e.browser, e.os))
    for interval, width in (("1 day", 1), ("2 days", 2)):
        series = _api(stack, "/v1/timeseries", key, interval=interval, start=start, end=end)
        got = {r["t"]: (r["visitors"], r["pageviews"], r["sessions"]) for r in series
               if r["visitors"] or r["sessions"]}  # fmt: skip
        epoch_day = lambda ts, w=width: (ts - datetime(1970, 1, 1)).days // w * w  # noqa: E731
        views = _grouped(inside, lambda e, f=epoch_day: f(e.ts))
        counts: dict[int, int] = defaultdict(int)
        for r in started:
            counts[epoch_day(r.started_at)] += 1
        assert got == {
            (datetime(1970, 1, 1) + timedelta(days=d)).strftime("%Y-%m-%dT%H:%M:%S"): (
                *views.get(d, (0, 0)),
                counts.get(d, 0),
            )
            for d in set(views) | set(counts)
        }


TIME_ON_PAGE = """
    SELECT pathname, avg(extract(epoch FROM next_ts - ts)) AS seconds
    FROM (SELECT pathname, ts, lead(ts) OVER (PARTITION BY session_id ORDER BY ts) AS next_ts
          FROM events WHERE site_id IN (:site, :other) AND name = 'pageview') AS v
    WHERE ts >= :lo AND ts <= :hi AND next_ts IS NOT NULL GROUP BY pathname"""


@pytest.mark.parametrize(("start", "end"), RANGES)
def test_time_on_page_equals_window_over_raw_events(
    stack: Stack, rolled: tuple, start: str, end: str
) -> None:
    key, events = rolled
    lo, hi = _instant(start, False), _instant(end, True)
    with stack.events.connect() as conn:
        expected = {
            r.pathname: round(float(r.seconds), 1)
            for r in conn.execute(text(TIME_ON_PAGE), {**_sites(events), "lo": lo, "hi": hi})
        }
    pages = _api(stack, "/v1/pages", key, start=start, end=end, limit=1000)
    assert {r["pathname"]: r["avg_duration"] for r in pages} == {
        p["pathname"]: expected.get(p["pathname"], 0.0) for p in pages
    }
    assert set(expected) <= {r["pathname"] for r in pages}


def test_compaction_keeps_answers_and_leaves_one_row_per_visitor_day(
    stack: Stack, rolled: tuple
) -> None:
    key, events = rolled
    params = {"start": "2024-03-01", "end": "2024-03-03"}

    def answers() -> list[list[dict]]:
        return [_api(stack, f"/v1/{p}", key, **params) for p in ("stats", "geo", "devices")]

    before = answers()
    count = text("SELECT count(*) FROM visitor_days WHERE site_id IN (:site, :other)")
    with stack.events.connect() as conn:
        rows_before = conn.execute(count, _sites(events)).scalar_one()
    for day in (1, 2, 3):
        writer.compact_visitor_days(stack.events, DAY0.date().replace(day=day))
    keys = {(e.site_id, e.ts.date(), e.visitor_id, e.country, e.region, e.device_type, e.browser,
             e.os) for e in events}  # fmt: skip
    with stack.events.connect() as conn:
        assert conn.execute(count, _sites(events)).scalar_one() == len(keys) < rows_before
    assert answers() == before


ENTRIES = """
    SELECT entry_page, count(*) AS n,
           sum(CASE WHEN pageviews = 1 AND events = 1 THEN 1 ELSE 0 END) AS bounces
    FROM sessions WHERE site_id IN (:site, :other) AND started_at >= :lo AND started_at <= :hi
    GROUP BY entry_page"""
SOURCES = """
    SELECT referrer_source, count(DISTINCT visitor_id) AS visitors, sum(pageviews) AS views,
           count(*) AS n, sum(CASE WHEN pageviews = 1 AND events = 1 THEN 1 ELSE 0 END) AS bounces
    FROM sessions WHERE site_id IN (:site, :other) AND started_at >= :lo AND started_at <= :hi
    GROUP BY referrer_source"""


# The query engine's figures per session attribute (attr_days): the events in range under their
# session's place, and the sessions starting in range.
PLACE_EVENTS = """
    SELECT s.country, s.region, count(DISTINCT e.visitor_id) AS visitors,
           sum(CASE WHEN e.name = 'pageview' THEN 1 ELSE 0 END) AS views
    FROM events e JOIN sessions s ON s.session_id = e.session_id
    WHERE e.site_id IN (:site, :other) AND e.ts >= :lo AND e.ts <= :hi GROUP BY 1, 2"""
PLACE_SESSIONS = """
    SELECT country, region, count(*) AS n,
           sum(CASE WHEN pageviews = 1 AND events = 1 THEN 1 ELSE 0 END) AS bounces
    FROM sessions WHERE site_id IN (:site, :other) AND started_at >= :lo AND started_at <= :hi
    GROUP BY 1, 2"""


def _check_queries(stack: Stack, key: str, events: list[Event], start: str, end: str) -> None:
    """POST /v1/query's page and session-place breakdowns (attr_days) equal raw rows."""
    lo, hi = _instant(start, False), _instant(end, True)
    args = {**_sites(events), "lo": lo, "hi": hi}
    with stack.events.connect() as conn:
        places: dict[tuple, list] = {(r.country, r.region): [r.visitors, r.views, 0, 0.0]
                                     for r in conn.execute(text(PLACE_EVENTS), args)}  # fmt: skip
        for r in conn.execute(text(PLACE_SESSIONS), args):
            places.setdefault((r.country, r.region), [0, 0, 0, 0.0])[2:] = [
                r.n, _rate(r.bounces, r.n)
            ]  # fmt: skip
    inside = [e for e in events if lo <= e.ts <= hi]
    pages = {(path,): [v, n, len([e for e in inside if e.pathname == path])]
             for (path,), (v, n) in _grouped(inside, lambda e: (e.pathname,)).items()}  # fmt: skip
    headers = {"Authorization": f"Bearer {key}"}
    for metrics, dims, expected in (
        (["visitors", "pageviews", "sessions", "bounce_rate"], ["region", "country"],
         {(rg, c): v for (c, rg), v in places.items()}),
        (["visitors", "pageviews", "events"], ["page"], pages),
    ):  # fmt: skip
        body = {"metrics": metrics, "dimensions": dims, "limit": 1000,
                "date_range": {"start": start, "end": end}}  # fmt: skip
        resp = stack.http.post("/v1/query", json=body, headers=headers)
        assert resp.status_code == 200, resp.text
        got = {tuple(r["dimensions"]): r["metrics"] for r in resp.json().get("results", [])}
        assert got == expected, (dims, start, end)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _check_all(stack: Stack, events: list[Event]) -> None:
    """Every ranged endpoint over every range equals the definitions on raw rows."""
    with stack.metadata.begin() as conn:  # 60 calls a check: a key each, clear of the rate limit
        project = conn.execute(
            text("SELECT project_id FROM sites WHERE id = :id"), {"id": events[0].site_id}
        ).scalar_one()
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    for start, end in RANGES:
        _check_visitor_metrics(stack, key, events, start, end)
        _check_queries(stack, key, events, start, end)
        lo, hi = _instant(start, False), _instant(end, True)
        custom = [e for e in events if lo <= e.ts <= hi and e.name != "pageview"]
        by_name = {name: (len([e for e in custom if e.name == name]), visitors)
                   for (name,), (visitors, _) in _grouped(custom, lambda e: (e.name,)).items()}  # fmt: skip
        got_events = _api(stack, "/v1/events", key, start=start, end=end)
        assert {r["event_name"]: (r["total"], r["unique_visitors"]) for r in got_events} == by_name
        args = {**_sites(events), "lo": lo, "hi": hi}
        with stack.events.connect() as conn:
            times = {r.pathname: round(float(r.seconds), 1)
                     for r in conn.execute(text(TIME_ON_PAGE), args)}  # fmt: skip
            entries = {
                r.entry_page: _rate(r.bounces, r.n) for r in conn.execute(text(ENTRIES), args)
            }
            sources = {r.referrer_source: (r.visitors, r.views, _rate(r.bounces, r.n))
                       for r in conn.execute(text(SOURCES), args)}  # fmt: skip
        views = [e for e in events if lo <= e.ts <= hi and e.name == "pageview"]
        expected = {path: (v, n, entries.get(path, 0.0), times.get(path, 0.0))
                    for path, (v, n) in _grouped(views, lambda e: e.pathname).items()}  # fmt: skip
        pages = _api(stack, "/v1/pages", key, start=start, end=end, limit=1000)
        got_pages = {r["pathname"]: (r["visitors"], r["pageviews"], r["bounce_rate"],
                                     r["avg_duration"]) for r in pages}  # fmt: skip
        assert got_pages == expected, (start, end)
        referrers = _api(stack, "/v1/referrers", key, start=start, end=end, limit=1000)
        got_sources = {r["referrer_source"]: (r["visitors"], r["pageviews"], r["bounce_rate"])
                       for r in referrers}  # fmt: skip
        assert got_sources == sources, (start, end)


def _marked(stack: Stack, events: list[Event]) -> dict[tuple[str, date], datetime]:
    """When each (site, day) of the module's sites was last rolled."""
    query = text("SELECT site_id, day, rolled_at FROM rolled_days WHERE site_id IN (:site, :other)")
    with stack.events.connect() as conn:
        return {(r.site_id, r.day): r.rolled_at for r in conn.execute(query, _sites(events))}


def test_every_endpoint_equals_definitions_before_and_after_rolling(
    stack: Stack, rolled: tuple
) -> None:
    _, events = rolled
    site, other = _sites(events).values()
    _check_all(stack, events)  # whatever the collector rolled so far
    rollups.roll_pending(stack.events, date(2024, 3, 2))  # up to 2024-03-01 only
    assert {(site, date(2024, 3, 1)), (other, date(2024, 3, 1))} <= set(_marked(stack, events))
    _check_all(stack, events)  # rolled 03-01, raw 03-02 and 03-03
    rollups.roll_pending(stack.events, date(2024, 3, 10))
    assert set(_marked(stack, events)) == {(e.site_id, e.ts.date()) for e in events}
    _check_all(stack, events)


def test_a_write_into_rolled_days_unmarks_them_and_answers_stay_exact(
    stack: Stack, rolled: tuple
) -> None:
    _, events = rolled
    site = _sites(events)["site"]
    rollups.roll_pending(stack.events, date(2024, 3, 10))
    late = [
        # Continues visitor 500's session that started on 03-01 and crossed midnight.
        Event(site_id=site, ts=datetime(2024, 3, 2, 0, 45), name="pageview", visitor_id=500,
              pathname="/late", country="DE", region="Bavaria"),
        Event(site_id=site, ts=datetime(2024, 3, 2, 15, 0), name="pageview", visitor_id=900,
              pathname="/a", referrer_source="Google"),
    ]  # fmt: skip
    before = _marked(stack, events)
    written_at = datetime.now(UTC).replace(tzinfo=None)
    writer.record(stack.events, late)
    events.extend(late)  # the module's later tests see them too
    # The continued session's start day and the new events' day lose their marks;
    # the collector may have rolled them again since, but not from older rows.
    after = _marked(stack, events)
    touched = {(site, date(2024, 3, 1)), (site, date(2024, 3, 2))}
    assert all(after[k] > written_at for k in touched & set(after))
    assert {k: v for k, v in after.items() if k not in touched} == {
        k: v for k, v in before.items() if k not in touched
    }
    _check_all(stack, events)
    rollups.roll_pending(stack.events, date(2024, 3, 10))
    assert set(_marked(stack, events)) == {(e.site_id, e.ts.date()) for e in events}
    _check_all(stack, events)
