"""POST /v1/funnel through Envoy equals the plain-Python reference (funnel_reference.py) exactly.

Hypothesis draws event sets (a few visitors, ties in time, sessions split by
30-minute gaps, events on both sides of the range's ends) and funnels (2-8
steps of goals, event names and path patterns, repeats, both window modes,
filters on event and session dimensions, two time zones); each example gets a
site of its own, stored through the ingestion writer. WELDPULSE_FUNNEL_CASES
sets the examples per engine.
"""

import itertools
import os
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP
from typing import Any

import funnel_reference as ref
import pytest
from conftest import Stack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from query_reference import QueryError, rounded
from weldpulse.domain import Event
from weldpulse.storage import accounts, writer
from weldpulse.storage.schema import goals

CASES = int(os.environ.get("WELDPULSE_FUNNEL_CASES", "25"))
SETTINGS = settings(max_examples=CASES, deadline=None,
                    derandomize="WELDPULSE_FUNNEL_CASES" not in os.environ,
                    suppress_health_check=list(HealthCheck))  # fmt: skip
BASE = datetime(2026, 11, 20, 21, 40)  # Berlin's day ends at 23:00 UTC, UTC's at 24:00
GOALS = {"Signup": {"event_name": "signup"}, "Saw blog": {"page_path": "/blog/**"}}
PATHS = ["/", "/", "/pricing", "/blog/a", "/blog/a/b", "/docs"]
STEPS = [{"page_path": "/"}, {"page_path": "/pricing"}, {"page_path": "/blog/*"},
         {"page_path": "/blog/**"}, {"event_name": "signup"}, {"event_name": "download"},
         {"event_name": "pageview"}, {"goal": "Signup"}, {"goal": "Saw blog"},
         {"page_path": "/"}, {"event_name": "pageview"}, {"page_path": "/**"}]  # fmt: skip
FILTERS = [
    {"dimension": "country", "op": "is", "values": ["DE"]},
    {"dimension": "page", "op": "starts_with", "values": ["/blog"]},
    {"dimension": "event_name", "op": "is_not", "values": ["download"]},
    {"dimension": "prop:plan", "op": "is", "values": ["pro"]},
    {"dimension": "entry_page", "op": "is", "values": ["/"]},
    {"dimension": "page", "op": "matches", "values": ["^/(pricing)?$"]},
]
_ids = itertools.count(1_000_000 + uuid.uuid4().int % 10**9 * 10)


@dataclass
class Project:
    id: str
    site: str
    read: str  # stats:read
    write: str  # sites:write only
    outsider: str  # another project's key with both scopes


class Api:
    """Calls through Envoy; a fresh key before the per-key limit (100 a minute) bites."""

    def __init__(self, stack: Stack, project: Project) -> None:
        self.stack, self.project, self.calls, self.key = stack, project, 0, project.read

    def funnel(self, body: dict) -> Any:
        self.calls += 1
        if self.calls % 80 == 0:
            self.key = self.stack.new_key("funnels")
        headers = {"Authorization": f"Bearer {self.key}"}
        return self.stack.http.post("/v1/funnel", json=body, headers=headers)


@pytest.fixture(scope="module")
def project(stack: Stack) -> Project:
    with stack.metadata.begin() as conn:
        pid = accounts.create_project(conn, "Funnels", "pro")
        site = accounts.create_site(conn, pid, f"f{uuid.uuid4().hex[:8]}.example")["id"]
        read = accounts.create_api_key(conn, pid, ["stats:read"])["key"]
        write = accounts.create_api_key(conn, pid, ["sites:write"])["key"]
        other = accounts.create_project(conn, "Funnels elsewhere", "pro")
        accounts.create_site(conn, other, f"o{uuid.uuid4().hex[:8]}.example")
        outsider = accounts.create_api_key(conn, other, ["stats:read", "sites:write"])["key"]
    stack.ids["funnels"] = pid
    for name, goal in GOALS.items():
        add_goal(stack, site, name, **goal)
    return Project(pid, site, read, write, outsider)


@pytest.fixture(scope="module")
def api(stack: Stack, project: Project) -> Api:
    return Api(stack, project)


def add_goal(stack: Stack, site_id: str, name: str, event_name: str | None = None,
             page_path: str | None = None) -> None:  # fmt: skip
    """A goal row as the goals API stores it (that API is another branch's)."""
    with stack.metadata.begin() as conn:
        conn.execute(goals.insert().values(
            id=str(uuid.uuid4()), site_id=site_id, name=name, event_name=event_name,
            page_path=page_path, created_at=datetime.now(UTC).replace(tzinfo=None),
        ))  # fmt: skip


def new_site(stack: Stack, project: Project) -> str:
    with stack.metadata.begin() as conn:
        site = accounts.create_site(conn, project.id, f"f{uuid.uuid4().hex[:10]}.example")["id"]
    for name, goal in GOALS.items():
        add_goal(stack, site, name, **goal)
    return str(site)


def store(stack: Stack, site: str, drawn: list[tuple]) -> list[dict]:
    """Stores the drawn events in order; returns them as the reference reads events."""
    visitors = {v: next(_ids) for v in sorted({d[0] for d in drawn})}
    out, batch = [], []
    for seq, (v, minute, second, name, path, country, plan) in enumerate(drawn):
        ts = BASE + timedelta(minutes=minute, seconds=second)
        props = {"plan": plan} if plan else {}
        batch.append(Event(site_id=site, ts=ts, name=name, visitor_id=visitors[v], pathname=path,
                           country=country, device_type="desktop", props=props))  # fmt: skip
        out.append({
            "site_id": site, "ts": ts, "seq": seq, "name": name, "visitor_id": visitors[v],
            "pathname": path, "url": f"https://x.example{path}", "referrer": "",
            "referrer_source": "Direct / None", "country": country, "region": "", "city": "",
            "device_type": "desktop", "browser": "", "os": "", "props": props,
        })  # fmt: skip
    writer.record(stack.events, batch)
    return out


def journeys(rng: random.Random) -> list[tuple]:
    """1-4 visitors, each a run of events a few minutes apart (ties, gaps past 30 minutes)."""
    drawn = []
    for v in range(rng.randint(1, 4)):
        minute = rng.choice([0, 10, 60])
        for _ in range(rng.randint(3, 14)):
            minute += rng.choice([0, 1, 2, 3, 5, 10, 20, 31])
            drawn.append((v, minute, rng.choice([0, 0, 30]),
                          rng.choice(["pageview"] * 4 + ["signup", "download"]),
                          rng.choice(PATHS), rng.choice(["DE", "US"]),
                          rng.choice(["", "pro", "free"])))  # fmt: skip
    if rng.random() < 0.5:  # visitors interleave in time, as they arrive at a site
        rng.shuffle(drawn)
    return drawn


def own_path(rng: random.Random, drawn: list[tuple]) -> list[dict]:
    """Steps along one visitor's events in time order: funnels that do get reached."""
    visitor = rng.choice(drawn)[0]
    mine = sorted((d for d in drawn if d[0] == visitor), key=lambda d: (d[1], d[2]))
    picks = sorted(rng.sample(range(len(mine)), min(len(mine), rng.randint(2, 8))))
    return [{"event_name": mine[i][3]} if mine[i][3] != "pageview" else
            {"page_path": mine[i][4]} for i in picks]  # fmt: skip


@st.composite
def cases(draw: Any) -> tuple[list[tuple], dict]:
    """Events and steps from a drawn seed (Hypothesis' own draws favour empty funnels)."""
    rng = random.Random(draw(st.integers(0, 2**32)))
    drawn = journeys(rng)
    longest = draw(st.sampled_from([3, 4, 8]))  # mostly short: long funnels are rarely reached
    steps = [rng.choice(STEPS) for _ in range(rng.randint(2, longest))]
    if draw(st.booleans()):
        steps = own_path(rng, drawn)
    return drawn, draw(funnels(steps))


@st.composite
def funnels(draw: Any, steps: list[dict]) -> dict:
    body: dict[str, Any] = {"steps": steps}
    body["date_range"] = draw(st.sampled_from([
        {"start": "2026-11-20", "end": "2026-11-20"},
        {"start": "2026-11-20", "end": "2026-11-21"},
        {"start": "2026-11-20T21:50:00Z", "end": "2026-11-20T23:20:00Z"},
    ]))  # fmt: skip
    body["timezone"] = draw(st.sampled_from(["UTC", "Europe/Berlin"]))
    window = draw(st.sampled_from([None, None, "session", 1, 5, 30, 60, 10_080]))
    if window == "session":
        body["window"] = {"mode": "session"}
    elif window is not None:
        body["window"] = {"mode": "minutes", "minutes": window}
    how = draw(st.sampled_from(["none"] * 4 + ["one", "and", "not"]))
    if how == "one":
        body["filters"] = draw(st.sampled_from(FILTERS))
    elif how == "and":
        body["filters"] = {"and": draw(st.lists(st.sampled_from(FILTERS), min_size=2, max_size=2))}
    elif how == "not":
        body["filters"] = {"not": draw(st.sampled_from(FILTERS))}
    return body


def same_rate(got: float, exact: Any) -> bool:
    """4 decimals: either rounding of an exact half is accepted (the contract does not say)."""
    return got in (rounded("percentage", exact, ROUND_HALF_UP),
                   rounded("percentage", exact, ROUND_HALF_EVEN))  # fmt: skip


def assert_same(got: dict, want: dict) -> None:
    assert got["meta"] == want["meta"]
    assert len(got["steps"]) == len(want["steps"])
    for g, w in zip(got["steps"], want["steps"], strict=True):
        assert (g["label"], g["visitors"], g["dropoff"]) == (w["label"], w["visitors"],
                                                             w["dropoff"]), (got, want)  # fmt: skip
        assert same_rate(g["conversion_rate"], w["conversion_rate"]), (g, w)
        assert same_rate(g["step_conversion_rate"], w["step_conversion_rate"]), (g, w)


@SETTINGS
@given(case=cases())
def test_funnel_equals_reference(
    stack: Stack, project: Project, api: Api, case: tuple[list, dict]
) -> None:
    drawn, body = case
    site = new_site(stack, project)
    events = store(stack, site, drawn)
    body["site_id"] = site
    want = ref.run(events, body, "UTC", GOALS)
    resp = api.funnel(body)
    assert resp.status_code == 200, resp.text
    assert_same(resp.json(), want)


def test_ties_and_windows_by_hand(stack: Stack, project: Project, api: Api) -> None:
    """Hand-checked: same-instant events are not consecutive steps; windows cut chains."""
    site = new_site(stack, project)
    drawn = [
        (0, 0, 0, "pageview", "/", "DE", ""),  # visitor 0: / and /pricing at the same instant
        (0, 0, 0, "pageview", "/pricing", "DE", ""),
        (1, 0, 0, "pageview", "/", "DE", ""),  # visitor 1: /pricing 20 min later, signup later
        (1, 20, 0, "pageview", "/pricing", "DE", ""),
        (1, 79, 0, "signup", "/pricing", "DE", ""),  # 59 min after /pricing: a new session
        (2, 0, 0, "pageview", "/", "US", ""),  # visitor 2: all three within 2 minutes
        (2, 1, 0, "pageview", "/pricing", "US", ""),
        (2, 2, 0, "signup", "/pricing", "US", ""),
        (3, 0, 0, "pageview", "/", "US", ""),  # visitor 3: only the later / starts a short chain
        (3, 25, 0, "pageview", "/", "US", ""),
        (3, 26, 0, "pageview", "/pricing", "US", ""),
    ]
    store(stack, site, drawn)
    steps = [{"page_path": "/"}, {"page_path": "/pricing"}, {"goal": "Signup"}]
    day = {"start": "2026-11-20", "end": "2026-11-20"}

    def visitors(window: dict) -> list[int]:
        resp = api.funnel({"site_id": site, "date_range": day, "steps": steps, "window": window})
        assert resp.status_code == 200, resp.text
        return [s["visitors"] for s in resp.json()["steps"]]

    assert visitors({"mode": "session"}) == [4, 3, 1]
    assert visitors({"mode": "minutes", "minutes": 60}) == [4, 3, 1]
    assert visitors({"mode": "minutes", "minutes": 80}) == [4, 3, 2]
    assert visitors({"mode": "minutes", "minutes": 2}) == [4, 2, 1]
    assert visitors({"mode": "minutes", "minutes": 1}) == [4, 2, 0]
    body = {"site_id": site, "date_range": day, "steps": steps}
    got = api.funnel(body).json()
    assert got["steps"][1] == {"label": "/pricing", "visitors": 3, "conversion_rate": 0.75,
                               "step_conversion_rate": 0.75, "dropoff": 1}  # fmt: skip
    assert got["steps"][2] == {"label": "Signup", "visitors": 1, "conversion_rate": 0.25,
                               "step_conversion_rate": 0.3333, "dropoff": 2}  # fmt: skip
    assert got["steps"][0]["step_conversion_rate"] == 1
    assert got["meta"]["timezone"] == "UTC"


# ---- bad input ------------------------------------------------------------------------------


BAD = [
    ({"steps": [{"page_path": "/"}]}, "steps"),
    ({"steps": [{"page_path": "/"}] * 9}, "steps"),
    ({"steps": [{"page_path": "/", "event_name": "x"}, {"page_path": "/"}]}, "steps[0]"),
    ({"steps": [{"page_path": "/"}, {}]}, "steps[1]"),
    ({"steps": [{"page_path": "/"}, {"goal": "Nope"}]}, "steps[1].goal"),
    ({"window": {"mode": "minutes", "minutes": 0}}, "window.minutes"),
    ({"window": {"mode": "minutes", "minutes": 10_081}}, "window.minutes"),
    ({"window": {"mode": "minutes"}}, "window.minutes"),
    ({"window": {"mode": "hours", "minutes": 5}}, "window.mode"),
    ({"window": {"mode": "session", "minutes": 5}}, "window.minutes"),
    ({"date_range": None}, "date_range"),
    ({"timezone": "Mars/Olympus"}, "timezone"),
    ({"site_id": ""}, "site_id"),
    ({"funnel_id": "no-such-funnel"}, "funnel_id"),
    ({"filters": {"dimension": "time:day", "op": "is", "values": ["x"]}}, "filters.dimension"),
    ({"steps": [{"page_path": "/\x00"}, {"goal": "Signup"}]}, "steps[0].page_path"),
    ({"steps": [{"page_path": "/"}, {"goal": "Sign\x00up"}]}, "steps[1].goal"),
    ({"steps": [{"page_path": "/"}, {"event_name": "\x00"}]}, "steps[1].event_name"),
    ({"filters": {"dimension": "page", "op": "is", "values": ["/\x00"]}}, "filters.values[0]"),
    ({"filters": {"dimension": "prop:a\x00", "op": "is", "values": ["x"]}}, "filters.dimension"),
    ({"funnel_id": "x" * 10_000}, "funnel_id"),
    ({"site_id": "s" * 10_000}, "site_id"),
]


@pytest.mark.parametrize(("change", "field"), BAD)
def test_bad_input_is_a_400_naming_the_field(
    stack: Stack, project: Project, api: Api, change: dict, field: str
) -> None:
    body = {"site_id": project.site, "date_range": {"start": "2026-11-20", "end": "2026-11-20"},
            "steps": [{"page_path": "/"}, {"goal": "Signup"}]}  # fmt: skip
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    if "funnel_id" in change:
        del body["steps"]
    resp = api.funnel(body)
    assert resp.status_code == 400, resp.text
    assert resp.json()["code"] == "BAD_REQUEST"
    assert field in resp.json()["error"], resp.text
    if field.startswith(("steps", "window")) and "\\x00" not in repr(change):  # as the reference
        with pytest.raises(QueryError) as err:
            ref.run([], body, "UTC", GOALS)
        assert err.value.field == field
