"""POST /v1/import: batches of 1,000, correct sessions, per-event rejections, scopes."""

from datetime import UTC, datetime, timedelta

import httpx
from conftest import Stack, Tenant

UA = {
    "chrome_mac": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "iphone": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "ipad": "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "android": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "firefox_linux": "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "edge_windows": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
}
BASE = datetime(2024, 3, 4, 9, 0, 0)  # a Monday


def post(stack: Stack, key: str, body: dict) -> httpx.Response:
    return stack.http.post("/v1/import", json=body, headers={"Authorization": f"Bearer {key}"})


def read(stack: Stack, tenant: Tenant, path: str, **params: str) -> list[dict]:
    resp = stack.http.get(
        path, params=params, headers={"Authorization": f"Bearer {tenant.read_key}"}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def event(tenant: Tenant, ts: datetime, path: str = "/", **extra: str) -> dict:
    return {
        "timestamp": ts.isoformat() + "Z",
        "name": "pageview",
        "url": f"https://{tenant.domain}{path}",
        "user_agent": UA["chrome_mac"],
        "ip": "203.0.113.9",
        **extra,
    }


def test_thousand_events_get_correct_sessions(stack: Stack, tenant: Tenant) -> None:
    # 100 visitors x 10 pageviews. Visitor i views a page every 10 minutes,
    # except that visitors 0-49 pause 31 minutes before their 6th pageview:
    # 150 sessions, none a bounce.
    events = []
    for step in range(10):
        for i in range(100):
            gap = timedelta(minutes=10 * step + (21 if i < 50 and step >= 5 else 0))
            events.append(
                event(
                    tenant, BASE + gap + timedelta(seconds=i), f"/p{step}", visitor_id=f"user-{i}"
                )
            )
    events.sort(key=lambda e: e["timestamp"])
    resp = post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": events})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": 1000, "rejected": []}
    day = {"start": "2024-03-04", "end": "2024-03-04"}
    stats = read(stack, tenant, "/v1/stats", **day)[0]
    assert (stats["visitors"], stats["pageviews"], stats["sessions"], stats["bounce_rate"]) == (
        100,
        1000,
        150,
        0.0,
    )
    # Durations: 50 sessions of 90 min, 50 of 40 min and 50 of 40 min.
    assert stats["avg_duration"] == round((50 * 5400 + 100 * 2400) / 150, 1)


def test_rejections_name_the_event_and_the_rest_is_stored(stack: Stack, tenant: Tenant) -> None:
    good = event(tenant, BASE)
    batch = [
        good,
        {**good, "timestamp": "yesterday"},
        {**good, "url": "https://elsewhere.example/"},
        {**good, "name": "x" * 121},
        {
            **good,
            "user_agent": "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
        },
        {**good, "ip": "", "visitor_id": ""},
        {**good, "timestamp": (datetime.utcnow() + timedelta(hours=1)).isoformat() + "Z"},
        {**good, "name": "signup_click"},
    ]
    resp = post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": batch})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["accepted"] == 2
    assert [r["index"] for r in body["rejected"]] == [1, 2, 3, 4, 5, 6]
    fields = [r["error"].split(":")[0] for r in body["rejected"]]
    assert fields == ["timestamp", "url", "name", "user_agent", "ip or visitor_id", "timestamp"]
    assert read(stack, tenant, "/v1/events", start="2024-03-04", end="2024-03-04") == [
        {"event_name": "signup_click", "total": 1, "unique_visitors": 1}
    ]


def test_enrichment_of_real_user_agents_referrers_and_ips(stack: Stack, tenant: Tenant) -> None:
    rows = [
        ("chrome_mac", "https://www.google.com/", "203.0.113.1"),
        ("iphone", "https://t.co/abc", "2001:db8::1"),
        ("ipad", "https://x.com/someone/status/1", "2001:db8::2"),
        ("android", "https://news.ycombinator.com/item?id=1", "198.51.100.7"),
        ("firefox_linux", "https://www.some-blog.net/post", "203.0.113.2"),
        ("edge_windows", "", "203.0.113.3"),
    ]
    events = [
        event(tenant, BASE + timedelta(minutes=i), user_agent=UA[ua], referrer=ref, ip=ip)
        for i, (ua, ref, ip) in enumerate(rows)
    ]
    assert (
        post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": events}).json()[
            "accepted"
        ]
        == 6
    )
    day = {"start": "2024-03-04", "end": "2024-03-04"}
    devices = {
        (r["device_type"], r["browser"], r["os"]) for r in read(stack, tenant, "/v1/devices", **day)
    }
    assert devices == {
        ("desktop", "Chrome", "macOS"), ("mobile", "Safari", "iOS"), ("tablet", "Safari", "iOS"),
        ("mobile", "Chrome", "Android"), ("desktop", "Firefox", "Linux"), ("desktop", "Edge", "Windows"),
    }  # fmt: skip
    sources = {
        r["referrer_source"]: r["visitors"] for r in read(stack, tenant, "/v1/referrers", **day)
    }
    assert sources == {
        "Google": 1,
        "Twitter": 2,
        "Hacker News": 1,
        "some-blog.net": 1,
        "Direct / None": 1,
    }
    geo = {
        (r["country"], r["region"]): r["visitors"] for r in read(stack, tenant, "/v1/geo", **day)
    }
    assert geo == {("US", "California"): 3, ("DE", "Berlin"): 2, ("NL", "Utrecht"): 1}


def test_supplied_visitor_id_is_stable_across_days(stack: Stack, tenant: Tenant) -> None:
    days = [event(tenant, BASE + timedelta(days=d), visitor_id="customer-42") for d in range(3)]
    anonymous = [event(tenant, BASE + timedelta(days=d)) for d in range(3)]  # same IP/UA each day
    post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": days + anonymous})
    week = read(stack, tenant, "/v1/stats", start="2024-03-04", end="2024-03-06")[0]
    # One stable visitor, and the IP/UA visitor counted once per day (daily salts).
    assert (week["visitors"], week["sessions"]) == (4, 6)


def test_session_crossing_midnight_keeps_its_visitor(stack: Stack, tenant: Tenant) -> None:
    late = datetime(2024, 3, 4, 23, 50)
    batch = [event(tenant, late, "/a"), event(tenant, late + timedelta(minutes=20), "/b")]
    post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": batch})
    both = read(stack, tenant, "/v1/stats", start="2024-03-04", end="2024-03-05")[0]
    assert (both["visitors"], both["sessions"], both["avg_duration"]) == (1, 1, 1200.0)


def test_import_needs_write_scope_and_own_site(stack: Stack, tenant: Tenant) -> None:
    body = {"site_id": tenant.site_id, "events": [event(tenant, BASE)]}
    assert post(stack, tenant.read_key, body).status_code == 403
    assert (
        post(stack, stack.keys["a_write_only"], body).json()["code"] == "BAD_REQUEST"
    )  # A's key, other site
    resp = post(
        stack, tenant.write_key, {"site_id": tenant.site_id, "events": [event(tenant, BASE)] * 1001}
    )
    assert resp.status_code == 400 and "1000" in resp.json()["error"]
    resp = post(stack, tenant.write_key, {"site_id": tenant.site_id, "events": []})
    assert resp.status_code == 400
    assert stack.http.post("/v1/import", json=body).status_code == 401


def test_collector_compacts_a_finished_days_rollup(stack: Stack, tenant: Tenant) -> None:
    from sqlalchemy import func, select
    from weldpulse.ingest import enrich
    from weldpulse.ingest.collector import Collector
    from weldpulse.ingest.hits import Hit, Site, check, enrich_hit
    from weldpulse.ingest.visitors import Salts
    from weldpulse.storage.schema import visitor_days

    day = BASE.date()
    clock = {"today": day}
    collector = Collector(stack.events, now=lambda: datetime.combine(clock["today"], BASE.time()))
    salts, geo, site = (
        Salts(stack.metadata),
        enrich.GeoIP(None),
        Site(tenant.site_id, tenant.domain),
    )

    def store(minute: int) -> None:
        hits = [
            Hit(
                site,
                BASE + timedelta(minutes=minute),
                "pageview",
                f"https://{tenant.domain}/",
                "",
                UA["iphone"],
                "",
                {},
                f"v{v}",
            )
            for v in range(3)
        ]
        collector.submit([enrich_hit(h, check(h), salts, geo) for h in hits]).result()

    def rows() -> int:
        with stack.events.connect() as conn:
            return conn.execute(
                select(func.count())
                .select_from(visitor_days)
                .where(visitor_days.c.site_id == tenant.site_id, visitor_days.c.day == day)
            ).scalar_one()

    try:
        store(0)
        store(1)  # a second batch: a second row per visitor
        assert rows() == 6
        before = read(stack, tenant, "/v1/stats", start="2024-03-04", end="2024-03-04")
        clock["today"] = day + timedelta(days=1)
        store(24 * 60)  # the next day's first write compacts the finished day first
        assert rows() == 3
        after = read(stack, tenant, "/v1/stats", start="2024-03-04", end="2024-03-04")
        assert after == before and after[0]["visitors"] == 3 and after[0]["pageviews"] == 6
    finally:
        collector.close()


def test_collector_rolls_finished_days_and_rolls_a_day_again_after_a_late_write(
    stack: Stack, tenant: Tenant
) -> None:
    import time

    from sqlalchemy import select
    from weldpulse.ingest import enrich
    from weldpulse.ingest.collector import Collector
    from weldpulse.ingest.hits import Hit, Site, enrich_hit
    from weldpulse.ingest.visitors import Salts
    from weldpulse.storage.schema import rolled_days

    # Days after the real today, so only this collector (its clock is `now`) rolls them.
    day = datetime(2030, 1, 7)
    clock = {"now": day + timedelta(hours=23)}
    collector = Collector(stack.events, now=lambda: clock["now"], roll_every_s=0.05)
    salts, geo, site = Salts(stack.metadata), enrich.GeoIP(None), Site(tenant.site_id, "x")

    def store(minute: int, path: str, visitors: range) -> None:
        hits = [Hit(site, day + timedelta(minutes=minute), "pageview",
                    f"https://{tenant.domain}{path}", "", UA["iphone"], "", {}, f"v{v}")
                for v in visitors]  # fmt: skip
        collector.submit([enrich_hit(h, {}, salts, geo) for h in hits]).result()

    def rolled_at() -> datetime | None:
        with stack.events.connect() as conn:
            return conn.execute(
                select(rolled_days.c.rolled_at).where(
                    rolled_days.c.site_id == tenant.site_id, rolled_days.c.day == day.date()
                )
            ).scalar()

    def wait_for_roll(after: datetime) -> None:
        deadline = time.monotonic() + 10
        while (at := rolled_at()) is None or at <= after:
            assert time.monotonic() < deadline, "the collector did not roll the day"
            time.sleep(0.05)

    def pages() -> list[dict]:
        return read(stack, tenant, "/v1/pages", start="2030-01-07", end="2030-01-07")

    try:
        store(60, "/a", range(3))
        time.sleep(0.3)  # several looks: 23:00 of the same day, so not finished
        assert rolled_at() is None
        clock["now"] = day + timedelta(days=1, minutes=31)  # no session can continue into it
        wait_for_roll(datetime.min)
        assert [(r["pathname"], r["visitors"]) for r in pages()] == [("/a", 3)]
        written = datetime.now(UTC).replace(tzinfo=None)
        store(120, "/b", range(2, 6))  # a late write into the rolled day unmarks it
        wait_for_roll(written)
        assert [(r["pathname"], r["visitors"]) for r in pages()] == [("/b", 4), ("/a", 3)]
    finally:
        collector.close()
