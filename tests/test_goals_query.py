"""`goal` and conversion_rate in /v1/query, by hand on a small site (conversions-api.md).

The exhaustive check is the reference (test_query_reference.py); this one reads
like the contract's example: with `goal` and `source`, the Google row's rate is
over visitors from Google.
"""

import secrets
from datetime import date
from typing import Any

from conftest import Stack
from weldpulse.storage import accounts, rollups

DAY = {"start": "2026-11-02", "end": "2026-11-02"}


def _site_with_goals(stack: Stack) -> tuple[str, str]:
    """Three visitors: v1 (Google) /pricing then signup, v2 (Google) /blog/a/b and /blog/x,
    v3 (direct) /pricing-plans then signup; goals Signup, Pricing /pricing*, Blog /blog/*, Blog deep
    /blog/**."""
    domain = f"g{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, domain, "pro")
        site = accounts.create_site(conn, project, domain)["id"]
        keys = accounts.create_api_key(conn, project, ["sites:write", "stats:read",
                                                        "events:write"])["key"]  # fmt: skip
    auth = {"Authorization": f"Bearer {keys}"}
    for goal in ({"name": "Signup", "event_name": "signup"},
                 {"name": "Pricing", "page_path": "/pricing*"},
                 {"name": "Blog", "page_path": "/blog/*"},
                 {"name": "Blog deep", "page_path": "/blog/**"}):  # fmt: skip
        resp = stack.http.post(f"/v1/sites/{site}/goals", json=goal, headers=auth)
        assert resp.status_code == 200, resp.text

    def ev(visitor: str, clock: str, name: str, path: str, ref: str = "") -> dict:
        return {"timestamp": f"2026-11-02T{clock}Z", "name": name, "visitor_id": visitor,
                "url": f"https://{domain}{path}", "referrer": ref, "user_agent": "", "ip": ""}  # fmt: skip

    google = "https://www.google.com/"
    events = [ev("v1", "10:00:00", "pageview", "/pricing", google),
              ev("v1", "10:01:00", "signup", "/pricing"),
              ev("v2", "10:02:00", "pageview", "/blog/a/b", google),
              ev("v2", "10:02:30", "pageview", "/blog/x"),
              ev("v3", "10:03:00", "pageview", "/pricing-plans"),
              ev("v3", "10:04:00", "signup", "/pricing-plans")]  # fmt: skip
    resp = stack.http.post("/v1/import", json={"site_id": site, "events": events}, headers=auth)
    assert resp.status_code == 200 and resp.json()["accepted"] == 6, resp.text
    return site, keys


def test_conversion_rate_per_goal_and_source(stack: Stack) -> None:
    site, key = _site_with_goals(stack)
    auth = {"Authorization": f"Bearer {key}"}
    body = {"site_id": site, "date_range": DAY, "metrics": ["visitors", "conversion_rate"],
            "dimensions": ["goal", "source"], "include_totals": True}  # fmt: skip
    resp = stack.http.post("/v1/query", json=body, headers=auth)
    assert resp.status_code == 200, resp.text
    rows = [(*r["dimensions"], *r["metrics"]) for r in resp.json()["results"]]
    # Google has 2 visitors, direct 1; /blog/a/b is in /blog/** but not in /blog/*.
    assert rows == [
        ("Blog", "Google", 1, 0.5),
        ("Blog deep", "Google", 1, 0.5),
        ("Pricing", "Direct / None", 1, 1.0),
        ("Pricing", "Google", 1, 0.5),
        ("Signup", "Direct / None", 1, 1.0),
        ("Signup", "Google", 1, 0.5),
    ]
    assert resp.json()["totals"]["metrics"] == [3, 1.0]
    # A goal filter applies to each (event, goal) pair: only the Signup rows remain, and the
    # rate's divisor is every visitor of the source (the filter without its goal condition).
    only = {**body, "filters": {"and": [
        {"dimension": "goal", "op": "is", "values": ["Signup"]},
        {"dimension": "page", "op": "starts_with", "values": ["/pricing"]}]}}  # fmt: skip
    resp = stack.http.post("/v1/query", json=only, headers=auth)
    assert [(*r["dimensions"], *r["metrics"]) for r in resp.json()["results"]] == [
        ("Signup", "Direct / None", 1, 1.0),
        ("Signup", "Google", 1, 1.0),  # of Google's visitors on /pricing*, v1 signed up
    ]
    # Without the dimension: the visitors and events completing a selected goal, /blog/x
    # once though it completes two of them.
    events = {"site_id": site, "date_range": DAY, "metrics": ["visitors", "events", "conversion_rate"],
              "filters": {"dimension": "goal", "op": "contains", "values": ["Blog", "Pricing"]}}  # fmt: skip
    resp = stack.http.post("/v1/query", json=events, headers=auth)
    assert resp.json()["results"][0]["metrics"] == [3, 4, 1.0]
    bad = stack.http.post("/v1/query", headers=auth, json={
        "site_id": site, "date_range": DAY, "metrics": ["conversion_rate"]})  # fmt: skip
    assert bad.status_code == 400 and "conversion_rate" in bad.json()["error"], bad.text


def test_session_metrics_under_a_goal_filter_read_raw_rows_whatever_is_rolled(
    stack: Stack,
) -> None:
    """The planner must not send a goal condition to the day rollups (they cannot tell who
    completed a goal): the answer is the same before and after the day is rolled."""
    site, key = _site_with_goals(stack)
    body = {"site_id": site, "date_range": DAY, "filters": {"dimension": "goal", "op": "is",
            "values": ["Signup"]}, "metrics": ["visitors", "sessions", "bounce_rate"]}  # fmt: skip

    def answer() -> list:
        resp = stack.http.post("/v1/query", json=body, headers={"Authorization": f"Bearer {key}"})
        assert resp.status_code == 200, resp.text
        return resp.json()["results"]

    before = answer()
    assert before[0]["metrics"][:2] == [2, 2]  # v1 and v3 signed up, one session each
    rollups.roll_pending(stack.events, date(2026, 11, 4))
    assert answer() == before


def test_funnel_filters_naming_a_goal_are_a_400(stack: Stack) -> None:
    site, key = _site_with_goals(stack)
    body = {"site_id": site, "date_range": DAY, "steps": [{"page_path": "/**"}, {"goal": "Signup"}],
            "filters": {"dimension": "goal", "op": "is", "values": ["Signup"]}}  # fmt: skip
    resp = stack.http.post("/v1/funnel", json=body, headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "BAD_REQUEST" and "filters" in resp.json()["error"]


def test_conversion_rates_are_the_same_once_the_day_is_rolled(stack: Stack) -> None:
    """conversion_rate's divisor is a query of its own that the planner may answer from the
    day rollups (every visitor, or visitors per source): rolled or not, the same rates."""
    site, key = _site_with_goals(stack)
    signup = {"dimension": "goal", "op": "is", "values": ["Signup"]}
    bodies: list[dict[str, Any]] = [{"dimensions": ["goal"]}, {"dimensions": ["goal", "source"]},
              {"dimensions": ["source"], "filters": signup}, {"filters": signup}]  # fmt: skip

    def answers() -> list:
        out = []
        for extra in bodies:
            body = {"site_id": site, "date_range": DAY,
                    "metrics": ["visitors", "conversion_rate"], **extra}  # fmt: skip
            resp = stack.http.post("/v1/query", json=body,
                                   headers={"Authorization": f"Bearer {key}"})  # fmt: skip
            assert resp.status_code == 200, resp.text
            out.append([(*r["dimensions"], *r["metrics"]) for r in resp.json()["results"]])
        return out

    before = answers()
    assert before[0] == [("Pricing", 2, 0.6667), ("Signup", 2, 0.6667), ("Blog", 1, 0.3333),
                         ("Blog deep", 1, 0.3333)]  # fmt: skip
    assert before[2] == [("Direct / None", 1, 1.0), ("Google", 1, 0.5)]
    assert before[3] == [(2, 0.6667)]
    rollups.roll_pending(stack.events, date(2026, 11, 4))
    assert answers() == before
