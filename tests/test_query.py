"""POST /v1/query and AnalyticsService/Query: the contract's shapes, scopes, time zones, paging, 400s.

Every test runs through the real Envoy (JSON) or the real gRPC server, on
DuckDB and, with WELDPULSE_TEST_POSTGRES_URL, PostgreSQL.
"""

import time
from datetime import datetime
from typing import Any

import grpc
import httpx
import pytest
from conftest import Stack, Tenant
from google.protobuf import json_format
from sqlalchemy import text
from weldpulse.config import DuckDBOptions
from weldpulse.domain import Event
from weldpulse.errors import TimedOut, Unavailable
from weldpulse.stats.engine import runner
from weldpulse.storage import accounts, engines, writer
from weldpulse.storage.engines import snapshot
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc

GOOGLE_DE = ("Google", "DE", "Berlin", "mobile", "Chrome", "Android")
DIRECT_AT = ("Direct / None", "AT", "Vienna", "desktop", "Firefox", "Windows")
HN_US = ("Hacker News", "US", "California", "desktop", "Safari", "macOS")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


def event(site: str, visitor: int, ts: str, path: str, attrs: tuple, name: str = "pageview",
          props: dict[str, str] | None = None) -> Event:  # fmt: skip
    source, country, region, device, browser, os_name = attrs
    return Event(site_id=site, ts=at(ts), name=name, visitor_id=visitor, pathname=path,
                 referrer_source=source, country=country, region=region, device_type=device,
                 browser=browser, os=os_name, props=props or {})  # fmt: skip


def seed(stack: Stack, site: str) -> None:
    """Three sessions around Berlin's midnight (UTC+1 in November).

    V1: 2026-11-01 22:30Z `/` → 22:40Z `/pricing` → 22:45Z signup{plan: pro} (Berlin: Nov 1).
    V2: 2026-11-02 23:30Z `/` bounce, direct from AT (UTC: Nov 2; Berlin: Nov 3 00:30).
    V3: 2026-11-03 10:00Z `/blog/x` bounce from Hacker News, US.
    """
    writer.record(stack.events, [
        event(site, 1, "2026-11-01T22:30:00", "/", GOOGLE_DE),
        event(site, 1, "2026-11-01T22:40:00", "/pricing", GOOGLE_DE),
        event(site, 1, "2026-11-01T22:45:00", "/pricing", GOOGLE_DE, "signup", {"plan": "pro"}),
        event(site, 2, "2026-11-02T23:30:00", "/", DIRECT_AT),
        event(site, 3, "2026-11-03T10:00:00", "/blog/x", HN_US),
    ])  # fmt: skip


def query(stack: Stack, key: str, **body: Any) -> httpx.Response:
    return stack.http.post("/v1/query", json=body, headers={"Authorization": f"Bearer {key}"})


def ok(stack: Stack, tenant: Tenant, **body: Any) -> dict[str, Any]:
    body.setdefault("date_range", {"start": "2026-11-01", "end": "2026-11-03"})
    reply = query(stack, tenant.read_key, **body)
    assert reply.status_code == 200, reply.text
    return reply.json()


def rows(answer: dict[str, Any]) -> list[tuple[list[str], list[float]]]:
    return [(r["dimensions"], r["metrics"]) for r in answer["results"]]


@pytest.fixture
def site(stack: Stack, tenant: Tenant) -> str:
    seed(stack, tenant.site_id)
    return tenant.site_id


def test_contract_example_shape(stack: Stack, tenant: Tenant, site: str) -> None:
    reply = query(stack, tenant.read_key, site_id=site,
                  date_range={"start": "2026-11-01", "end": "2026-11-03"},
                  timezone="Europe/Berlin", metrics=["visitors", "pageviews", "bounce_rate"],
                  dimensions=["source", "time:day"],
                  filters={"and": [{"dimension": "country", "op": "is", "values": ["DE", "AT"]},
                                   {"not": {"dimension": "page", "op": "starts_with",
                                            "values": ["/admin"]}}]},
                  order_by=[{"field": "visitors", "desc": True}], limit=100, page_token="",
                  compare={"mode": "previous_period"}, include_totals=True)  # fmt: skip
    assert reply.status_code == 200, reply.text
    # Counts print as whole numbers and a change against 0 as null, straight from Envoy.
    assert '"metrics":[1,2,0]' in reply.text.replace(" ", "")
    assert '"change":[null,null,null]' in reply.text.replace(" ", "")
    body = reply.json()
    assert set(body) == {"results", "totals", "meta"}
    assert body["results"] == [
        # Equal visitors: ties by dimension values ascending.
        {"dimensions": ["Direct / None", "2026-11-03T00:00:00"], "metrics": [1, 1, 1],
         "comparison": {"dimensions": ["Direct / None", "2026-10-31T00:00:00"],
                        "metrics": [0, 0, 0], "change": [None, None, None]}},
        {"dimensions": ["Google", "2026-11-01T00:00:00"], "metrics": [1, 2, 0],
         "comparison": {"dimensions": ["Google", "2026-10-29T00:00:00"], "metrics": [0, 0, 0],
                        "change": [None, None, None]}},
    ]  # fmt: skip
    assert body["totals"] == {
        "metrics": [2, 3, 0.5],
        "comparison": {"dimensions": [], "metrics": [0, 0, 0], "change": [None, None, None]},
    }
    assert body["meta"] == {
        "timezone": "Europe/Berlin",
        "date_range": {"start": "2026-11-01T00:00:00+01:00",
                       "end": "2026-11-03T23:59:59.999999+01:00"},
        "comparison_date_range": {"start": "2026-10-29T00:00:00+01:00",
                                  "end": "2026-10-31T23:59:59.999999+01:00"},
        "total_rows": 2,
        "warnings": [],
    }  # fmt: skip


def test_grpc_answers_as_json(stack: Stack, tenant: Tenant, site: str) -> None:
    request = pb.QueryRequest(
        date_range=pb.QueryDateRange(start="2026-11-01", end="2026-11-03"),
        metrics=["visitors", "events"], dimensions=["event_name"],
    )  # fmt: skip
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as channel:
        stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
        reply = stub.Query(request, metadata=[("authorization", f"Bearer {tenant.read_key}")])
    body = ok(stack, tenant, metrics=["visitors", "events"], dimensions=["event_name"])
    assert (
        json_format.MessageToDict(reply, preserving_proto_field_name=True)["results"]
        == (body["results"])
    )
    assert rows(body) == [(["pageview"], [3, 4]), (["signup"], [1, 1])]
    assert "next_page_token" not in body["meta"] and not reply.meta.HasField("next_page_token")


def test_days_are_local_to_the_time_zone(stack: Stack, tenant: Tenant, site: str) -> None:
    body = {"metrics": ["visitors", "sessions"], "dimensions": ["time:day"]}
    utc = ok(stack, tenant, **body)
    berlin = ok(stack, tenant, timezone="Europe/Berlin", **body)
    assert rows(utc) == [(["2026-11-01T00:00:00"], [1, 1]), (["2026-11-02T00:00:00"], [1, 1]),
                         (["2026-11-03T00:00:00"], [1, 1])]  # fmt: skip
    # Berlin's Nov 1 ends at 23:00Z: V1 is Nov 1, V2 (23:30Z) Nov 3, and Nov 2 is empty.
    assert rows(berlin) == [(["2026-11-01T00:00:00"], [1, 1]), (["2026-11-02T00:00:00"], [0, 0]),
                            (["2026-11-03T00:00:00"], [2, 2])]  # fmt: skip


def test_dst_day_has_25_hours(stack: Stack, tenant: Tenant) -> None:
    """Berlin leaves summer time on 2026-10-25: 02:00-03:00 local happens twice."""
    writer.record(stack.events, [
        event(tenant.site_id, 7, "2026-10-25T00:30:00", "/", GOOGLE_DE),  # 02:30 CEST
        event(tenant.site_id, 8, "2026-10-25T01:30:00", "/", GOOGLE_DE),  # 02:30 CET
    ])  # fmt: skip
    body = ok(stack, tenant, date_range={"start": "2026-10-25", "end": "2026-10-25"},
              timezone="Europe/Berlin", metrics=["visitors"], dimensions=["time:hour"])  # fmt: skip
    labels = [r["dimensions"][0] for r in body["results"]]
    assert len(labels) == 24 and len(set(labels)) == 24  # the repeated hour is one bucket
    assert [
        r["metrics"] for r in body["results"] if r["dimensions"] == ["2026-10-25T02:00:00"]
    ] == [[2]]
    assert body["meta"]["date_range"] == {"start": "2026-10-25T00:00:00+02:00",
                                          "end": "2026-10-25T23:59:59.999999+01:00"}  # fmt: skip


def test_session_metrics_see_any_event_of_the_session(
    stack: Stack, tenant: Tenant, site: str
) -> None:
    # V1's session holds the signup: filtering on it keeps the whole session (3 events, not a bounce).
    f = {"dimension": "event_name", "op": "is", "values": ["signup"]}
    body = ok(stack, tenant, metrics=["sessions", "views_per_session", "bounce_rate", "pageviews"],
              filters=f, dimensions=["entry_page"])  # fmt: skip
    assert rows(body) == [(["/"], [1, 2, 0, 0])]
    props = ok(stack, tenant, metrics=["events"], dimensions=["prop:plan"])
    assert rows(props) == [(["(none)"], [4]), (["pro"], [1])]


def test_time_on_page(stack: Stack, tenant: Tenant, site: str) -> None:
    body = ok(stack, tenant, metrics=["time_on_page", "percentage"], dimensions=["page"],
              order_by=[{"field": "page", "desc": False}])  # fmt: skip
    assert rows(body) == [(["/"], [600.0, 0.6667]), (["/blog/x"], [0, 0.3333]),
                          (["/pricing"], [0, 0.3333])]  # fmt: skip


def test_paging_never_overlaps_or_skips(stack: Stack, tenant: Tenant) -> None:
    paths = ["/B", "/a", "/b", "/\u00c4", "/a/1", "/Z", "/_", "/"]
    writer.record(stack.events, [
        event(tenant.site_id, 100 + i, f"2026-11-02T12:00:0{i}", p, GOOGLE_DE)
        for i, p in enumerate(paths)
    ])  # fmt: skip
    base = {"metrics": ["visitors"], "dimensions": ["page"]}
    whole = ok(stack, tenant, **base)
    # Ties (one visitor each) in code-point order, the same on every engine.
    assert [r["dimensions"][0] for r in whole["results"]] == sorted(paths)
    for limit in (1, 3, 8):
        seen: list[Any] = []
        token = ""
        while True:
            page = ok(stack, tenant, limit=limit, page_token=token, **base)
            assert page["meta"]["total_rows"] == 8
            seen += page["results"]
            token = page["meta"].get("next_page_token", "")
            if not token:
                break
        assert seen == whole["results"]
    first = ok(stack, tenant, limit=3, **base)["meta"]["next_page_token"]
    other = query(stack, tenant.read_key, date_range={"start": "2026-11-01", "end": "2026-11-03"},
                  metrics=["pageviews"], dimensions=["page"], page_token=first)  # fmt: skip
    assert other.status_code == 400 and "page_token" in other.json()["error"]


def test_regex_means_the_same_on_every_engine(stack: Stack, tenant: Tenant) -> None:
    writer.record(stack.events, [
        event(tenant.site_id, 50, "2026-11-02T08:00:00", "/x", GOOGLE_DE, "note", {"k": "a\nb"}),
        event(tenant.site_id, 51, "2026-11-02T08:00:01", "/x", GOOGLE_DE, "note", {"k": "A-B"}),
    ])  # fmt: skip

    def hits(op: str, pattern: str, sensitive: bool = True) -> list[str]:
        f = {"dimension": "prop:k", "op": op, "values": [pattern], "case_sensitive": sensitive}
        body = ok(stack, tenant, metrics=["events"], dimensions=["prop:k"], filters=f,
                  order_by=[{"field": "prop:k", "desc": False}])  # fmt: skip
        return [r["dimensions"][0] for r in body["results"]]

    assert hits("matches", "^a.b$") == []  # RE2's dot does not match a newline; PostgreSQL's would
    assert hits("matches", "^a.b$", sensitive=False) == ["A-B"]
    assert hits("matches", "a\\nb|^A[-_]B$") == ["A-B", "a\nb"]
    assert hits("not_matches", "^[a-z]") == ["A-B"]
    assert hits("contains", "-b", sensitive=False) == ["A-B"]
    assert hits("is", "(none)") == []


BAD = [
    ({"metrics": []}, "metrics"),
    ({"metrics": ["visitors", "visitors"]}, "metrics"),
    ({"metrics": ["nope"]}, "metrics"),
    ({"metrics": ["visitors"] * 11}, "metrics"),
    ({"dimensions": ["nope"]}, "dimensions"),
    ({"dimensions": ["page", "source", "os", "browser"]}, "dimensions"),
    ({"dimensions": ["time:day", "time:hour"]}, "dimensions"),
    ({"metrics": ["bounce_rate"], "dimensions": ["page"]}, "entry_page"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"date_range": {"start": "2026-11-03", "end": "2026-11-01"}}, "before start"),
    ({"date_range": {"start": "yesterday", "end": "2026-11-01"}}, "date_range.start"),
    ({"date_range": {"start": "2026-11-01"}}, "date_range.end"),
    ({"date_range": None}, "date_range"),
    ({"limit": 0}, "limit"),
    ({"limit": 10001}, "limit"),
    ({"page_token": "garbage!"}, "page_token"),
    ({"order_by": [{"field": "pageviews"}]}, "order_by[0].field"),
    ({"compare": {"mode": "lastweek"}}, "compare.mode"),
    ({"compare": {"mode": "custom"}}, "compare.date_range"),
    ({"dimensions": ["time:minute"], "date_range": {"start": "2026-01-01", "end": "2026-11-01"}},
     "10000"),
    ({"dimensions": ["time:hour"], "compare": {"mode": "custom", "date_range": {
        "start": "2020-01-01", "end": "2026-01-01"}}}, "compare.date_range"),
    ({"filters": {"dimension": "page", "op": "like", "values": ["/"]}}, "filters.op"),
    ({"filters": {"dimension": "time:day", "op": "is", "values": ["x"]}}, "filters.dimension"),
    ({"filters": {"dimension": "nope", "op": "is", "values": ["x"]}}, "filters.dimension"),
    ({"filters": {"dimension": "page", "op": "is", "values": []}}, "filters.values"),
    ({"filters": {"dimension": "page", "op": "is", "values": ["x"] * 101}}, "100"),
    ({"filters": {"dimension": "page", "op": "is", "values": ["x" * 2001]}}, "2000 bytes"),
    ({"filters": {"dimension": "page", "op": "matches", "values": ["x" * 257]}}, "256 bytes"),
    ({"filters": {"dimension": "page", "op": "matches", "values": ["(unclosed"]}}, "RE2"),
    ({"filters": {"dimension": "page", "op": "matches", "values": ["\\d+"]}}, "\\d"),
    ({"filters": {"dimension": "page", "op": "matches", "values": ["\\bx"]}}, "\\b"),
    ({"filters": {"dimension": "page", "op": "matches", "values": ["(?i)x"]}}, "flags"),
    ({"filters": {"and": []}}, "filters"),
    ({"filters": {"not": {"not": {"not": {"not": {"not": {"dimension": "page", "op": "is",
                                                              "values": ["/"]}}}}}}}, "5 levels"),
    ({"filters": {"or": [{"dimension": "page", "op": "is", "values": ["/"]}] * 21}}, "20"),
    ({"filters": {"and": [{"or": [{"dimension": "page", "op": "is", "values": ["/"]}] * 11}] * 2}},
     "20 conditions"),
]  # fmt: skip


@pytest.mark.parametrize("override,named", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_400_naming_the_field(
    stack: Stack, tenant: Tenant, override: dict[str, Any], named: str
) -> None:
    body: dict[str, Any] = {"date_range": {"start": "2026-11-01", "end": "2026-11-03"},
                            "metrics": ["visitors"]}  # fmt: skip
    body.update(override)
    body = {k: v for k, v in body.items() if v is not None}
    reply = query(stack, tenant.read_key, **body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["code"] == "BAD_REQUEST"
    assert named in reply.json()["error"], reply.json()["error"]


def test_foreign_site_and_unknown_field(stack: Stack, tenant: Tenant) -> None:
    base = {"date_range": {"start": "2026-11-01", "end": "2026-11-03"}, "metrics": ["visitors"]}
    foreign = query(stack, tenant.read_key, site_id=stack.ids["b_site"], **base)
    assert foreign.status_code == 400 and "site_id" in foreign.json()["error"]
    assert query(stack, "ak_live_nope", **base).status_code == 401
    raw = stack.http.post("/v1/query", content=b"{not json",
                          headers={"Authorization": f"Bearer {tenant.read_key}"})  # fmt: skip
    assert raw.status_code == 400


def test_scopes_of_event_and_session_metrics(stack: Stack, tenant: Tenant) -> None:
    """A session starting in range counts by any of its events, also one after the range's end;
    event metrics count only events in range. A session without pageviews has entry page (none)."""
    writer.record(stack.events, [
        event(tenant.site_id, 9, "2026-11-03T23:50:00", "/late", HN_US, "open"),
        event(tenant.site_id, 9, "2026-11-04T00:10:00", "/late", HN_US, "late"),
    ])  # fmt: skip
    late = {"dimension": "event_name", "op": "is", "values": ["late"]}
    body = ok(stack, tenant, metrics=["sessions", "events", "visitors"], filters=late)
    assert rows(body) == [([], [1, 0, 0])]
    entry = ok(stack, tenant, metrics=["sessions", "avg_duration"], dimensions=["entry_page"],
               filters={"dimension": "entry_page", "op": "is", "values": ["(none)"]})  # fmt: skip
    assert rows(entry) == [(["(none)"], [1, 1200.0])]
    nothing = ok(stack, tenant, metrics=["visitors", "bounce_rate", "percentage"],
                 date_range={"start": "2020-01-01", "end": "2020-01-01"})  # fmt: skip
    assert rows(nothing) == [([], [0, 0, 0])]


def test_prop_keys_with_json_path_characters(stack: Stack, tenant: Tenant) -> None:
    props = {"a.b": "dot", "c/d": "slash", 'q"k': "quote", "t~1": "tilde"}
    writer.record(stack.events, [
        event(tenant.site_id, 60, "2026-11-02T09:00:00", "/p", GOOGLE_DE, "x", props),
    ])  # fmt: skip
    for key, value in props.items():
        body = ok(stack, tenant, metrics=["events"], dimensions=[f"prop:{key}"])
        assert rows(body) == [([value], [1])], key


def test_half_hour_zone_and_comparison_by_position(stack: Stack, tenant: Tenant) -> None:
    """Asia/Kolkata is UTC+05:30: 2026-11-02T18:45Z is 00:15 on Nov 3 there."""
    writer.record(stack.events, [
        event(tenant.site_id, 70, "2026-11-02T18:45:00", "/", GOOGLE_DE),
        event(tenant.site_id, 71, "2026-11-01T18:00:00", "/", GOOGLE_DE),
    ])  # fmt: skip
    body = ok(stack, tenant, timezone="Asia/Kolkata", metrics=["visitors"],
              dimensions=["time:day"], date_range={"start": "2026-11-03", "end": "2026-11-03"},
              compare={"mode": "previous_period"})  # fmt: skip
    assert body["results"] == [{
        "dimensions": ["2026-11-03T00:00:00"], "metrics": [1],
        "comparison": {"dimensions": ["2026-11-02T00:00:00"], "metrics": [0], "change": [None]},
    }]  # fmt: skip
    assert body["meta"]["date_range"]["start"] == "2026-11-03T00:00:00+05:30"
    custom = ok(stack, tenant, timezone="Asia/Kolkata", metrics=["visitors"],
                dimensions=["time:day"], date_range={"start": "2026-11-03", "end": "2026-11-03"},
                compare={"mode": "custom",
                         "date_range": {"start": "2026-11-01", "end": "2026-11-01"}})  # fmt: skip
    assert custom["results"][0]["comparison"] == {
        "dimensions": ["2026-11-01T00:00:00"],
        "metrics": [1],
        "change": [0.0],
    }


def test_past_the_time_budget_is_504(
    stack: Stack, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "BUDGET_SECONDS", 0.0)
    reply = query(stack, tenant.read_key, metrics=["visitors"],
                  date_range={"start": "2026-11-01", "end": "2026-11-03"})  # fmt: skip
    assert reply.status_code == 504
    assert reply.json()["code"] == "GATEWAY_TIMEOUT"
    assert "time budget of 0 s" in reply.json()["error"]


def test_a_statement_past_the_budget_is_cancelled_in_the_database(stack: Stack) -> None:
    slow = (
        "SELECT pg_sleep(20)"
        if stack.engine == "postgres"
        else "SELECT sum(i * i) FROM range(200000000000) t(i)"
    )
    began = time.monotonic()
    with snapshot(stack.events) as conn, pytest.raises(TimedOut):
        runner.Budget(conn, 0.3).execute(text(slow))
    assert time.monotonic() - began < 5


def test_a_statement_past_duckdbs_memory_limit_is_503_not_oom() -> None:
    """The server's DuckDB has a memory limit (WELDPULSE_DUCKDB_MEMORY_LIMIT): a statement
    needing more, with nowhere to spill, fails with an error saying so (HTTP 503)."""
    engine = engines.connect("duckdb:///:memory:", DuckDBOptions("8MB", 1, "").config())
    big = "SELECT i % 1000000 AS k, list(i) FROM range(3000000) t(i) GROUP BY k LIMIT 1"
    try:
        with snapshot(engine) as conn, pytest.raises(Unavailable, match="MEMORY_LIMIT"):
            runner.Budget(conn, 30).execute(text(big))
    finally:
        engine.dispose()


def test_duckdb_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert DuckDBOptions.from_env().config() == {"memory_limit": "512MB"}
    monkeypatch.setenv("WELDPULSE_DUCKDB_MEMORY_LIMIT", "2GB")
    monkeypatch.setenv("WELDPULSE_DUCKDB_THREADS", "4")
    monkeypatch.setenv("WELDPULSE_DUCKDB_TEMP_DIRECTORY", "/var/tmp/wp")
    assert DuckDBOptions.from_env().config() == {
        "memory_limit": "2GB", "threads": 4, "temp_directory": "/var/tmp/wp",
    }  # fmt: skip


def test_exact_halves_round_away_from_zero(stack: Stack, tenant: Tenant) -> None:
    """5 pageviews over 8 sessions is 0.625 exactly: 0.63 on every engine (not float's 0.62)."""
    writer.record(stack.events, [
        event(tenant.site_id, 80 + i, "2026-11-02T12:00:00", "/", GOOGLE_DE,
              "pageview" if i < 5 else "ping")
        for i in range(8)
    ])  # fmt: skip
    body = ok(stack, tenant, metrics=["views_per_session", "sessions"])
    assert rows(body) == [([], [0.63, 8])]


def test_equal_timestamps_pair_in_receive_order(stack: Stack, tenant: Tenant) -> None:
    """30 pageviews of one session at one instant, then /next 10 s later: each one's next
    pageview is the one received after it (0 s), the last received one's is /next (10 s), on
    every engine, whatever order a sort by timestamp would leave the ties in."""
    tied = [f"/t{i:02d}" for i in range(30, 0, -1)]
    writer.record(stack.events, [
        *(event(tenant.site_id, 90, "2026-11-02T12:00:00", path, GOOGLE_DE) for path in tied),
        event(tenant.site_id, 90, "2026-11-02T12:00:10", "/next", GOOGLE_DE),
    ])  # fmt: skip
    body = ok(stack, tenant, metrics=["time_on_page"], dimensions=["page"], limit=100,
              order_by=[{"field": "time_on_page", "desc": True}])  # fmt: skip
    assert rows(body)[0] == (["/t01"], [10])
    assert all(metrics == [0] for _, metrics in rows(body)[1:])


def test_default_zone_is_the_sites(stack: Stack, tenant: Tenant, site: str) -> None:
    with stack.metadata.begin() as conn:
        accounts.update_site(conn, site, timezone="Europe/Berlin")
    body = {"metrics": ["visitors"], "dimensions": ["time:day"]}
    assert ok(stack, tenant, site_id=site, **body)["meta"]["timezone"] == "Europe/Berlin"
    assert rows(ok(stack, tenant, site_id=site, **body))[1] == (["2026-11-02T00:00:00"], [0])
    # Without site_id the project's sites are read in UTC; an explicit zone always wins.
    assert ok(stack, tenant, **body)["meta"]["timezone"] == "UTC"
    assert ok(stack, tenant, site_id=site, timezone="UTC", **body)["meta"]["timezone"] == "UTC"
