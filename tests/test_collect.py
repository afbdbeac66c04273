"""POST /v1/collect through Envoy: stored and enriched, CORS, bots, spoofing, limits."""

import json
from datetime import UTC, datetime

import httpx
import pytest
from conftest import Stack, Tenant
from weldpulse.app import build_server
from weldpulse.config import IngestOptions
from weldpulse.envoy import Envoy

CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
)
TODAY = {"start": datetime.now(UTC).strftime("%Y-%m-%d"), "end": datetime.now(UTC).strftime("%Y-%m-%d")}  # fmt: skip


def collect(stack: Stack, body: dict, ua: str = CHROME_MAC, **headers: str) -> httpx.Response:
    return stack.http.post(
        "/v1/collect",
        content=json.dumps(body),
        headers={"User-Agent": ua, "Content-Type": "application/json", **headers},
    )


def read(stack: Stack, tenant: Tenant, path: str, **params: str) -> list[dict]:
    resp = stack.http.get(
        path, params=params, headers={"Authorization": f"Bearer {tenant.read_key}"}
    )
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]


def hit(tenant: Tenant, path: str = "/pricing?utm_source=newsletter", **extra: object) -> dict:
    return {
        "site_key": tenant.site_key,
        "name": "pageview",
        "url": f"https://{tenant.domain}{path}",
        **extra,
    }


def test_pageview_is_stored_and_enriched(stack: Stack, tenant: Tenant) -> None:
    resp = collect(
        stack, hit(tenant, referrer="https://www.google.com/", props={"plan": "pro", "seats": 3})
    )
    assert resp.status_code == 202 and resp.json() == {}
    assert "x-weldpulse-dropped" not in resp.headers
    assert read(stack, tenant, "/v1/pages", **TODAY) == [
        {
            "pathname": "/pricing",
            "visitors": 1,
            "pageviews": 1,
            "avg_duration": 0.0,
            "bounce_rate": 1.0,
        }
    ]
    # utm_source wins over the referrer.
    assert [r["referrer_source"] for r in read(stack, tenant, "/v1/referrers", **TODAY)] == [
        "newsletter"
    ]
    assert read(stack, tenant, "/v1/geo", **TODAY) == [
        {"country": "NL", "region": "Utrecht", "visitors": 1, "pageviews": 1}
    ]
    assert read(stack, tenant, "/v1/devices", **TODAY) == [
        {
            "device_type": "desktop",
            "browser": "Chrome",
            "os": "macOS",
            "visitors": 1,
            "pageviews": 1,
        }
    ]
    assert read(stack, tenant, "/v1/realtime") == [
        {
            "pathname": "/pricing",
            "country": "NL",
            "device_type": "desktop",
            "referrer_source": "newsletter",
            "current_visitors": 1,
        }
    ]


def test_same_visitor_same_session_then_custom_event(stack: Stack, tenant: Tenant) -> None:
    assert (
        collect(
            stack, hit(tenant, "/", referrer="https://news.ycombinator.com/item?id=1")
        ).status_code
        == 202
    )
    assert (
        collect(stack, hit(tenant, "/docs", referrer=f"https://{tenant.domain}/")).status_code
        == 202
    )
    assert collect(stack, {**hit(tenant, "/docs"), "name": "signup_click"}).status_code == 202
    stats = read(stack, tenant, "/v1/stats", **TODAY)[0]
    assert (stats["visitors"], stats["pageviews"], stats["sessions"], stats["bounce_rate"]) == (
        1,
        2,
        1,
        0.0,
    )
    assert [r["referrer_source"] for r in read(stack, tenant, "/v1/referrers", **TODAY)] == [
        "Hacker News"
    ]
    assert read(stack, tenant, "/v1/events", **TODAY) == [
        {"event_name": "signup_click", "total": 1, "unique_visitors": 1}
    ]
    # Another user agent from the same IP is another visitor.
    collect(stack, hit(tenant, "/"), ua=CHROME_MAC.replace("120.0.0.0", "121.0.0.0"))
    assert read(stack, tenant, "/v1/stats", **TODAY)[0]["visitors"] == 2


def test_cors_preflight_and_response_for_collect_only(stack: Stack) -> None:
    origin = "https://shop.example"
    pre = stack.http.options(
        "/v1/collect",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert pre.status_code == 200
    assert pre.headers["access-control-allow-origin"] == origin
    assert "POST" in pre.headers["access-control-allow-methods"]
    assert "content-type" in pre.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in pre.headers
    other = stack.http.options(
        "/v1/stats", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert "access-control-allow-origin" not in other.headers
    stats = stack.http.get("/v1/sites", headers={"Origin": origin})
    assert "access-control-allow-origin" not in stats.headers


def test_bots_are_acknowledged_but_dropped(stack: Stack, tenant: Tenant) -> None:
    for ua in (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "curl/8.4.0",
        "",
    ):
        resp = collect(stack, hit(tenant), ua=ua)
        assert resp.status_code == 202 and resp.headers["x-weldpulse-dropped"] == "bot", ua
    assert read(stack, tenant, "/v1/stats", **TODAY)[0]["pageviews"] == 0


def test_forwarded_for_cannot_be_spoofed_through_envoy(stack: Stack, tenant: Tenant) -> None:
    # 203.0.113.5 is in California in the test GeoIP DB; the real peer is loopback (Utrecht).
    collect(stack, hit(tenant), **{"X-Forwarded-For": "203.0.113.5"})
    assert [r["country"] for r in read(stack, tenant, "/v1/geo", **TODAY)] == ["NL"]


def test_trusted_proxy_hop_is_honoured(stack: Stack, tenant: Tenant, tmp_path) -> None:
    from conftest import write_geoip_db

    options = IngestOptions(geoip_db=str(write_geoip_db(tmp_path / "geo.mmdb")), trusted_hops=1)
    server, port = build_server(stack.metadata, stack.events, ingest=options)
    envoy = Envoy(port, trusted_hops=1).start()
    try:
        resp = httpx.post(
            f"http://127.0.0.1:{envoy.http_port}/v1/collect",
            json=hit(tenant),
            headers={"User-Agent": CHROME_MAC, "X-Forwarded-For": "203.0.113.5"},
        )
        assert resp.status_code == 202
    finally:
        envoy.stop()
        server.stop(grace=5).wait()
    assert read(stack, tenant, "/v1/geo", **TODAY) == [
        {"country": "US", "region": "California", "visitors": 1, "pageviews": 1}
    ]


def test_no_geoip_db_uses_trusted_cdn_header(stack: Stack, tenant: Tenant) -> None:
    server, port = build_server(
        stack.metadata, stack.events, ingest=IngestOptions(country_header="cf-ipcountry")
    )
    envoy = Envoy(port).start()
    try:
        url = f"http://127.0.0.1:{envoy.http_port}/v1/collect"
        assert (
            httpx.post(
                url, json=hit(tenant), headers={"User-Agent": CHROME_MAC, "CF-IPCountry": "fr"}
            ).status_code
            == 202
        )
    finally:
        envoy.stop()
        server.stop(grace=5).wait()
    assert read(stack, tenant, "/v1/geo", **TODAY) == [
        {"country": "FR", "region": "", "visitors": 1, "pageviews": 1}
    ]


def error(resp: httpx.Response, status: int = 400, code: str = "BAD_REQUEST") -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert sorted(body) == ["code", "error"] and body["code"] == code
    return body["error"]


def test_unknown_and_inactive_sites_are_400(stack: Stack, tenant: Tenant) -> None:
    assert "site_key" in error(collect(stack, {**hit(tenant), "site_key": "sk_live_nope"}))
    assert "site_key" in error(
        collect(stack, {k: v for k, v in hit(tenant).items() if k != "site_key"})
    )
    from sqlalchemy import update
    from weldpulse.storage.schema import sites

    with stack.metadata.begin() as conn:
        conn.execute(update(sites).where(sites.c.id == tenant.site_id).values(is_active=False))
    import time

    time.sleep(5.1)  # the server caches site keys for 5 seconds
    assert "site_key" in error(collect(stack, hit(tenant)))


def test_url_off_the_sites_domain_is_400(stack: Stack, tenant: Tenant) -> None:
    assert "domain" in error(collect(stack, {**hit(tenant), "url": "https://evil.example/"}))
    assert "domain" in error(
        collect(stack, {**hit(tenant), "url": f"https://{tenant.domain}.evil.example/"})
    )
    assert (
        collect(stack, {**hit(tenant), "url": f"https://www.{tenant.domain}/"}).status_code == 202
    )
    assert (
        collect(stack, {**hit(tenant), "url": f"https://blog.{tenant.domain}/"}).status_code == 202
    )


def test_malformed_bodies_are_400(stack: Stack, tenant: Tenant) -> None:
    bad = stack.http.post(
        "/v1/collect", content="{not json", headers={"Content-Type": "application/json"}
    )
    error(bad)
    error(collect(stack, {**hit(tenant), "props": {"nested": {"a": 1}}}))
    error(collect(stack, {**hit(tenant), "props": {"list": [1]}}))
    error(collect(stack, {**hit(tenant), "name": ""}))
    error(collect(stack, {**hit(tenant), "url": "javascript:alert(1)"}))
    # Unknown fields are ignored, so older servers accept newer trackers.
    assert collect(stack, {**hit(tenant), "unknown_field": 1}).status_code == 202


@pytest.mark.parametrize(
    ("field", "ok", "too_much"),
    [
        (
            "url",
            lambda t, n: f"https://{t.domain}/" + "a" * (n - len(f"https://{t.domain}/")),
            2000,
        ),
        ("referrer", lambda t, n: "https://ref.example/" + "r" * (n - 20), 2000),
        ("name", lambda t, n: "e" * n, 120),
        ("props", lambda t, n: {f"k{i}": "v" for i in range(n)}, 30),
        ("prop key", lambda t, n: {"k" * n: "v"}, 300),
        ("prop value", lambda t, n: {"k": "v" * n}, 2000),
    ],
)
def test_limits_hold_at_their_boundaries(
    stack: Stack, tenant: Tenant, field: str, ok, too_much: int
) -> None:
    key = field if field in ("url", "referrer", "name") else "props"
    assert collect(stack, {**hit(tenant), key: ok(tenant, too_much)}).status_code == 202
    message = error(collect(stack, {**hit(tenant), key: ok(tenant, too_much + 1)}))
    assert str(too_much) in message


def test_body_over_one_megabyte_is_413(stack: Stack, tenant: Tenant) -> None:
    body = json.dumps({**hit(tenant), "props": {"k": "v" * 1_100_000}})
    resp = stack.http.post(
        "/v1/collect", content=body, headers={"Content-Type": "application/json"}
    )
    error(resp, 413, "PAYLOAD_TOO_LARGE")


def test_tracker_script_is_served(stack: Stack) -> None:
    resp = stack.http.get("/js/script.js")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/javascript")
    assert "/v1/collect" in resp.text and "sendBeacon" in resp.text
    assert len(resp.content) < 4096


def test_nul_characters_are_400_not_500(stack: Stack, tenant: Tenant) -> None:
    # Found by schemathesis: PostgreSQL refuses NUL in text.
    assert "site_key" in error(collect(stack, {**hit(tenant), "site_key": "sk_live_\x00"}))
    assert "url" in error(collect(stack, {**hit(tenant), "url": f"https://{tenant.domain}/\x00"}))
    assert "props" in error(collect(stack, {**hit(tenant), "props": {"k": "v\x00"}}))
