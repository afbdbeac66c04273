"""Keys limited to one site: every route through Envoy answers for that site only, others are 403."""

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from conftest import Stack
from dataset import DAY, GOOGLE_CA_MAC, HN_BERLIN_IPHONE, at, ev, project_a_events
from weldpulse.storage import accounts, writer

RANGE = {"start": DAY, "end": DAY}
# Every GET route that takes a site_id, with the parameters it needs.
GETS = {
    "/v1/stats": RANGE,
    "/v1/pages": RANGE,
    "/v1/referrers": RANGE,
    "/v1/timeseries": {**RANGE, "interval": "1 hour"},
    "/v1/realtime": {},
    "/v1/events": RANGE,
    "/v1/geo": RANGE,
    "/v1/devices": RANGE,
}
QUERY = {
    "date_range": RANGE,
    "metrics": ["visitors", "pageviews", "sessions"],
    "dimensions": ["source"],
    "include_totals": True,
}


@dataclass
class Shared:
    """A project with two sites that both have traffic, a project key and keys for site 1 only."""

    domain: str  # site1's
    site1: str
    site2: str
    other_project_site: str
    project_key: str
    site_key: str  # stats:read, limited to site1
    site_writer: str  # events:write, limited to site1


@pytest.fixture(scope="module")
def shared(stack: Stack) -> Shared:
    domain = f"limited-{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, domain, "pro")
        site1 = accounts.create_site(conn, project, domain)["id"]
        site2 = accounts.create_site(conn, project, f"blog.{domain}")["id"]
        project_key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
        site_key = accounts.create_api_key(conn, project, ["stats:read"], site_id=site1)
        site_writer = accounts.create_api_key(conn, project, ["events:write"], site_id=site1)
    # The seeded day on both sites (they differ), and visitors right now on both.
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1)
    writer.record(stack.events, [
        *project_a_events(site1, site2),
        ev(site2, 6, at("12:01:00"), "/", GOOGLE_CA_MAC, "download"),
        ev(site1, 30, now, "/now", GOOGLE_CA_MAC),
        ev(site2, 31, now, "/then", HN_BERLIN_IPHONE),
        ev(site2, 32, now, "/then", HN_BERLIN_IPHONE),
    ])  # fmt: skip
    assert site_key["site_id"] == site1
    return Shared(
        domain, site1, site2, stack.ids["b_site"], project_key, site_key["key"], site_writer["key"]
    )


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def get(stack: Stack, key: str, path: str, **params: str) -> httpx.Response:
    return stack.http.get(path, params={**GETS.get(path, {}), **params}, headers=auth(key))


def query(stack: Stack, key: str, **body: Any) -> httpx.Response:
    return stack.http.post("/v1/query", json={**QUERY, **body}, headers=auth(key))


def data(resp: httpx.Response) -> Any:
    assert resp.status_code == 200, resp.text
    return resp.json()


def forbidden(resp: httpx.Response) -> None:
    assert resp.status_code == 403, resp.text
    body = resp.json()
    assert body["code"] == "FORBIDDEN" and "site_id" in body["error"], body


Route = Callable[..., httpx.Response]
ROUTES: dict[str, Route] = {
    **{path: partial(get, path=path) for path in GETS},
    "/v1/query": query,
}


@pytest.mark.parametrize("route", ROUTES)
def test_site_key_answers_for_its_site_by_default_and_when_named(
    stack: Stack, shared: Shared, route: str
) -> None:
    call = ROUTES[route]
    its_site = data(call(stack, shared.project_key, site_id=shared.site1))
    both_sites = data(call(stack, shared.project_key))
    # The two sites have different traffic, so "all sites" would show.
    assert its_site != both_sites
    assert data(call(stack, shared.site_key)) == its_site
    assert data(call(stack, shared.site_key, site_id=shared.site1)) == its_site


@pytest.mark.parametrize("route", ROUTES)
def test_site_key_asking_for_another_site_is_403(stack: Stack, shared: Shared, route: str) -> None:
    call = ROUTES[route]
    # Another site of its own project, a site of another project, a made-up id.
    for site in (shared.site2, shared.other_project_site, "no-such-site"):
        forbidden(call(stack, shared.site_key, site_id=site))
    # The project's key still sees the other site.
    data(call(stack, shared.project_key, site_id=shared.site2))


def test_sites_lists_only_the_keys_site(stack: Stack, shared: Shared) -> None:
    limited = data(stack.http.get("/v1/sites", headers=auth(shared.site_key)))["data"]
    everything = data(stack.http.get("/v1/sites", headers=auth(shared.project_key)))["data"]
    assert [s["id"] for s in limited] == [shared.site1]
    assert [s["id"] for s in everything] == [shared.site1, shared.site2]
    assert limited == everything[:1]


def test_import_with_a_site_key_writes_only_its_site(stack: Stack, shared: Shared) -> None:
    event = {"timestamp": "2023-06-01T10:00:00Z", "name": "pageview",
             "url": f"https://{shared.domain}/imported", "visitor_id": "imported-1"}  # fmt: skip
    body = {"site_id": shared.site2, "events": [event]}
    forbidden(stack.http.post("/v1/import", json=body, headers=auth(shared.site_writer)))
    body["site_id"] = shared.other_project_site
    forbidden(stack.http.post("/v1/import", json=body, headers=auth(shared.site_writer)))
    body["site_id"] = shared.site1
    resp = stack.http.post("/v1/import", json=body, headers=auth(shared.site_writer))
    assert data(resp) == {"accepted": 1, "rejected": []}
    day = {"start": "2023-06-01", "end": "2023-06-01"}
    pages = data(get(stack, shared.site_key, "/v1/pages", **day))["data"]
    assert [p["pathname"] for p in pages] == ["/imported"]


def test_key_for_a_site_of_another_project_cannot_be_made(stack: Stack, shared: Shared) -> None:
    with stack.metadata.begin() as conn, pytest.raises(ValueError, match="no site"):
        accounts.create_api_key(
            conn, stack.ids["a"], ["stats:read"], site_id=shared.other_project_site
        )


FUNNEL = {"date_range": RANGE, "steps": [{"page_path": "/"}, {"event_name": "download"}]}


def test_funnel_routes_answer_for_the_keys_site_only(stack: Stack, shared: Shared) -> None:
    def run(key: str, site: str) -> httpx.Response:
        return stack.http.post("/v1/funnel", json={**FUNNEL, "site_id": site}, headers=auth(key))

    assert data(run(shared.site_key, shared.site1)) == data(run(shared.project_key, shared.site1))
    data(stack.http.get(f"/v1/sites/{shared.site1}/funnels", headers=auth(shared.site_key)))
    for site in (shared.site2, shared.other_project_site, "no-such-site"):
        forbidden(run(shared.site_key, site))
        forbidden(stack.http.get(f"/v1/sites/{site}/funnels", headers=auth(shared.site_key)))


def test_live_stream_refuses_another_site(stack: Stack, shared: Shared) -> None:
    for site in (shared.site2, shared.other_project_site, "no-such-site"):
        resp = stack.http.get(
            "/v1/realtime/stream", params={"site_id": site}, headers=auth(shared.site_key)
        )
        forbidden(resp)


def test_sites_and_goals_routes_answer_for_the_keys_site_only(stack: Stack, shared: Shared) -> None:
    with stack.metadata.begin() as conn:
        project = accounts.site_project(conn, shared.site1)
        assert project is not None
        scopes = ["stats:read", "sites:write"]
        admin = accounts.create_api_key(conn, project, scopes, site_id=shared.site1)["key"]
    data(stack.http.get(f"/v1/sites/{shared.site1}/goals", headers=auth(admin)))
    for site in (shared.site2, shared.other_project_site, "no-such-site"):
        forbidden(stack.http.get(f"/v1/sites/{site}/goals", headers=auth(admin)))
        forbidden(stack.http.post(f"/v1/sites/{site}/goals", headers=auth(admin),
                                  json={"name": "x", "event_name": "x"}))  # fmt: skip
        forbidden(stack.http.patch(f"/v1/sites/{site}", headers=auth(admin), json={"name": "x"}))
    resp = stack.http.post("/v1/sites", headers=auth(admin), json={"domain": "new.example"})
    assert resp.status_code == 403 and resp.json()["code"] == "FORBIDDEN", resp.text
