"""The query reference itself on tiny data sets, answers worked out by hand from query-api.md."""

from datetime import datetime
from itertools import count
from typing import Any

import pytest
from query_reference import QueryError, query, shape

SEQ = count()
SITE = "s1"


def ev(ts: str, visitor: int, name: str = "pageview", path: str = "/", **extra: Any) -> dict:
    url = extra.pop("url", f"https://site.example{path}")
    return {
        "site_id": SITE, "ts": datetime.fromisoformat(ts), "seq": next(SEQ), "name": name,
        "visitor_id": visitor, "pathname": path, "url": url, "referrer": "",
        "referrer_source": "Direct / None", "country": "NL", "region": "Utrecht", "city": "",
        "device_type": "desktop", "browser": "Chrome", "os": "Linux", "props": {}, **extra,
    }  # fmt: skip


def ask(events: list[dict], **req: Any) -> dict:
    req.setdefault("date_range", {"start": "2026-11-02", "end": "2026-11-02"})
    return shape(query(events, {"site_id": SITE, **req}, {SITE: "UTC"}), req["metrics"])


def rows(answer: dict) -> list[tuple]:
    return [(*r["dimensions"], *r["metrics"]) for r in answer["results"]]


def test_bounce_rate_duration_and_views_per_session() -> None:
    events = [
        ev("2026-11-02T10:00:00", 1),  # a bounce
        ev("2026-11-02T10:00:00", 2), ev("2026-11-02T10:00:30", 2, "signup"),  # not a bounce
        ev("2026-11-02T11:00:00", 3), ev("2026-11-02T11:10:00", 3, path="/b"),
    ]  # fmt: skip
    metrics = ["sessions", "bounce_rate", "avg_duration", "views_per_session", "visitors"]
    assert rows(ask(events, metrics=metrics)) == [(3, 0.3333, 210.0, 1.33, 3)]
    by_exit = ask(events, metrics=["sessions", "bounce_rate"], dimensions=["exit_page"])
    assert rows(by_exit) == [("/", 2, 0.5), ("/b", 1, 0.0)]


def test_session_crossing_the_range_end_counts_whole_and_matches_later_events() -> None:
    events = [
        ev("2026-11-02T23:50:00", 1, path="/in"),
        ev("2026-11-03T00:10:00", 1, path="/late"), ev("2026-11-03T00:20:00", 1, "buy"),
    ]  # fmt: skip
    late = {"dimension": "page", "op": "is", "values": ["/late"]}
    answer = ask(events, metrics=["pageviews", "sessions", "views_per_session", "avg_duration"])
    assert rows(answer) == [(1, 1, 2.0, 1800.0)]
    # The session matches through its event after the range; no event in range does.
    assert rows(ask(events, metrics=["sessions", "pageviews"], filters=late)) == [(1, 0)]
    # time on page: /in's next pageview is after the range, and still counts.
    assert rows(ask(events, metrics=["time_on_page"], dimensions=["page"])) == [("/in", 1200.0)]


def test_dst_days_follow_the_wall_clock() -> None:
    spring = [ev("2026-03-29T01:30:00", 1)]  # 03:30 CEST
    answer = ask(spring, metrics=["pageviews"], dimensions=["time:hour"], timezone="Europe/Berlin",
                 date_range={"start": "2026-03-29", "end": "2026-03-29"})  # fmt: skip
    hours = rows(answer)
    assert len(hours) == 23 and hours[0][0] == "2026-03-29T00:00:00"
    assert ("2026-03-29T02:00:00", 0) not in hours and ("2026-03-29T03:00:00", 1) in hours
    assert answer["meta"]["date_range"] == {
        "start": "2026-03-29T00:00:00+01:00", "end": "2026-03-29T23:59:59.999999+02:00"}  # fmt: skip
    autumn = [ev("2026-10-25T00:30:00", 1), ev("2026-10-25T01:30:00", 2)]  # both 02:30 local
    answer = ask(autumn, metrics=["pageviews"], dimensions=["time:hour"],
                 timezone="Europe/Berlin", date_range={"start": "2026-10-25", "end": "2026-10-25"})  # fmt: skip
    assert len(rows(answer)) == 24 and ("2026-10-25T02:00:00", 2) in rows(answer)


def test_half_hour_zone_moves_events_across_local_midnight() -> None:
    events = [ev("2026-11-01T18:40:00", 1), ev("2026-11-01T18:20:00", 2)]  # 00:10 / 23:50 IST
    answer = ask(events, metrics=["visitors"], dimensions=["time:day"], timezone="Asia/Kolkata",
                 date_range={"start": "2026-11-01", "end": "2026-11-02"})  # fmt: skip
    assert rows(answer) == [("2026-11-01T00:00:00", 1), ("2026-11-02T00:00:00", 1)]


def test_order_ties_in_code_point_order_and_percentage() -> None:
    events = [ev("2026-11-02T10:00:00", i, path=p) for i, p in enumerate(["/é", "/a", "/B"])]
    answer = ask(events, metrics=["visitors", "percentage"], dimensions=["page"])
    assert rows(answer) == [("/B", 1, 0.3333), ("/a", 1, 0.3333), ("/é", 1, 0.3333)]
    desc = ask(events, metrics=["visitors"], dimensions=["page"],
               order_by=[{"field": "page", "desc": True}])  # fmt: skip
    assert [r[0] for r in rows(desc)] == ["/é", "/a", "/B"]


def test_compare_year_over_year_29_february_and_change_rules() -> None:
    events = [ev("2027-02-28T12:00:00", 1, "signup"), ev("2027-02-28T12:00:00", 2),
              ev("2028-02-29T12:00:00", 1), ev("2028-02-29T12:00:00", 3),
              ev("2028-02-29T12:10:00", 3, path="/x")]  # fmt: skip
    answer = ask(events, metrics=["visitors", "pageviews", "bounce_rate"],
                 date_range={"start": "2028-02-29", "end": "2028-02-29"},
                 compare={"mode": "year_over_year"}, include_totals=True)  # fmt: skip
    assert answer["meta"]["comparison_date_range"]["start"] == "2027-02-28T00:00:00+00:00"
    row = answer["results"][0]
    assert row["metrics"] == [2, 3, 0.5] and row["comparison"]["metrics"] == [2, 1, 0.5]
    assert row["comparison"]["change"] == [0.0, 200.0, 0.0]
    assert answer["totals"]["comparison"]["change"] == [0.0, 200.0, 0.0]
    by_page = ask(events, metrics=["pageviews"], dimensions=["page"], compare={"mode": "custom",
                  "date_range": {"start": "2027-02-28", "end": "2027-02-28"}},
                  date_range={"start": "2028-02-29", "end": "2028-02-29"})  # fmt: skip
    assert [r["comparison"] for r in by_page["results"]] == [
        {"dimensions": ["/"], "metrics": [1], "change": [100.0]},
        {"dimensions": ["/x"], "metrics": [0], "change": [None]}]  # fmt: skip


def test_previous_period_matches_time_buckets_by_position() -> None:
    events = [ev("2026-11-01T05:00:00", 1), ev("2026-10-30T05:00:00", 1)]
    answer = ask(events, metrics=["pageviews"], dimensions=["time:day"],
                 date_range={"start": "2026-11-01", "end": "2026-11-02"},
                 compare={"mode": "previous_period"})  # fmt: skip
    assert [(r["dimensions"], r["comparison"]) for r in answer["results"]] == [
        (["2026-11-01T00:00:00"], {"dimensions": ["2026-10-30T00:00:00"], "metrics": [1], "change": [0.0]}),
        (["2026-11-02T00:00:00"], {"dimensions": ["2026-10-31T00:00:00"], "metrics": [0], "change": [None]}),
    ]  # fmt: skip


def test_filters_props_utm_referrer_and_case() -> None:
    events = [
        ev("2026-11-02T10:00:00", 1, "signup", props={"plan": "Pro"},
           url="https://www.site.example/?utm_campaign=spring+sale%21&utm_medium=cpc",
           referrer="https://www.google.com/", referrer_source="Google"),
        ev("2026-11-02T10:00:01", 1, "signup", props={}),
        ev("2026-11-02T10:00:02", 2, referrer="https://news.ycombinator.com/item?id=1",
           referrer_source="Hacker News"),
    ]  # fmt: skip
    by = lambda dims, **kw: rows(ask(events, metrics=["events"], dimensions=dims, **kw))  # noqa: E731
    assert by(["prop:plan"]) == [("(none)", 2), ("Pro", 1)]
    assert by(["utm_campaign", "channel"]) == [("spring sale!", "Paid Search", 2),
                                               ("(none)", "Organic Social", 1)]  # fmt: skip
    assert by(["referrer", "hostname"]) == [("google.com", "site.example", 2),
                                            ("news.ycombinator.com/item", "site.example", 1)]  # fmt: skip
    pro = {"dimension": "prop:plan", "op": "is", "values": ["pro"], "case_sensitive": False}
    assert by([], filters={"not": pro}) == [(2,)]
    either = {"or": [pro, {"dimension": "source", "op": "matches", "values": ["^Hack"]}]}
    assert by([], filters=either) == [(2,)]


@pytest.mark.parametrize(
    ("req", "field"),
    [
        ({"metrics": ["bounce_rate"], "dimensions": ["page"]}, "dimensions"),
        ({"metrics": ["visitors", "visitors"]}, "metrics"),
        ({"metrics": ["visits"]}, "metrics"),
        ({"metrics": ["visitors"], "timezone": "Mars/Olympus"}, "timezone"),
        ({"metrics": ["visitors"], "date_range": {"start": "2026-11-02", "end": "2026-11-01"}},
         "date_range"),
        ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "is_like", "values": ["/"]}},
         "filters.op"),
        ({"metrics": ["visitors"], "filters": {"dimension": "page", "op": "matches", "values": ["(a)\\1"]}},
         "filters.values"),
        ({"metrics": ["visitors"], "filters": {"not": {"not": {"not": {"not": {"not": {
            "dimension": "page", "op": "is", "values": ["/"]}}}}}}}, "filters"),
        ({"metrics": ["visitors"], "dimensions": ["time:day", "time:hour"]}, "dimensions"),
    ],
)  # fmt: skip
def test_invalid_queries_name_the_field(req: dict, field: str) -> None:
    with pytest.raises(QueryError) as err:
        ask([ev("2026-11-02T10:00:00", 1)], **req)
    assert err.value.field == field


def test_no_dimensions_is_one_row_of_zeros() -> None:
    answer = ask([], metrics=["visitors", "bounce_rate", "time_on_page"], include_totals=True)
    assert rows(answer) == [(0, 0.0, 0.0)] and answer["totals"]["metrics"] == [0, 0.0, 0.0]
