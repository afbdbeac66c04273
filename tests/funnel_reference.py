"""POST /v1/funnel in plain Python over raw events, written from shared/conversions-api.md alone.

Events are the dicts of query_reference (site_id, ts naive UTC, seq, name,
visitor_id, pathname, url, referrer and the session attributes); sessions,
date ranges and filters are query_reference's, which follow query-api.md.
Chains are found by brute force: from every event matching step 1, the set of
every event that can end a chain of j steps, for j = 1, 2, …; never the greedy
"earliest next event" the server's statement relies on.
"""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from fractions import Fraction
from typing import Any
from zoneinfo import ZoneInfo

import query_reference as qref
from query_reference import QueryError

KINDS = ("goal", "event_name", "page_path")


def path_matches(pathname: str, pattern: str) -> bool:
    """`*`: any run of characters but `/`; `**`: any run; both possibly empty; else literal."""
    regex = "".join(
        ".*" if t == "**" else "[^/]*" if t == "*" else re.escape(t)
        for t in re.findall(r"\*\*|\*|[^*]+", pattern)
    )
    return re.fullmatch(regex, pathname, flags=re.DOTALL) is not None


def condition(step: dict, goals: dict[str, dict], i: int) -> tuple[str, Any]:
    """(label, predicate over an event) of a step; goals: name -> {event_name | page_path}."""
    given = [k for k in KINDS if step.get(k)]
    if len(given) != 1:
        raise QueryError(f"steps[{i}]", "exactly one of goal, event_name, page_path")
    kind = given[0]
    label = step[kind]
    target = step
    if kind == "goal":
        if label not in goals:
            raise QueryError(f"steps[{i}].goal", f"unknown goal {label!r}")
        target = goals[label]
    if target.get("event_name"):
        name = target["event_name"]
        return label, lambda e: e["name"] == name
    pattern = target["page_path"]
    return label, lambda e: e["name"] == "pageview" and path_matches(e["pathname"], pattern)


def window(req: dict) -> int | None:
    """Minutes of the window, or None for one session."""
    w = req.get("window") or {}
    mode = w.get("mode") or "session"
    if mode == "session":
        if w.get("minutes"):
            raise QueryError("window.minutes", "only with mode minutes")
        return None
    if mode != "minutes":
        raise QueryError("window.mode", f"unknown mode {mode!r}")
    minutes = w.get("minutes", 0)
    if not 1 <= minutes <= 10_080:
        raise QueryError("window.minutes", "between 1 and 10080")
    return int(minutes)


def level(events: list[dict], preds: list[Any], minutes: int | None) -> int:
    """The most steps any chain among these events (one session or one visitor) reaches."""
    best = 0
    for start in events:
        if not preds[0](start):
            continue
        deadline = start["ts"] + timedelta(minutes=minutes) if minutes is not None else None
        ends, reached = [start], 1
        for pred in preds[1:]:
            ends = [
                e for e in events
                if pred(e) and (deadline is None or e["ts"] <= deadline)
                and any(e["ts"] > f["ts"] for f in ends)
            ]  # fmt: skip
            if not ends:
                break
            reached += 1
        best = max(best, reached)
    return best


def ratio(a: int, b: int) -> Fraction:
    return Fraction(a, b) if b else Fraction(0)


def run(events: list[dict], req: dict, site_timezone: str, goals: dict[str, dict]) -> dict:
    """The answer to a funnel request for the site `req["site_id"]`, rates as exact Fractions."""
    steps = req.get("steps", [])
    if not 2 <= len(steps) <= 8:
        raise QueryError("steps", "2 to 8 steps")
    labelled = [condition(s, goals, i) for i, s in enumerate(steps)]
    minutes = window(req)
    tz = ZoneInfo(req.get("timezone") or site_timezone)
    rng = qref.resolve(req.get("date_range"), tz, "date_range")
    pred = qref.compile_filter(req["filters"])[0] if "filters" in req else (lambda e: True)
    site = [e for e in events if e["site_id"] == req["site_id"]]
    qref.sessionize(site)  # sessions over all of the site's events, also those out of range
    groups: dict[Any, list[dict]] = defaultdict(list)
    for e in site:
        if rng.lo <= e["ts"] <= rng.hi and pred(e):
            key = e["visitor_id"] if minutes is not None else id(e["_session"])
            groups[key].append(e)
    by_visitor: dict[int, int] = defaultdict(int)
    preds = [p for _, p in labelled]
    for evs in groups.values():
        visitor = evs[0]["visitor_id"]
        by_visitor[visitor] = max(by_visitor[visitor], level(evs, preds, minutes))
    counts = [sum(lv > k for lv in by_visitor.values()) for k in range(len(steps))]
    out = []
    for k, (label, _) in enumerate(labelled):
        before = counts[k - 1] if k else counts[0]
        out.append({
            "label": label, "visitors": counts[k], "conversion_rate": ratio(counts[k], counts[0]),
            "step_conversion_rate": ratio(counts[k], before) if k else Fraction(1),
            "dropoff": before - counts[k],
        })  # fmt: skip
    return {"steps": out, "meta": {"timezone": tz.key, "date_range": qref.span(rng, tz)}}
