"""POST /v1/query through Envoy equals the plain-Python reference (query_reference.py) exactly.

Hypothesis draws random queries (1-4 metrics, 0-3 dimensions with at most one
time:*, nested filters, five time zones incl. DST days and half-hour zones,
date and timestamp ranges, compare, totals, limits 1-7 with every page
walked) over the generated data set (query_data.py), on each engine, with the
day rollups unrolled, partly rolled and fully rolled. Invalid queries must be
400s naming the field. WELDPULSE_QUERY_CASES sets the examples per state.
"""

import math
import os
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import query_reference as ref
from conftest import Stack, Tenant
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from query_data import DataSet, load
from weldpulse.storage import accounts, rollups

CASES = int(os.environ.get("WELDPULSE_QUERY_CASES", "40"))
ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe"]
NEW_DIMS = ("hostname", "referrer", "channel", "city", *ref.UTM)  # columns that may not exist yet
PATTERNS = ["^/docs", "ü", "Blog", "a|b", "^$", "[0-9]", "^Go+gle$", "e.*l", "^/$", r"\.io"]
SETTINGS = settings(max_examples=CASES, deadline=None, derandomize="WELDPULSE_QUERY_CASES" not in os.environ,
                    suppress_health_check=list(HealthCheck))  # fmt: skip


class Api:
    """The data set, which dimensions the server supports, and the filter values to draw."""

    def __init__(self, stack: Stack, data: DataSet) -> None:
        self.stack, self.data = stack, data
        self.key, self.calls = data.key, 0
        self.dims = [d for d in (*ref.EVENT_DIMS, *ref.SESSION_DIMS, "prop:plan", "prop:n")
                     if d not in NEW_DIMS or self.supported(d)]  # fmt: skip
        ref.sessionize(data.events)
        self.values = {d: sorted({ref.value(e, d) for e in data.events})
                       for d in self.dims if d != "goal"}  # fmt: skip
        self.values["goal"] = sorted({g["name"] for gs in data.goals.values() for g in gs})

    def post(self, body: dict) -> Any:
        self.calls += 1
        if self.calls % 90 == 0:  # a fresh key before the per-key limit (100 a minute) bites
            with self.stack.metadata.begin() as conn:
                self.key = accounts.create_api_key(conn, self.data.project, ["stats:read"])["key"]
        headers = {"Authorization": f"Bearer {self.key}"}
        return self.stack.http.post("/v1/query", json=body, headers=headers)

    def supported(self, dim: str) -> bool:
        day = {"start": "2026-11-20", "end": "2026-11-20"}
        resp = self.post({"metrics": ["visitors"], "dimensions": [dim], "date_range": day})
        assert resp.status_code in (200, 400), resp.text
        return resp.status_code == 200

    def reference(self, req: dict) -> dict:
        return ref.query(self.data.events, req, self.data.sites, self.data.goals)


@pytest.fixture(scope="module")
def data(stack: Stack) -> DataSet:
    return load(stack)


def test_data_set_has_the_hard_cases(data: DataSet) -> None:
    """The generated events hold what the reference must get right (else the tests prove little)."""
    sessions = ref.sessionize(data.events)
    berlin = ZoneInfo("Europe/Berlin")
    crossing = lambda tz: [s for s in sessions if ref.local(s.start, tz).date()  # noqa: E731
                           != ref.local(s.events[-1]["ts"], tz).date()]  # fmt: skip
    assert len(crossing(ZoneInfo("UTC"))) >= 3 and len(crossing(berlin)) >= 3
    assert sum(s.bounce for s in sessions) >= 20
    assert sum(s.events[-1]["name"] != "pageview" and s.pageviews > 0 for s in sessions) >= 10
    ties = {(e["site_id"], e["visitor_id"], e["ts"]) for e in data.events}
    assert len(data.events) - len(ties) >= 50
    custom = [e for e in data.events if e["name"] != "pageview"]
    assert any("plan" in e["props"] for e in custom) and any(
        "plan" not in e["props"] for e in custom
    )
    days = {ref.local(e["ts"], berlin).date() for e in data.events}
    assert {date(2026, 3, 29), date(2026, 10, 25), date(2024, 2, 29)} <= days
    assert len({ref.value(e, "utm_campaign") for e in data.events}) >= 3
    assert {"US", "DE", "NL", ""} == {e["country"] for e in data.events}
    goals = lambda e: [g["name"] for g in data.goals[e["site_id"]] if ref.completes(e, g)]  # noqa: E731
    assert sum(len(goals(e)) >= 3 for e in data.events) >= 50  # events completing several
    # `*` stops at `/`, `**` does not: pageviews in /docs/**/x but not in /docs/*.
    assert any("Docs deep" in goals(e) and "Docs" not in goals(e) for e in data.events)
    assert any("Docs" in goals(e) for e in data.events)
    assert any(goals(e) == [] for e in data.events)


@pytest.fixture(scope="module")
def api(stack: Stack, data: DataSet) -> Api:
    day = {"start": "2026-11-20", "end": "2026-11-20"}
    probe = stack.http.post("/v1/query", json={"metrics": ["visitors"], "date_range": day},
                            headers={"Authorization": f"Bearer {stack.keys['a']}"})  # fmt: skip
    if probe.status_code == 404:
        pytest.skip("POST /v1/query is not in this build yet (branch q-engine not merged)")
    return Api(stack, data)


# ---- strategies ---------------------------------------------------------------------------


def stamp(draw: Any, day: date, tz: str) -> str:
    wall = datetime.combine(day, datetime.min.time()) + timedelta(
        minutes=draw(st.integers(0, 3 * 24 * 60 - 1)), seconds=draw(st.sampled_from([0, 0, 59])))  # fmt: skip
    kind = draw(st.sampled_from(["Z", "offset", "local"]))
    if kind == "Z":
        return wall.isoformat() + "Z"
    if kind == "offset":
        return wall.isoformat() + draw(st.sampled_from(["+05:30", "-04:00", "+01:00", "+10:30"]))
    zone = ZoneInfo(tz)
    # Local times DST skips or repeats have no single reading in the contract: not drawn.
    assume(
        ref.exists(wall, zone) and ref.to_utc(wall, zone) == ref.to_utc(wall.replace(fold=1), zone)
    )
    return wall.isoformat()


@st.composite
def date_ranges(draw: Any, windows: list, tz: str) -> dict:
    first, days = draw(st.sampled_from(windows))
    start = first + timedelta(days=draw(st.integers(-1, days - 1)))
    if draw(st.booleans()):
        end = start + timedelta(days=draw(st.integers(0, 2)))
        return {"start": start.isoformat(), "end": end.isoformat()}
    a, b = stamp(draw, start, tz), stamp(draw, start, tz)
    a, b = sorted([a, b], key=lambda v: ref.instant(v, ZoneInfo(tz), False, "date_range"))
    if draw(st.integers(0, 3)) == 0:  # a date at one end, a timestamp at the other
        end = (start + timedelta(days=draw(st.integers(0, 2)))).isoformat()
        mixed = (
            {"start": start.isoformat(), "end": b}
            if draw(st.booleans())
            else {"start": a, "end": end}
        )
        zone = ZoneInfo(tz)
        assume(
            ref.instant(mixed["start"], zone, False, "")
            <= ref.instant(mixed["end"], zone, True, "")
        )
        return mixed
    return {"start": a, "end": b}


def conditions(api: Api, dims: list[str] | None = None) -> st.SearchStrategy:
    """Filters on `dims` only (default: any dimension)."""

    @st.composite
    def leaf(draw: Any) -> dict:
        dim = draw(st.sampled_from(dims or api.dims))
        op = draw(st.sampled_from(ref.OPS))
        if op.endswith("matches"):
            values = draw(st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=2))
        else:
            pool = st.sampled_from((api.values[dim] or ["(none)"]) + ["(none)", "x", "DE"])
            values = draw(st.lists(pool, min_size=1, max_size=3))
            if op in ("contains", "not_contains", "starts_with"):  # prefixes, to hit more
                values = [v[: draw(st.integers(1, 4))] for v in values]
        cond = {"dimension": dim, "op": op, "values": values}
        if draw(st.booleans()):
            cond["case_sensitive"] = draw(st.booleans())
        return cond

    return st.recursive(
        leaf(),
        lambda inner: st.one_of(
            st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
            st.builds(lambda x: {"not": x}, inner),
        ),
        max_leaves=4,
    ).filter(lambda e: depth(e) <= 3)


def depth(e: dict) -> int:
    if "and" in e or "or" in e:
        return 1 + max(depth(x) for x in e.get("and") or e["or"])
    return 1 + depth(e["not"]) if "not" in e else 1


# Dimensions the planner reads from attr_days (storage.schema.ATTR_KINDS), as query names.
ATTR_SHAPES = [("page",), ("hostname",), ("source",), ("referrer",), ("channel",),
               ("country",), ("region",), ("city",), ("device_type",), ("browser",), ("os",),
               *((u,) for u in ref.UTM), ("country", "region"), ("device_type", "browser", "os")]  # fmt: skip


@st.composite
def queries(draw: Any, api: Api) -> dict:
    kinds = draw(st.sampled_from(["event", "event", "session", "both"]))
    pool_m = {"event": ref.EVENT_METRICS, "session": ref.SESSION_METRICS}.get(
        kinds, ref.EVENT_METRICS + ref.SESSION_METRICS
    )
    metrics = draw(st.lists(st.sampled_from(pool_m), min_size=1, max_size=4, unique=True))
    session = any(m in ref.SESSION_METRICS for m in metrics)
    pool = [d for d in api.dims if not (session and ref.is_event_dim(d))]
    # A quarter: an attr_days shape (one attribute or combo, no time, filters on it alone),
    # which random dimensions and filters rarely make.
    attrs = [k for k in ATTR_SHAPES if set(k) <= set(pool)] if not draw(st.integers(0, 3)) else []
    dims = list(draw(st.permutations(draw(st.sampled_from(attrs))))) if attrs else draw(
        st.lists(st.sampled_from(pool), max_size=3, unique=True)
    )  # fmt: skip
    tz = draw(st.sampled_from([None, *ZONES]))
    site = draw(st.sampled_from([None, *api.data.sites]))
    req: dict[str, Any] = {"metrics": metrics}
    if site:
        req["site_id"] = site
    if tz:
        req["timezone"] = tz
    zone = tz or (api.data.sites[site] if site else "UTC")
    req["date_range"] = rng = draw(date_ranges(api.data.windows, zone))
    if attrs and draw(st.integers(0, 2)):  # whole days, so rolled days meet multi-day visitors
        first, days = draw(st.sampled_from(api.data.windows))
        start = first + timedelta(days=draw(st.integers(0, days - 2)))
        end = start + timedelta(days=draw(st.integers(1, days - 1)))
        req["date_range"] = rng = {"start": start.isoformat(), "end": end.isoformat()}
    if not attrs and draw(st.integers(0, 3)) and len(dims) < 3:
        unit = draw(st.sampled_from(["hour", "day", "day", "week", "month", "minute"]))
        main = ref.resolve(rng, ZoneInfo(zone), "date_range")
        if unit == "minute" and main.hi - main.lo > timedelta(hours=3):  # ≤ 180 buckets
            lo = main.lo + timedelta(minutes=draw(st.integers(0, 24 * 60)))
            hi = lo + timedelta(minutes=draw(st.integers(0, 180)), seconds=draw(st.integers(0, 59)))
            req["date_range"] = rng = {"start": lo.isoformat() + "Z", "end": hi.isoformat() + "Z"}
        dims.insert(draw(st.integers(0, len(dims))), f"time:{unit}")
    req["dimensions"] = dims
    if draw(st.integers(0, 2) if attrs else st.booleans()) == 1:  # attrs: a third filtered
        req["filters"] = draw(conditions(api, dims if attrs else None))
    if draw(st.booleans()):
        fields = draw(
            st.lists(st.sampled_from(metrics + dims), min_size=1, max_size=2, unique=True)
        )
        req["order_by"] = [{"field": f, "desc": draw(st.booleans())} for f in fields]
    # previous_period/year_over_year of a range mixing a date and a timestamp: contract silent.
    kinds = {len(v) == 10 for v in rng.values()}
    modes = [None, None, "custom"] + (["previous_period"] if len(kinds) == 1 else [])
    mode = draw(st.sampled_from(modes + (["year_over_year"] if kinds == {True} else [])))
    if mode == "custom":
        req["compare"] = {"mode": mode, "date_range": draw(date_ranges(api.data.windows, zone))}
    elif mode:
        req["compare"] = {"mode": mode}
    req["include_totals"] = draw(st.booleans())
    req["limit"] = draw(st.integers(1, 7))
    return req


LOCAL_EVENT_METRICS = ["visitors", "pageviews", "percentage"]


@st.composite
def local_queries(draw: Any, api: Api) -> dict:
    """Queries the slot rollup answers (plan.py "local"): a local day, week or month bucket
    (or none), no filter, ranges of local dates, of slot-aligned instants or of any instant."""
    pool = draw(st.sampled_from([LOCAL_EVENT_METRICS, ref.SESSION_METRICS]))
    metrics = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
    tz = draw(st.sampled_from(ZONES[1:]))
    req: dict[str, Any] = {"metrics": metrics, "timezone": tz}
    if draw(st.booleans()):
        req["site_id"] = draw(st.sampled_from(list(api.data.sites)))
    rng = draw(date_ranges(api.data.windows, tz))
    if draw(st.booleans()):  # UTC instants on 15-minute slot edges, as local midnights are
        first, days = draw(st.sampled_from(api.data.windows))
        lo = datetime.combine(first, datetime.min.time()) + 15 * timedelta(
            minutes=draw(st.integers(-96, 96 * days)))  # fmt: skip
        hi = lo + 15 * timedelta(minutes=draw(st.integers(1, 96 * 3))) - timedelta(microseconds=1)
        rng = {"start": lo.isoformat() + "Z", "end": hi.isoformat() + "Z"}
    req["date_range"] = rng
    unit = draw(st.sampled_from(["day", "day", "week", "month", None]))
    req["dimensions"] = [f"time:{unit}"] if unit else []
    if draw(st.booleans()):
        req["compare"] = {"mode": "custom", "date_range": draw(date_ranges(api.data.windows, tz))}
    req["include_totals"] = draw(st.booleans())
    req["limit"] = draw(st.integers(1, 7))
    return req


GOAL_METRICS = ["visitors", "events", "pageviews", "conversion_rate", "percentage", "time_on_page"]


@st.composite
def goal_queries(draw: Any, api: Api) -> dict:
    """Queries with `goal` as a dimension and/or in the filter (conversions-api.md)."""
    in_dims = draw(st.booleans())
    in_filter = not in_dims or draw(st.booleans())
    pool_m = GOAL_METRICS + ([] if in_dims else ["sessions", "bounce_rate"])
    metrics = draw(st.lists(st.sampled_from(pool_m), min_size=1, max_size=3, unique=True))
    if draw(st.booleans()) and "conversion_rate" not in metrics:
        metrics.append("conversion_rate")
    session = any(m in ref.SESSION_METRICS for m in metrics)
    pool = [d for d in api.dims if d != "goal" and not (session and ref.is_event_dim(d))]
    dims = draw(st.lists(st.sampled_from(pool), max_size=1))
    if draw(st.integers(0, 3)) == 0:
        dims.append(draw(st.sampled_from(["time:day", "time:hour"])))
    if in_dims:
        dims.insert(draw(st.integers(0, len(dims))), "goal")
    site = draw(st.sampled_from([None, *api.data.sites]))
    tz = draw(st.sampled_from([None, *ZONES]))
    zone = tz or (api.data.sites[site] if site else "UTC")
    req: dict[str, Any] = {"metrics": metrics, "dimensions": dims,
                           "date_range": draw(date_ranges(api.data.windows, zone)),
                           "include_totals": draw(st.booleans()), "limit": draw(st.integers(1, 7))}  # fmt: skip
    if site:
        req["site_id"] = site
    if tz:
        req["timezone"] = tz
    parts = []
    if in_filter:
        for _ in range(draw(st.integers(1, 2))):
            op = draw(st.sampled_from(ref.OPS))
            names = api.values["goal"] + ["Sign", "^Do", "page$", "docs", "p.g"]
            values = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3))
            if op.endswith("matches"):
                values = [
                    v if v.startswith(("^", "(")) or v.endswith("$") else "^" + v for v in values
                ]
            cond = {"dimension": "goal", "op": op, "values": values}
            if draw(st.booleans()):
                cond["case_sensitive"] = draw(st.booleans())
            parts.append(cond)
    if draw(st.booleans()):
        parts.append(draw(conditions(api).filter(lambda e: not ref.has_goal(e))))
    if parts:
        req["filters"] = parts[0] if len(parts) == 1 and draw(st.booleans()) else {"and": parts}
    if draw(st.integers(0, 3)) == 0:
        req["compare"] = {"mode": "custom", "date_range": draw(date_ranges(api.data.windows, zone))}
    return req


# ---- comparing ----------------------------------------------------------------------------


def close(m: str, got: Any, exact: Any) -> bool:
    """Equal to the exact value rounded to the contract's decimals (either way at a half)."""
    return any(got == ref.rounded(m, exact, mode) for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN))


def same_block(metrics: list[str], got: dict, want: dict) -> list[str]:
    errs = [f"{m}: {g} != {ref.rounded(m, w)}" for m, g, w in
            zip(metrics, got["metrics"], [want["metrics"][m] for m in metrics], strict=True)
            if not close(m, g, w)]  # fmt: skip
    if "comparison" in want:
        c, wc = got.get("comparison") or {}, want["comparison"]
        if "dimensions" in wc and c.get("dimensions") != wc["dimensions"]:
            errs.append(f"comparison.dimensions {c.get('dimensions')} != {wc['dimensions']}")
        errs += [
            "comparison." + x for x in same_block(metrics, {"metrics": c.get("metrics", [])}, wc)
        ]
        for i, m in enumerate(metrics):
            options = {ref.change(m, want["metrics"][m], wc["metrics"][m], mode, exact)
                       for mode in (ROUND_HALF_UP, ROUND_HALF_EVEN) for exact in (False, True)}  # fmt: skip
            if (c.get("change") or [None] * len(metrics))[i] not in options:
                errs.append(f"change.{m}: {c.get('change')} not in {options}")
    return errs


def check(api: Api, req: dict) -> None:
    try:
        want = api.reference(req)
    except ref.QueryError as err:
        resp = api.post(req)
        assert resp.status_code == 400, f"{req}\nreference: 400 {err}\nengine: {resp.text}"
        return
    rows = want["results"]
    req = {**req, "limit": max(req.get("limit", 100), math.ceil(len(rows) / 12))}  # ≤ 12 pages
    got: list[dict] = []
    token = None
    while True:
        resp = api.post({**req, **({"page_token": token} if token else {})})
        assert resp.status_code == 200, f"{req}\n{resp.text}"
        page = resp.json()
        meta = page["meta"]
        for k in ("timezone", "date_range", "comparison_date_range", "total_rows"):
            assert meta.get(k) == want["meta"].get(k), (
                f"{req}\nmeta.{k}: {meta.get(k)} != {want['meta'].get(k)}"
            )
        assert len(page.get("results", [])) <= req["limit"]
        got += page.get("results", [])
        if "totals" in want:
            errs = same_block(req["metrics"], page.get("totals", {"metrics": []}), want["totals"])
            assert not errs, f"{req}\ntotals: {errs}"
        token = meta.get("next_page_token")
        if not token:
            break
        assert len(got) < len(rows), f"{req}\na next page after all {len(rows)} rows"
    keys = lambda rs: [r["dimensions"] for r in rs]  # noqa: E731
    assert keys(got) == keys(rows), f"{req}\nrows {keys(got)}\n!= reference {keys(rows)}"
    for g, w in zip(got, rows, strict=True):
        errs = same_block(req["metrics"], g, w)
        shaped = ref.shape({"results": [w], "meta": {}}, req["metrics"])["results"][0]
        assert not errs, f"{req}\nrow {w['dimensions']}: {errs}\nengine {g}\nreference {shaped}"


# ---- tests --------------------------------------------------------------------------------


LOCAL_CASES = int(os.environ.get("WELDPULSE_LOCAL_CASES", "15"))


def run(api: Api) -> None:
    @SETTINGS
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        check(api, data.draw(queries(api)))

    @settings(SETTINGS, max_examples=LOCAL_CASES)
    @given(st.data())
    def local(data: st.DataObject) -> None:
        check(api, data.draw(local_queries(api)))

    prop()
    local()


def test_answers_equal_reference_unrolled(api: Api) -> None:
    run(api)


GOAL_CASES = int(os.environ.get("WELDPULSE_GOAL_CASES", "30"))


def test_goal_answers_equal_reference(api: Api) -> None:
    """`goal` rows, goal filters and conversion_rate equal the reference (conversions-api.md)."""

    @settings(SETTINGS, max_examples=GOAL_CASES)
    @given(st.data())
    def prop(data: st.DataObject) -> None:
        check(api, data.draw(goal_queries(api)))

    prop()


def test_answers_equal_reference_partly_rolled(api: Api) -> None:
    rollups.roll_pending(api.stack.events, date(2026, 3, 8))  # up to New York's spring change
    run(api)


def test_answers_equal_reference_fully_rolled(api: Api) -> None:
    rollups.roll_pending(api.stack.events, date(2026, 11, 30))
    run(api)


INVALID = [
    ({"metrics": ["bounce_rate"], "dimensions": ["page"]}, ["bounce_rate", "page"]),
    ({"metrics": ["sessions"], "dimensions": ["prop:plan"]}, ["sessions", "prop:plan"]),
    ({"metrics": ["visits"]}, ["visits"]),
    ({"metrics": ["visitors", "visitors"]}, ["metrics"]),
    ({"metrics": ["visitors"] * 0}, ["metrics"]),
    ({"metrics": ["visitors"], "dimensions": ["planet"]}, ["planet"]),
    ({"metrics": ["visitors"], "dimensions": ["time:day", "time:hour"]}, ["time"]),
    ({"metrics": ["visitors"], "dimensions": ["page", "os", "browser", "country"]}, ["dimensions"]),
    ({"metrics": ["visitors"], "timezone": "Mars/Olympus"}, ["timezone"]),
    ({"metrics": ["visitors"], "date_range": {"start": "2026-11-21", "end": "2026-11-20"}}, ["date_range"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "like", "values": ["/"]}}, ["op"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "matches", "values": ["(a)\\1"]}}, ["values"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "matches", "values": ["(?=a)"]}}, ["values"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "is", "values": ["/"] * 101}}, ["100"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "time:day", "op": "is", "values": ["x"]}}, ["time:day"]),
    ({"metrics": ["visitors"], "filters": {"not": {"not": {"not": {"not": {"not": {
        "dimension": "page", "op": "is", "values": ["/"]}}}}}}}, ["5"]),
    ({"metrics": ["visitors"], "dimensions": ["time:minute"],
      "date_range": {"start": "2026-11-20", "end": "2026-11-27"}}, ["buckets"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "matches", "values": ["a" * 257]}}, ["256"]),
    ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "is", "values": ["a" * 2001]}}, ["2000"]),
    ({"metrics": ["visitors"], "filters": {"or": [{"dimension": "page", "op": "is", "values": ["/"]}] * 21}}, ["20"]),
    ({"metrics": ["visitors"], "compare": {"mode": "last_week"}}, ["compare"]),
    ({"metrics": ["visitors"], "limit": 0}, ["limit"]),
    ({"metrics": ["visitors"], "limit": 10_001}, ["limit"]),
    ({"metrics": ["visitors"], "order_by": [{"field": "pageviews", "desc": True}]}, ["order_by"]),
    ({"metrics": ["conversion_rate"], "dimensions": ["page"]}, ["conversion_rate", "goal"]),
    ({"metrics": ["visitors"], "filters": {"or": [{"dimension": "goal", "op": "is", "values": ["Docs"]},
                                                  {"dimension": "page", "op": "is", "values": ["/"]}]}}, ["goal", "or"]),
    ({"metrics": ["visitors"], "filters": {"not": {"dimension": "goal", "op": "is", "values": ["Docs"]}}}, ["goal", "not"]),
    ({"metrics": ["visitors"], "filters": {"and": [{"and": [
        {"dimension": "goal", "op": "is", "values": ["Docs"]}]}]}}, ["goal", "top-level"]),
    ({"metrics": ["sessions"], "dimensions": ["goal"]}, ["sessions", "goal"]),
]  # fmt: skip


@pytest.mark.parametrize(("req", "names"), INVALID)
def test_invalid_queries_are_400s_naming_the_field(api: Api, req: dict, names: list[str]) -> None:
    body = {"date_range": {"start": "2026-11-20", "end": "2026-11-20"}, **req}
    with pytest.raises(ref.QueryError):
        api.reference(body)
    resp = api.post(body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "BAD_REQUEST"
    assert all(n in resp.json()["error"] for n in names), resp.json()


def test_same_timestamp_pageviews_keep_their_batch_order(stack: Stack, tenant: Tenant) -> None:
    """Ties keep receipt order (query-api.md), so time on page goes to the right page."""
    at = "2026-11-02T10:00:00Z"
    events = [{"timestamp": ts, "name": "pageview", "url": f"https://{tenant.domain}{path}",
               "visitor_id": "tie", "user_agent": "", "ip": ""}
              for ts, path in ((at, "/a"), (at, "/b"), ("2026-11-02T10:01:00Z", "/c"))]  # fmt: skip
    headers = {"Authorization": f"Bearer {tenant.write_key}"}
    resp = stack.http.post("/v1/import", json={"site_id": tenant.site_id, "events": events},
                           headers=headers)  # fmt: skip
    assert resp.status_code == 200, resp.text
    req = {"site_id": tenant.site_id, "metrics": ["time_on_page"], "dimensions": ["page"],
           "date_range": {"start": "2026-11-02", "end": "2026-11-02"}}  # fmt: skip
    resp = stack.http.post("/v1/query", json=req,
                           headers={"Authorization": f"Bearer {tenant.read_key}"})  # fmt: skip
    assert resp.status_code == 200, resp.text
    # /a -> /b: 0 s; /b -> /c: 60 s; /c has no next pageview (0 when none).
    assert [(r["dimensions"][0], r["metrics"][0]) for r in resp.json()["results"]] == [
        ("/b", 60.0), ("/a", 0.0), ("/c", 0.0)]  # fmt: skip


def test_page_tokens_of_another_query_or_none_at_all_are_400s(api: Api) -> None:
    day = {"start": "2026-11-20", "end": "2026-11-22"}
    first = {"metrics": ["events"], "dimensions": ["page"], "date_range": day, "limit": 1}
    resp = api.post(first)
    assert resp.status_code == 200, resp.text
    token = resp.json()["meta"]["next_page_token"]
    assert api.post({**first, "page_token": token}).status_code == 200
    for other in ({**first, "dimensions": ["os"]}, {**first, "metrics": ["visitors"]},
                  {**first, "page_token": "not-a-token"}, {**first, "page_token": token[:-2]}):  # fmt: skip
        resp = api.post({**other, "page_token": other.get("page_token", token)})
        assert resp.status_code == 400 and "page_token" in resp.json()["error"], resp.text


def test_time_on_page_with_a_prop_filter_pairs_ties_in_receipt_order(api: Api) -> None:
    """Every window, by page, with a prop filter (a query shape the engine answers with a window
    over events): many same-timestamp pageview pairs, so an arbitrary tie order cannot pass by
    luck (one window alone sometimes did, before the engine ordered ties by `seq`)."""
    for first, days in api.data.windows:
        last = first + timedelta(days=days - 1)
        check(api, {"metrics": ["time_on_page"], "dimensions": ["page"], "limit": 100,
                    "date_range": {"start": first.isoformat(), "end": last.isoformat()},
                    "filters": {"dimension": "prop:plan", "op": "is", "values": ["(none)"]}})  # fmt: skip
