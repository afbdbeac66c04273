"""Sites carry an IANA time zone, and /v1/timeseries buckets on any zone's wall clock.

Through Envoy on both engines: the zone on `weldpulse sites create|update`
and in GET /v1/sites, clear errors for names that are no IANA key, and
timeseries buckets around DST changes (Berlin's skipped and repeated hour,
23- and 25-hour days, Kolkata's +05:30, Lord Howe's 30-minute DST), then
random events against a plain zoneinfo reference at hour/6-hour/day/week/
month intervals, with days unrolled and rolled.
"""

import secrets
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from alembic import command
from alembic.config import Config
from conftest import Stack, _postgres_database
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from test_cli import cli, cli_json
from weldpulse.api.params import Interval, Range, bucket_start, buckets
from weldpulse.domain import Event
from weldpulse.errors import BadRequest
from weldpulse.storage import accounts, engines, migrate, rollups, writer
from weldpulse.storage.schema import sessions
from weldpulse.timezones import offsets, parse_timezone
from weldpulse_client import Client

BAD_NAMES = ["Mars/Olympus", "europe/berlin", "/etc/localtime", "../../etc/passwd",
             "Europe/../Europe/Berlin", "posixrules", "", "X" * 200]  # fmt: skip


def test_site_zone_on_create_update_and_in_sites(stack: Stack) -> None:
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    project = cli_json("projects", "create", "--name", "TZ", env=env)["id"]
    berlin = cli_json("sites", "create", "--project", project, "--domain", "b.example",
                      "--timezone", "Europe/Berlin", env=env)  # fmt: skip
    plain = cli_json("sites", "create", "--project", project, "--domain", "u.example", env=env)
    assert (berlin["timezone"], plain["timezone"]) == ("Europe/Berlin", "UTC")
    changed = cli_json("sites", "update", plain["id"], "--timezone", "Asia/Kolkata", env=env)
    assert {k: v for k, v in changed.items() if k != "timezone"} == {
        k: v for k, v in plain.items() if k != "timezone"
    }
    assert changed["timezone"] == "Asia/Kolkata"
    renamed = cli_json("sites", "update", berlin["id"], "--name", "Berlin", env=env)
    assert (renamed["name"], renamed["timezone"]) == ("Berlin", "Europe/Berlin")
    with stack.metadata.begin() as conn:
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    listed = stack.http.get("/v1/sites", headers={"Authorization": f"Bearer {key}"}).json()
    assert [(s["id"], s["name"], s["timezone"]) for s in listed["data"]] == [
        (berlin["id"], "Berlin", "Europe/Berlin"),
        (plain["id"], "u.example", "Asia/Kolkata"),
    ]
    # Sites made before time zones existed (the seed's) show UTC.
    assert {s["timezone"] for s in stack.get("/v1/sites").json()["data"]} == {"UTC"}


def test_bad_zone_names_are_clear_errors(stack: Stack) -> None:
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, "TZ bad", "pro")
        site = accounts.create_site(conn, project, "y.example")["id"]
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    for name in ("Mars/Olympus", "/etc/localtime"):  # the CLI prints the API's words
        done = cli("sites", "create", "--project", project, "--domain", "x.example",
                   "--timezone", name, env=env)  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert f"timezone: unknown time zone {name!r}, expected an IANA name" in done.stderr
    done = cli("sites", "update", site, "--timezone", "europe/berlin", env=env)
    assert done.returncode == 1 and "unknown time zone 'europe/berlin'" in done.stderr
    for name in BAD_NAMES:
        with stack.metadata.begin() as conn, pytest.raises(ValueError, match=r"^timezone: "):
            accounts.create_site(conn, project, "x.example", timezone=name)
        with stack.metadata.begin() as conn, pytest.raises(ValueError, match=r"^timezone: "):
            accounts.update_site(conn, site, name="renamed", timezone=name)
        resp = stack.get("/v1/timeseries", start="2024-01-15", end="2024-01-15", timezone=name)
        if name == "":  # absent: UTC
            assert resp.status_code == 200
            continue
        assert resp.status_code == 400, name
        body = resp.json()
        assert body["code"] == "BAD_REQUEST" and body["error"].startswith("timezone: ")
        assert "IANA name like Europe/Berlin" in body["error"]
    with stack.metadata.connect() as conn:  # neither a site nor a change was stored
        rows = conn.execute(accounts.project_sites_stmt(project)).all()
    assert [(r.domain, r.name, r.timezone) for r in rows] == [("y.example", "y.example", "UTC")]


def test_cli_update_errors(stack: Stack) -> None:
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    done = cli("sites", "update", "no-such-site", "--timezone", "UTC", env=env)
    assert done.returncode == 1 and "no site no-such-site" in done.stderr
    done = cli("sites", "update", "no-such-site", env=env)
    assert done.returncode == 1 and "nothing to change" in done.stderr


def _tenant(stack: Stack, events: list[tuple[datetime, int]]) -> tuple[str, str]:
    """A new project whose one site has a pageview per (instant, visitor); its site and key."""
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, f"tz-{secrets.token_hex(3)}", "pro")
        site = accounts.create_site(conn, project, "tz.example")["id"]
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    writer.record(stack.events, [Event(site, ts, "pageview", v, "/") for ts, v in events])
    return site, key


def _series(stack: Stack, key: str, **params: Any) -> list[tuple[str, int, int, int]]:
    resp = stack.http.get(
        "/v1/timeseries", params=params, headers={"Authorization": f"Bearer {key}"}
    )
    assert resp.status_code == 200, resp.text
    return [(r["t"], r["visitors"], r["pageviews"], r["sessions"]) for r in resp.json()["data"]]


def _roll(stack: Stack, site: str, first: date, last: date) -> None:
    day = first
    while day <= last:
        rollups.roll_day(stack.events, site, day)
        day += timedelta(days=1)


def _quarter_hours(first: datetime, days: int) -> list[tuple[datetime, int]]:
    """A pageview every 15 minutes, each by a new visitor (so each is also a new session)."""
    return [(first + timedelta(minutes=15 * i), i + 1) for i in range(days * 96)]


@pytest.mark.parametrize("rolled", [False, True])
def test_berlin_dst_hours_and_days(stack: Stack, rolled: bool) -> None:
    spring = _quarter_hours(datetime(2024, 3, 30), 3)
    autumn = _quarter_hours(datetime(2024, 10, 26), 3)
    site, key = _tenant(stack, spring + [(ts, v + 10_000) for ts, v in autumn])
    if rolled:
        _roll(stack, site, date(2024, 3, 30), date(2024, 4, 1))
        _roll(stack, site, date(2024, 10, 26), date(2024, 10, 28))

    # 31 March: 02:00 is skipped; 01:59 CET is followed by 03:00 CEST (01:00 UTC).
    hours = _series(stack, key, start="2024-03-30T23:00:00Z", end="2024-03-31T02:59:59Z",
                    interval="1 hour", timezone="Europe/Berlin")  # fmt: skip
    assert hours == [
        ("2024-03-31T00:00:00", 4, 4, 4),
        ("2024-03-31T01:00:00", 4, 4, 4),
        ("2024-03-31T03:00:00", 4, 4, 4),
        ("2024-03-31T04:00:00", 4, 4, 4),
    ]
    # 27 October: 02:00-02:59 happens twice (00:00 and 01:00 UTC): one bucket, both hours.
    hours = _series(stack, key, start="2024-10-26T23:00:00Z", end="2024-10-27T02:59:59Z",
                    interval="1 hour", timezone="Europe/Berlin")  # fmt: skip
    assert hours == [
        ("2024-10-27T01:00:00", 4, 4, 4),
        ("2024-10-27T02:00:00", 8, 8, 8),
        ("2024-10-27T03:00:00", 4, 4, 4),
    ]
    # Local days of 23 and 25 hours; the range's instants cut the first and last day.
    spring_days = _series(stack, key, start="2024-03-30", end="2024-04-01",
                          interval="1 day", timezone="Europe/Berlin")  # fmt: skip
    assert spring_days == [
        ("2024-03-30T00:00:00", 92, 92, 92),  # from 01:00 local (00:00 UTC)
        ("2024-03-31T00:00:00", 92, 92, 92),  # 23 hours
        ("2024-04-01T00:00:00", 96, 96, 96),
        ("2024-04-02T00:00:00", 8, 8, 8),  # to 01:59 local
    ]
    autumn_days = _series(stack, key, start="2024-10-26", end="2024-10-28",
                          interval="1 day", timezone="Europe/Berlin")  # fmt: skip
    assert autumn_days == [
        ("2024-10-26T00:00:00", 88, 88, 88),  # from 02:00 local (CEST)
        ("2024-10-27T00:00:00", 100, 100, 100),  # 25 hours
        ("2024-10-28T00:00:00", 96, 96, 96),
        ("2024-10-29T00:00:00", 4, 4, 4),
    ]
    # The Python client over gRPC gives the same rows.
    with Client(f"127.0.0.1:{stack.grpc_port}", key) as client:
        rows = client.get_timeseries("2024-10-26", "2024-10-28", interval="1 day",
                                     timezone="Europe/Berlin")  # fmt: skip
    assert [(r.t, r.visitors, r.pageviews, r.sessions) for r in rows] == autumn_days
    # Without a zone, the same days are UTC's 24 hours, as before (rollups where rolled).
    assert _series(stack, key, start="2024-03-30", end="2024-04-01", interval="1 day") == [
        (f"2024-{d}T00:00:00", 96, 96, 96) for d in ("03-30", "03-31", "04-01")
    ]


@pytest.mark.parametrize(
    ("zone", "first", "expected"),
    [
        # +05:30 all year: local days start at 18:30 UTC.
        ("Asia/Kolkata", datetime(2024, 3, 30), [("03-30", 74), ("03-31", 96), ("04-01", 96),
                                                 ("04-02", 22)]),
        # +11 to +10:30 at 02:00 local on 7 April: a day of 24.5 hours.
        ("Australia/Lord_Howe", datetime(2024, 4, 5), [("04-05", 52), ("04-06", 96),
                                                       ("04-07", 98), ("04-08", 42)]),
        # +10:30 to +11 at 02:00 local on 6 October: a day of 23.5 hours.
        ("Australia/Lord_Howe", datetime(2024, 10, 4), [("10-04", 54), ("10-05", 96),
                                                        ("10-06", 94), ("10-07", 44)]),
    ],
)  # fmt: skip
def test_half_hour_zones_days(
    stack: Stack, zone: str, first: datetime, expected: list[tuple[str, int]]
) -> None:
    _, key = _tenant(stack, _quarter_hours(first, 3))
    last = first + timedelta(days=2, hours=23, minutes=59, seconds=59)
    days = _series(stack, key, start=f"{first.isoformat()}Z", end=f"{last.isoformat()}Z",
                   interval="1 day", timezone=zone)  # fmt: skip
    assert days == [(f"2024-{d}T00:00:00", n, n, n) for d, n in expected]


# The reference: plain zoneinfo over the raw events, bucket labels by calendar rules.
INTERVALS = {
    "1 hour": lambda t: t.replace(minute=0),
    "6 hours": lambda t: t.replace(hour=t.hour // 6 * 6, minute=0),
    "1 day": lambda t: t.replace(hour=0, minute=0),
    "1 week": lambda t: (t - timedelta(days=t.weekday())).replace(hour=0, minute=0),
    "1 month": lambda t: t.replace(day=1, hour=0, minute=0),
}
# Windows of 12 days around DST changes (and month and week ends); one without any.
WINDOWS = [datetime(2024, 3, 24), datetime(2024, 10, 24), datetime(2024, 3, 28),
           datetime(2024, 10, 1), datetime(2024, 3, 5), datetime(2024, 1, 25)]  # fmt: skip
ZONES = ["Europe/Berlin", "Australia/Lord_Howe", "Asia/Kolkata", "America/St_Johns",
         "Pacific/Chatham", "America/New_York", "Europe/London", "UTC"]  # fmt: skip
WINDOW_MINUTES = 12 * 24 * 60


def _local(instant: datetime, zone: ZoneInfo) -> datetime:
    """Wall-clock time to the minute (every bucket is whole minutes)."""
    local = instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    return local.replace(second=0, microsecond=0)


def reference(
    events: list[tuple[datetime, int]], starts: list[datetime], start: datetime, end: datetime,
    zone: ZoneInfo, interval: str,
) -> list[tuple[str, int, int, int]]:  # fmt: skip
    label = INTERVALS[interval]
    skeleton, minute = set(), start
    while minute <= end:  # every minute of the range: offsets change on whole minutes
        skeleton.add(label(_local(minute, zone)))
        minute += timedelta(minutes=1)
    visitors: dict[datetime, set[int]] = defaultdict(set)
    views: dict[datetime, int] = defaultdict(int)
    sessions_: dict[datetime, int] = defaultdict(int)
    for ts, visitor in events:
        if start <= ts <= end:
            bucket = label(_local(ts, zone))
            visitors[bucket].add(visitor)
            views[bucket] += 1
    for started in starts:
        if start <= started <= end:
            sessions_[label(_local(started, zone))] += 1
    return [(b.strftime("%Y-%m-%dT%H:%M:%S"), len(visitors[b]), views[b], sessions_[b])
            for b in sorted(skeleton)]  # fmt: skip


def _edges(window: datetime, zone: str) -> list[int]:
    """Minutes into the window of the zone's local midnights and offset changes."""
    zi = ZoneInfo(zone)
    out = []
    for minute in range(0, WINDOW_MINUTES, 15):  # offsets change on quarter hours here
        local = _local(window + timedelta(minutes=minute), zi)
        before = _local(window + timedelta(minutes=minute - 15), zi)
        if local.date() != before.date() or local - before != timedelta(minutes=15):
            out.append(minute)
    return out


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    window, zone = draw(st.sampled_from(WINDOWS)), draw(st.sampled_from(ZONES))
    uniform = st.integers(0, WINDOW_MINUTES - 1)
    near_edge = st.builds(lambda e, d: min(max(e + d, 0), WINDOW_MINUTES - 1),
                          st.sampled_from(_edges(window, zone)), st.integers(-90, 90))  # fmt: skip
    minutes = uniform | near_edge  # events crowd around local midnights and DST changes
    events = draw(st.lists(st.tuples(minutes, st.integers(1, 6)), min_size=5, max_size=60))
    if draw(st.booleans()):  # most of the window, cut inside its first and last days
        a = draw(st.integers(0, 2 * 1440))
        b = draw(st.integers(WINDOW_MINUTES - 2 * 1440, WINDOW_MINUTES - 1))
    else:
        a, b = sorted(draw(st.tuples(minutes, minutes)))
    return {
        "events": [(window + timedelta(minutes=m, seconds=m % 60), v) for m, v in events],
        "start": window + timedelta(minutes=a),
        "end": window + timedelta(minutes=b, seconds=59),
        "zone": zone,
        "interval": draw(st.sampled_from(list(INTERVALS))),
        "rolled": draw(st.sets(st.integers(0, 11), max_size=12)),
        "window": window,
    }


@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=cases())
def test_timeseries_equals_zoneinfo_reference(stack: Stack, case: dict[str, Any]) -> None:
    site, key = _tenant(stack, case["events"])
    busy = {ts.date() for ts, _ in case["events"]}
    for d in case["rolled"]:  # some of the window's UTC days with events rolled, the rest raw
        if (day := (case["window"] + timedelta(days=d)).date()) in busy:
            rollups.roll_day(stack.events, site, day)
    with stack.events.connect() as conn:
        starts = list(conn.scalars(select(sessions.c.started_at).where(sessions.c.site_id == site)))
    start, end = case["start"], case["end"]
    got = _series(stack, key, start=f"{start.isoformat()}Z", end=f"{end.isoformat()}Z",
                  interval=case["interval"], timezone=case["zone"])  # fmt: skip
    zone = ZoneInfo(case["zone"])
    assert got == reference(case["events"], starts, start, end, zone, case["interval"])
    if case["zone"] == "UTC":  # and absent means UTC
        assert got == _series(stack, key, start=f"{start.isoformat()}Z",
                               end=f"{end.isoformat()}Z", interval=case["interval"])  # fmt: skip


@pytest.mark.parametrize("engine", ["embedded", "postgres"])
def test_migration_gives_existing_sites_utc(engine: str, tmp_path: Path) -> None:
    """A metadata store at 0003 holding a site, upgraded: the site reads UTC."""
    pg = _postgres_database() if engine == "postgres" else None
    store = engines.connect(next(pg) if pg else f"sqlite:///{tmp_path}/m.sqlite3")
    cfg = Config()
    cfg.set_main_option("script_location", str(migrate.MIGRATIONS / "metadata"))
    cfg.set_main_option("version_table", "alembic_version_metadata")
    try:
        with store.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0003")
            conn.execute(text("INSERT INTO projects VALUES ('p', 'P', 'pro', '2024-01-01')"))
            conn.execute(text("INSERT INTO sites VALUES ('s', 'p', 'old.example', 'Old', 'sk_x', "
                              "true, '2024-01-01')"))  # fmt: skip
        migrate.upgrade(store, "metadata")
        with store.begin() as conn:
            assert conn.execute(text("SELECT id, timezone FROM sites")).all() == [("s", "UTC")]
            site = accounts.create_site(conn, "p", "new.example", timezone="Asia/Kolkata")
            rows = conn.execute(accounts.project_sites_stmt("p")).all()
        assert [(r.id, r.timezone) for r in rows] == [("s", "UTC"), (site["id"], "Asia/Kolkata")]
    finally:
        store.dispose()
        if pg:
            next(pg, None)


def _labels(rng: Range, interval: Interval, zone: str) -> list[str]:
    zi = parse_timezone(zone)
    return [bucket_start(i, interval).isoformat() for i in buckets(rng, interval, zi)]


def test_bucket_lists_follow_the_wall_clock() -> None:
    # Samoa skipped 30 December 2011 (-10 to +14): no day bucket for it.
    days = Range(datetime(2011, 12, 29, 10), datetime(2011, 12, 31, 9, 59))
    assert _labels(days, Interval(1, "day"), "Pacific/Apia") == [
        "2011-12-29T00:00:00", "2011-12-31T00:00:00"
    ]  # fmt: skip
    # A range inside Berlin's repeated hour: one bucket, though it starts at the second 02:10.
    repeated = Range(datetime(2024, 10, 27, 0, 30), datetime(2024, 10, 27, 1, 10))
    assert _labels(repeated, Interval(1, "hour"), "Europe/Berlin") == ["2024-10-27T02:00:00"]
    assert _labels(repeated, Interval(30, "minute"), "Europe/Berlin") == [
        "2024-10-27T02:00:00", "2024-10-27T02:30:00"
    ]  # fmt: skip
    # 7-minute buckets (aligned on 1970): those wholly in the skipped hour are left out;
    # 02:54-03:01 starts in it but holds 03:00, so it stays, under its aligned start.
    gap = Range(datetime(2024, 3, 31, 0, 55), datetime(2024, 3, 31, 1, 5))
    assert _labels(gap, Interval(7, "minute"), "Europe/Berlin") == [
        "2024-03-31T01:51:00", "2024-03-31T01:58:00", "2024-03-31T02:54:00",
        "2024-03-31T03:01:00"
    ]  # fmt: skip
    # Without a zone, and in a zone at UTC+0 all along, the plain UTC buckets.
    winter = Range(datetime(2024, 1, 1), datetime(2024, 1, 2, 23, 59))
    assert buckets(winter, Interval(1, "hour"), parse_timezone("Europe/London")) == buckets(
        winter, Interval(1, "hour")
    )
    # At the ends of datetime's years, a 400 where local time would leave them.
    last = Range(datetime(9999, 12, 30), datetime(9999, 12, 31, 23, 59, 59))
    assert len(buckets(last, Interval(1, "day"), parse_timezone("UTC"))) == 2
    with pytest.raises(BadRequest, match=r"^timezone: the range reaches past .* Asia/Tokyo"):
        buckets(last, Interval(1, "day"), parse_timezone("Asia/Tokyo"))
    with pytest.raises(BadRequest, match="10000"):
        buckets(Range(datetime(2000, 1, 1), datetime(2024, 1, 1)), Interval(1, "hour"),
                parse_timezone("Europe/Berlin"))  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    zone=st.sampled_from(["Europe/Berlin", "Australia/Lord_Howe", "Pacific/Apia",
                          "America/Sao_Paulo", "Asia/Tehran", "Africa/Casablanca"]),
    start=st.datetimes(datetime(1970, 1, 1), datetime(2040, 1, 1)),
    length=st.timedeltas(timedelta(0), timedelta(days=800)),
    probe=st.floats(0, 1),
)  # fmt: skip
def test_offsets_match_zoneinfo(
    zone: str, start: datetime, length: timedelta, probe: float
) -> None:
    """The pieces cover the range in order, each at the offset zoneinfo gives its instants."""
    zi = parse_timezone(zone)
    pieces = offsets(zi, start, start + length)
    assert pieces[0].start == start and all(a.start < b.start for a, b in pairwise(pieces))
    assert all(a.offset != b.offset for a, b in pairwise(pieces))
    instant = start + length * probe
    piece = [p for p in pieces if p.start <= instant][-1]
    assert piece.offset == instant.replace(tzinfo=UTC).astimezone(zi).utcoffset()
    for p in pieces[1:]:  # each change is exactly where zoneinfo's offset changes
        before = (p.start - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(zi)
        assert before.utcoffset() != p.offset
