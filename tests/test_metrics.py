"""Every /v1 endpoint through Envoy returns the hand-computed figures of tests/dataset.py."""

from datetime import UTC, datetime, timedelta

from conftest import Stack
from dataset import DAY_END, DAY_START, WIDE_DAY, ev
from weldpulse.storage import writer

RANGE = {"start": DAY_START, "end": DAY_END}


def data(stack: Stack, path: str, key: str = "a", **params: object) -> list[dict]:
    resp = stack.get(path, key, **params)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    body = resp.json()
    assert list(body) == ["data"]
    return body["data"]


def test_stats(stack: Stack) -> None:
    # 6 visitors, 10 pageviews in range; 7 sessions start in it with durations
    # 300+0+0+2700+0+1200+0 = 4200 s; bounces: V1's second, V2, V6.
    assert data(stack, "/v1/stats", **RANGE) == [
        {
            "visitors": 6,
            "pageviews": 10,
            "sessions": 7,
            "avg_duration": 600.0,
            "bounce_rate": 0.4286,
        }
    ]


def test_stats_raw_json_has_numbers_and_zeros(stack: Stack) -> None:
    resp = stack.get("/v1/stats", start="2023-01-01T00:00:00Z", end="2023-01-02T00:00:00Z")
    assert resp.text == (
        '{"data":[{"visitors":0,"pageviews":0,"sessions":0,"avg_duration":0,"bounce_rate":0}]}'
    )


def test_stats_of_one_site(stack: Stack) -> None:
    assert data(stack, "/v1/stats", site_id=stack.ids["a_site2"], **RANGE) == [
        {"visitors": 1, "pageviews": 1, "sessions": 1, "avg_duration": 0.0, "bounce_rate": 1.0}
    ]


def test_range_bounds_are_inclusive(stack: Stack) -> None:
    # Exactly one event (V1's first) sits at 10:00:00.
    row = data(stack, "/v1/stats", start="2024-01-15T10:00:00Z", end="2024-01-15T10:00:00Z")[0]
    assert (row["visitors"], row["pageviews"], row["sessions"]) == (1, 1, 1)


def test_dates_and_offsets_are_accepted(stack: Stack) -> None:
    whole_day = data(stack, "/v1/stats", start="2024-01-15", end="2024-01-15")
    assert whole_day == data(stack, "/v1/stats", **RANGE)
    # 11:00+01:00 is 10:00Z.
    shifted = data(
        stack, "/v1/stats", start="2024-01-15T11:00:00+01:00", end="2024-01-15T10:00:00Z"
    )
    assert shifted[0]["pageviews"] == 1


def test_pages(stack: Stack) -> None:
    # Time on page: "/" 30, 1500 and 1200 s (V5's next pageview is after the
    # range); "/pricing" 270 and 1200 s; "/docs" has no next pageview.
    assert data(stack, "/v1/pages", **RANGE) == [
        {"pathname": "/", "visitors": 5, "pageviews": 5, "avg_duration": 910.0, "bounce_rate": 0.5},
        {"pathname": "/pricing", "visitors": 2, "pageviews": 4, "avg_duration": 735.0, "bounce_rate": 0.5},
        {"pathname": "/docs", "visitors": 1, "pageviews": 1, "avg_duration": 0.0, "bounce_rate": 0.0},
    ]  # fmt: skip


def test_referrers(stack: Stack) -> None:
    assert data(stack, "/v1/referrers", **RANGE) == [
        {"referrer_source": "Google", "visitors": 3, "pageviews": 7, "bounce_rate": 0.3333},
        {"referrer_source": "GitHub", "visitors": 1, "pageviews": 2, "bounce_rate": 0.0},
        {"referrer_source": "Direct / None", "visitors": 1, "pageviews": 1, "bounce_rate": 1.0},
        {"referrer_source": "Hacker News", "visitors": 1, "pageviews": 1, "bounce_rate": 1.0},
        {"referrer_source": "Twitter", "visitors": 1, "pageviews": 0, "bounce_rate": 0.0},
    ]


def test_timeseries_default_interval_is_one_hour(stack: Stack) -> None:
    rows = data(stack, "/v1/timeseries", **RANGE)
    assert [r["t"] for r in rows] == [f"2024-01-15T{h:02d}:00:00" for h in range(24)]
    busy = {
        r["t"][11:13]: (r["visitors"], r["pageviews"], r["sessions"]) for r in rows if r["visitors"]
    }
    assert busy == {"10": (4, 6, 4), "11": (2, 2, 1), "12": (1, 1, 1), "23": (1, 1, 1)}
    assert rows[0] == {"t": "2024-01-15T00:00:00", "visitors": 0, "pageviews": 0, "sessions": 0}


def test_timeseries_intervals(stack: Stack) -> None:
    assert data(stack, "/v1/timeseries", interval="1 day", **RANGE) == [
        {"t": "2024-01-15T00:00:00", "visitors": 6, "pageviews": 10, "sessions": 7}
    ]
    # A literal "+" in the URL, as curl users write it, means a space.
    raw = "/v1/timeseries?interval=15+minutes&start=2024-01-15T10:00:00Z&end=2024-01-15T10:59:59Z"
    resp = stack.http.get(raw, headers={"Authorization": f"Bearer {stack.keys['a']}"})
    quarter = resp.json()["data"]
    assert [(r["t"][11:16], r["pageviews"], r["sessions"]) for r in quarter] == [
        ("10:00", 4, 2), ("10:15", 1, 1), ("10:30", 1, 1), ("10:45", 0, 0),
    ]  # fmt: skip
    # 2024-01-14 is a Sunday: its week starts Monday the 8th.
    weeks = data(stack, "/v1/timeseries", interval="1 week", start="2024-01-14", end="2024-01-16")
    assert [(r["t"], r["pageviews"]) for r in weeks] == [
        ("2024-01-08T00:00:00", 1), ("2024-01-15T00:00:00", 11),
    ]  # fmt: skip
    months = data(
        stack, "/v1/timeseries", interval="2 months", start="2023-12-31", end="2024-02-01"
    )
    assert [r["t"] for r in months] == ["2023-11-01T00:00:00", "2024-01-01T00:00:00"]


def test_events(stack: Stack) -> None:
    assert data(stack, "/v1/events", **RANGE) == [
        {"event_name": "signup_click", "total": 2, "unique_visitors": 1},
        {"event_name": "newsletter", "total": 1, "unique_visitors": 1},
    ]


def test_geo(stack: Stack) -> None:
    assert data(stack, "/v1/geo", **RANGE) == [
        {"country": "US", "region": "California", "visitors": 2, "pageviews": 5},
        {"country": "US", "region": "New York", "visitors": 1, "pageviews": 3},
        {"country": "DE", "region": "Berlin", "visitors": 1, "pageviews": 1},
        {"country": "FR", "region": "Île-de-France", "visitors": 1, "pageviews": 1},
        {"country": "GB", "region": "England", "visitors": 1, "pageviews": 0},
    ]


def test_devices(stack: Stack) -> None:
    assert data(stack, "/v1/devices", **RANGE) == [
        {"device_type": "desktop", "browser": "Chrome", "os": "macOS", "visitors": 2, "pageviews": 5},
        {"device_type": "desktop", "browser": "Firefox", "os": "Linux", "visitors": 1, "pageviews": 3},
        {"device_type": "mobile", "browser": "Safari", "os": "iOS", "visitors": 1, "pageviews": 1},
        {"device_type": "tablet", "browser": "Safari", "os": "iOS", "visitors": 1, "pageviews": 1},
        {"device_type": "desktop", "browser": "Edge", "os": "Windows", "visitors": 1, "pageviews": 0},
    ]  # fmt: skip


def test_sites(stack: Stack) -> None:
    rows = data(stack, "/v1/sites")
    assert [(r["id"], r["domain"], r["name"]) for r in rows] == [
        (stack.ids["a_site1"], "example.com", "Main Site"),
        (stack.ids["a_site2"], "blog.example.com", "blog.example.com"),
    ]
    for row in rows:
        assert list(row) == [
            "id",
            "domain",
            "name",
            "site_key",
            "is_active",
            "created_at",
            "timezone",
        ]
        assert row["timezone"] == "UTC"  # sites made before time zones, or without one
        assert row["site_key"].startswith("sk_live_") and row["is_active"] is True
        assert datetime.strptime(row["created_at"], "%Y-%m-%dT%H:%M:%SZ")


def test_realtime(stack: Stack) -> None:
    site = stack.ids["live_site"]
    now = datetime.now(UTC).replace(tzinfo=None)
    ago = lambda minutes: now - timedelta(minutes=minutes)  # noqa: E731
    ca = ("Google", "CA", "Ontario", "desktop", "Chrome", "Windows")
    nl = ("Direct / None", "NL", "Utrecht", "mobile", "Chrome", "Android")
    writer.record(stack.events, [
        ev(site, 10, ago(2), "/live", ca), ev(site, 10, ago(1), "/live2", ca),
        ev(site, 11, ago(3), "/live2", ca),
        ev(site, 12, ago(10), "/gone", ca),
        # Latest pageview 20 minutes ago, a custom event a minute ago: still here.
        ev(site, 13, ago(20), "/x", nl), ev(site, 13, ago(1), "/x", nl, "ping"),
    ])  # fmt: skip
    assert data(stack, "/v1/realtime", key="live") == [
        {"pathname": "/live2", "country": "CA", "device_type": "desktop",
         "referrer_source": "Google", "current_visitors": 2},
        {"pathname": "/x", "country": "NL", "device_type": "mobile",
         "referrer_source": "Direct / None", "current_visitors": 1},
    ]  # fmt: skip
    assert data(stack, "/v1/realtime") == []  # project A: nobody on its sites now


def test_default_limits(stack: Stack) -> None:
    day = {"start": WIDE_DAY, "end": WIDE_DAY}
    pages = data(stack, "/v1/pages", key="wide", **day)
    assert [r["pathname"] for r in pages] == [f"/p{i:02d}" for i in range(10)]
    assert len(data(stack, "/v1/referrers", key="wide", **day)) == 10
    assert len(data(stack, "/v1/geo", key="wide", **day)) == 50
    assert len(data(stack, "/v1/devices", key="wide", **day)) == 50
    assert len(data(stack, "/v1/pages", key="wide", limit=1000, **day)) == 60
    assert len(data(stack, "/v1/geo", key="wide", limit=1, **day)) == 1
    assert len(data(stack, "/v1/events", key="wide", **day)) == 0


def test_key_sees_only_its_own_project(stack: Stack) -> None:
    assert data(stack, "/v1/stats", key="b", **RANGE) == [
        {"visitors": 1, "pageviews": 2, "sessions": 1, "avg_duration": 60.0, "bounce_rate": 0.0}
    ]
    assert [r["pathname"] for r in data(stack, "/v1/pages", key="b", **RANGE)] == ["/secret"]
    assert "/secret" not in [r["pathname"] for r in data(stack, "/v1/pages", **RANGE)]
    assert [r["domain"] for r in data(stack, "/v1/sites", key="b")] == ["other.org"]
    # Naming another project's site is refused like an unknown one.
    resp = stack.get("/v1/stats", key="a", site_id=stack.ids["b_site"], **RANGE)
    assert resp.status_code == 400
    assert resp.json()["code"] == "BAD_REQUEST" and "site_id" in resp.json()["error"]
