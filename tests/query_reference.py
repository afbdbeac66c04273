"""POST /v1/query in plain Python over raw events, written from shared/query-api.md alone.

Events are dicts: site_id, ts (naive UTC), seq (receipt order), name, visitor_id,
pathname, url, referrer (raw URLs), referrer_source, country, region, city,
device_type, browser, os, props (dict). Sessions are built here from the events
(metric-definitions.md), never read from the store. Metric values are kept as
exact Fractions until `rounded`, so the test can accept either rounding of an
exact half (the contract says "N decimals", not how ties round).
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Any
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import re2  # type: ignore[import-untyped]

GAP = timedelta(minutes=30)
EVENT_METRICS = ("visitors", "pageviews", "events", "time_on_page", "percentage", "conversion_rate")
SESSION_METRICS = ("sessions", "bounce_rate", "avg_duration", "views_per_session")
DECIMALS = {"time_on_page": 1, "percentage": 4, "bounce_rate": 4, "avg_duration": 1,
            "views_per_session": 2, "conversion_rate": 4}  # fmt: skip
POINTS = ("bounce_rate", "percentage")  # change in percentage points
EVENT_DIMS = ("page", "hostname", "event_name", "goal")
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
SESSION_DIMS = ("entry_page", "exit_page", "source", "referrer", "channel", *UTM,
                "country", "region", "city", "device_type", "browser", "os")  # fmt: skip
TIME_DIMS = ("time:minute", "time:hour", "time:day", "time:week", "time:month")
OPS = ("is", "is_not", "contains", "not_contains", "starts_with", "matches", "not_matches")
MAX_BUCKETS = 10_000
# Snowplow's referer database mediums of the source names the test data uses.
SEARCH = {"Google", "Bing", "DuckDuckGo", "Yahoo!", "Yandex", "Baidu", "Ecosia"}
SOCIAL = {
    "Twitter",
    "Facebook",
    "LinkedIn",
    "Reddit",
    "Hacker News",
    "Instagram",
    "Pinterest",
    "YouTube",
}
PAID = re2.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")


class QueryError(Exception):
    """What the API must answer with a 400: `field` is what the message must name."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# ---- time ---------------------------------------------------------------------------------


def local(ts: datetime, tz: ZoneInfo) -> datetime:
    return ts.replace(tzinfo=UTC).astimezone(tz).replace(tzinfo=None)


def first_instant(day: date, tz: ZoneInfo) -> datetime:
    """The first UTC instant whose local date is `day` or later (DST may skip 00:00)."""
    lo = datetime.combine(day, datetime.min.time()) - timedelta(hours=27)
    hi = lo + timedelta(hours=54)
    while hi - lo > timedelta(microseconds=1):
        mid = lo + (hi - lo) // 2
        if local(mid, tz).date() >= day:
            hi = mid
        else:
            lo = mid
    return hi


def exists(wall: datetime, tz: ZoneInfo) -> bool:
    for fold in (0, 1):
        aware = wall.replace(tzinfo=tz, fold=fold)
        if aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == wall:
            return True
    return False


def to_utc(wall: datetime, tz: ZoneInfo) -> datetime:
    return wall.replace(tzinfo=tz).astimezone(UTC).replace(tzinfo=None)


def is_date(value: str) -> bool:
    return len(value) == 10


def instant(value: str, tz: ZoneInfo, end: bool, field: str) -> datetime:
    """A date_range bound as a naive UTC instant (contract: date_range)."""
    try:
        if is_date(value):
            day = date.fromisoformat(value)
            return first_instant(day + timedelta(days=1), tz) - timedelta(microseconds=1) if end \
                else first_instant(day, tz)  # fmt: skip
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(field, f"not an ISO 8601 date or timestamp: {value!r}") from None
    if parsed.tzinfo is None:
        return to_utc(parsed, tz)  # local wall time; fold=0 where ambiguous (contract silent)
    return parsed.astimezone(UTC).replace(tzinfo=None)


@dataclass
class Range:
    lo: datetime  # naive UTC, inclusive
    hi: datetime
    start: str  # as requested
    end: str


def resolve(rng: Any, tz: ZoneInfo, field: str) -> Range:
    if not isinstance(rng, dict) or "start" not in rng or "end" not in rng:
        raise QueryError(field, "start and end are required")
    lo = instant(rng["start"], tz, False, f"{field}.start")
    hi = instant(rng["end"], tz, True, f"{field}.end")
    if hi < lo:
        raise QueryError(field, "end before start")
    return Range(lo, hi, rng["start"], rng["end"])


def minus_year(day: date) -> date:
    return day.replace(year=day.year - 1, day=28 if (day.month, day.day) == (2, 29) else day.day)


def comparison_range(compare: dict, main: Range, tz: ZoneInfo) -> Range:
    mode = compare.get("mode")
    dates = is_date(main.start) and is_date(main.end)
    if mode == "custom":
        return resolve(compare.get("date_range"), tz, "compare.date_range")
    if mode == "previous_period":
        if dates:
            first, last = date.fromisoformat(main.start), date.fromisoformat(main.end)
            days = (last - first).days + 1
            start, end = first - timedelta(days=days), first - timedelta(days=1)
            return resolve({"start": start.isoformat(), "end": end.isoformat()}, tz, "compare")
        hi = main.lo - timedelta(microseconds=1)
        return Range(hi - (main.hi - main.lo), hi, "", "")
    if mode == "year_over_year":
        if dates:
            earlier = [
                minus_year(date.fromisoformat(v)).isoformat() for v in (main.start, main.end)
            ]
            return resolve({"start": earlier[0], "end": earlier[1]}, tz, "compare")
        # Timestamps: the same local wall-clock instants one year earlier (our reading).
        lo, hi = local(main.lo, tz), local(main.hi, tz)
        lo, hi = (datetime.combine(minus_year(w.date()), w.time()) for w in (lo, hi))
        return Range(to_utc(lo, tz), to_utc(hi, tz), "", "")
    raise QueryError("compare.mode", "must be previous_period, year_over_year or custom")


def bucket(ts: datetime, unit: str, tz: ZoneInfo) -> datetime:
    wall = local(ts, tz)
    if unit == "minute":
        return wall.replace(second=0, microsecond=0)
    if unit == "hour":
        return wall.replace(minute=0, second=0, microsecond=0)
    day = datetime.combine(wall.date(), datetime.min.time())
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def buckets(rng: Range, unit: str, tz: ZoneInfo) -> list[datetime]:
    """Every wall-clock bucket from the one holding lo to the one holding hi that exists."""
    first, last = bucket(rng.lo, unit, tz), bucket(rng.hi, unit, tz)
    out: list[datetime] = []
    wall = first
    while wall <= last:
        if unit == "minute":
            ok, nxt = exists(wall, tz), wall + timedelta(minutes=1)
        elif unit == "hour":
            ok = any(exists(wall + timedelta(minutes=m), tz) for m in (0, 15, 30, 45))
            nxt = wall + timedelta(hours=1)
        else:
            ok = True
            step = {"day": 1, "week": 7}.get(unit)
            nxt = (
                wall + timedelta(days=step) if step else (wall + timedelta(days=32)).replace(day=1)
            )
        if ok:
            out.append(wall)
            if len(out) > MAX_BUCKETS:
                raise QueryError("dimensions", f"more than {MAX_BUCKETS} time buckets")
        wall = nxt
    return out


def fmt(wall: datetime) -> str:
    return wall.strftime("%Y-%m-%dT%H:%M:%S")


# ---- sessions and dimension values --------------------------------------------------------


@dataclass
class Session:
    events: list[dict]
    attrs: dict[str, str] = field(default_factory=dict)

    @property
    def start(self) -> datetime:
        return self.events[0]["ts"]

    @property
    def pageviews(self) -> int:
        return sum(e["name"] == "pageview" for e in self.events)

    @property
    def bounce(self) -> bool:
        return len(self.events) == 1 and self.events[0]["name"] == "pageview"

    @property
    def duration(self) -> Fraction:
        span = self.events[-1]["ts"] - self.events[0]["ts"]
        return Fraction(span // timedelta(microseconds=1), 1_000_000)


def host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower().removeprefix("www.")


def referrer(url: str) -> str:
    if not url:
        return "(none)"
    parts = urlsplit(url)
    path = "" if parts.path == "/" else parts.path
    return host(url) + path if host(url) else "(none)"


def utm(url: str, key: str) -> str:
    for k, v in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if k == key:
            return v
    return "(none)"


def channel(source: str, medium: str) -> str:
    paid = medium != "(none)" and PAID.search(medium) is not None
    mail = ("email", "e-mail", "e_mail", "newsletter")
    if source == "Direct / None":
        return "Direct"
    if source in SEARCH:
        return "Paid Search" if paid else "Organic Search"
    if source in SOCIAL:
        return "Paid Social" if paid else "Organic Social"
    if any(m in source.lower() or (medium != "(none)" and m in medium.lower()) for m in mail):
        return "Email"
    if medium == "affiliate":
        return "Affiliates"
    if medium in ("display", "banner", "cpm"):
        return "Display"
    return "Referral"


def sessionize(events: list[dict]) -> list[Session]:
    by_visitor: dict[tuple, list[dict]] = defaultdict(list)
    for e in sorted(events, key=lambda e: (e["ts"], e["seq"])):
        by_visitor[(e["site_id"], e["visitor_id"])].append(e)
    sessions = []
    for evs in by_visitor.values():
        current: list[dict] = []
        for e in evs:
            if current and e["ts"] - current[-1]["ts"] > GAP:
                sessions.append(Session(current))
                current = []
            current.append(e)
        sessions.append(Session(current))
    for s in sessions:
        first, views = s.events[0], [e for e in s.events if e["name"] == "pageview"]
        s.attrs = {
            "entry_page": views[0]["pathname"] if views else "(none)",
            "exit_page": views[-1]["pathname"] if views else "(none)",
            "source": first["referrer_source"],
            "referrer": referrer(first["referrer"]),
            **{k: utm(first["url"], k) for k in UTM},
            **{k: first[k] for k in ("country", "region", "city", "device_type", "browser", "os")},
        }
        s.attrs["channel"] = channel(s.attrs["source"], s.attrs["utm_medium"])
        for i, e in enumerate(s.events):
            e["_session"] = s
            e["_next_view"] = next((n for n in s.events[i + 1 :] if n["name"] == "pageview"), None)
    return sessions


def value(e: dict, dim: str) -> str:
    """`e` an event, or with `goal` an (event, goal) pair: the event with the goal's `_goal`."""
    if dim == "goal":
        return e["_goal"]
    if dim == "page":
        return e["pathname"]
    if dim == "hostname":
        return host(e["url"])
    if dim == "event_name":
        return e["name"]
    if dim.startswith("prop:"):
        return e["props"].get(dim[5:], "(none)")
    return e["_session"].attrs[dim]


# ---- validation and filters ---------------------------------------------------------------


def check_dimension(dim: Any, field: str) -> None:
    if not isinstance(dim, str) or not (
        dim in EVENT_DIMS or dim in SESSION_DIMS or dim in TIME_DIMS
        or (dim.startswith("prop:") and len(dim) > 5)
    ):  # fmt: skip
        raise QueryError(field, f"unknown dimension {dim!r}")


def is_event_dim(dim: str) -> bool:
    return dim in EVENT_DIMS or dim.startswith("prop:")


def compile_filter(expr: Any, field: str = "filters") -> tuple[Any, int, int]:
    """A predicate over an event, the expression's depth and its number of conditions."""
    if not isinstance(expr, dict):
        raise QueryError(field, "must be an object")
    if "and" in expr or "or" in expr:
        op = "and" if "and" in expr else "or"
        if not isinstance(expr[op], list) or not expr[op]:
            raise QueryError(field, f"{op} needs a non-empty list")
        parts = [compile_filter(x, f"{field}.{op}") for x in expr[op]]
        preds = [p for p, _, _ in parts]
        depth, count = 1 + max(d for _, d, _ in parts), sum(c for _, _, c in parts)
        if op == "and":
            return (lambda e: all(p(e) for p in preds)), depth, count
        return (lambda e: any(p(e) for p in preds)), depth, count
    if "not" in expr:
        pred, depth, count = compile_filter(expr["not"], f"{field}.not")
        return (lambda e: not pred(e)), depth + 1, count
    dim, how, values = str(expr.get("dimension")), expr.get("op"), expr.get("values")
    check_dimension(expr.get("dimension"), f"{field}.dimension")
    if dim in TIME_DIMS:
        raise QueryError(f"{field}.dimension", f"{dim} cannot be filtered")
    if how not in OPS:
        raise QueryError(f"{field}.op", f"unknown op {how!r}")
    if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
        raise QueryError(f"{field}.values", "must be a non-empty list of strings")
    if len(values) > 100:
        raise QueryError(f"{field}.values", "more than 100 values")
    if any(len(v.encode()) > 2000 for v in values):
        raise QueryError(f"{field}.values", "a value longer than 2000 bytes")
    sensitive = expr.get("case_sensitive", True)
    if how in ("matches", "not_matches"):
        if any(len(v.encode()) > 256 for v in values):
            raise QueryError(f"{field}.values", "a pattern longer than 256 bytes")
        try:
            regs = [re2.compile(v if sensitive else f"(?i){v}") for v in values]
        except re2.error as err:
            raise QueryError(f"{field}.values", f"invalid pattern: {err}") from None
        hit = lambda s: any(r.search(s) is not None for r in regs)  # noqa: E731
    else:
        vals = values if sensitive else [v.lower() for v in values]
        test = {"is": str.__eq__, "is_not": str.__eq__, "contains": str.__contains__,
                "not_contains": str.__contains__, "starts_with": str.startswith}[how]  # fmt: skip
        hit = lambda s: any(test(s if sensitive else s.lower(), v) for v in vals)  # noqa: E731
    negate = how in ("is_not", "not_contains", "not_matches")
    return (lambda e: hit(value(e, dim)) != negate), 1, 1


def validate(req: dict) -> tuple[list[str], list[str], Any, Any]:
    metrics, dims = req.get("metrics"), req.get("dimensions", [])
    if not isinstance(metrics, list) or not 1 <= len(metrics) <= 10:
        raise QueryError("metrics", "1 to 10 metrics are required")
    for m in metrics:
        if m not in EVENT_METRICS + SESSION_METRICS:
            raise QueryError("metrics", f"unknown metric {m!r}")
    if len(set(metrics)) != len(metrics):
        raise QueryError("metrics", "repeated metric")
    if not isinstance(dims, list) or len(dims) > 3:
        raise QueryError("dimensions", "at most 3 dimensions")
    for d in dims:
        check_dimension(d, "dimensions")
    if len(set(dims)) != len(dims):
        raise QueryError("dimensions", "repeated dimension")
    if sum(d in TIME_DIMS for d in dims) > 1:
        raise QueryError("dimensions", "at most one time dimension")
    if any(m in SESSION_METRICS for m in metrics) and any(is_event_dim(d) for d in dims):
        raise QueryError("dimensions", "session metric with an event dimension")
    pred = None
    if req.get("filters") is not None:
        pred, depth, count = compile_filter(req["filters"])
        if depth > 5:
            raise QueryError("filters", "deeper than 5")
        if count > 20:
            raise QueryError("filters", "more than 20 conditions")
    for o in req.get("order_by") or []:
        if o.get("field") not in metrics + dims:
            raise QueryError("order_by", f"{o.get('field')!r} is not a requested field")
    if not 1 <= req.get("limit", 100) <= 10_000:
        raise QueryError("limit", "must be 1 to 10000")
    base = None
    if "goal" in dims or has_goal(req.get("filters")):
        rest = without_goals(req.get("filters"))
        base = compile_filter(rest)[0] if rest is not None else (lambda e: True)
    elif "conversion_rate" in metrics:
        raise QueryError("metrics", "conversion_rate without goal")
    return metrics, dims, pred or (lambda e: True), base


# ---- goals (conversions-api.md) -----------------------------------------------------------


def completes(e: dict, goal: dict) -> bool:
    """A custom event of the goal's name, or a pageview whose pathname matches its pattern:
    `*` any run of characters but `/`, `**` any run, everything else itself."""
    if goal.get("event_name"):
        return e["name"] == goal["event_name"]
    if e["name"] != "pageview":
        return False
    regex = "".join(".*" if t == "**" else "[^/]*" if t == "*" else re.escape(t)
                    for t in re.findall(r"\*\*|\*|[^*]+", goal["page_path"]))  # fmt: skip
    return re.fullmatch(regex, e["pathname"], re.DOTALL) is not None


def is_goal_condition(expr: Any) -> bool:
    return isinstance(expr, dict) and expr.get("dimension") == "goal"


def has_goal(expr: Any) -> bool:
    if not isinstance(expr, dict):
        return False
    if is_goal_condition(expr):
        return True
    inner = expr.get("and") or expr.get("or") or ([expr["not"]] if "not" in expr else [])
    return any(has_goal(x) for x in inner if isinstance(x, dict))


def without_goals(expr: Any) -> Any:
    """The filter without its goal conditions; a 400 for a goal condition not allowed where it
    is (only the whole filter or a direct condition of a top-level `and`)."""
    if expr is None or is_goal_condition(expr):
        return None
    top = expr["and"] if isinstance(expr, dict) and isinstance(expr.get("and"), list) else [expr]
    rest = [x for x in top if not is_goal_condition(x)]
    if any(has_goal(x) for x in rest):
        raise QueryError("filters", "a goal condition under or/not or deeper")
    if not rest:
        return None
    return {"and": rest} if "and" in expr else rest[0]


def pairs(e: dict, goals: list[dict]) -> list[dict]:
    """The (event, goal) pairs of an event: the event once per goal of its site it completes."""
    return [{**e, "_goal": g["name"]} for g in goals if completes(e, g)]


# ---- computing ----------------------------------------------------------------------------


def ratio(a: int | Fraction, b: int) -> Fraction:
    return Fraction(a) / b if b else Fraction(0)


@dataclass
class Goals:
    """Goal mode of a query: each site's goals, and the filter without its goal conditions."""

    by_site: dict[str, list[dict]]
    base: Any  # predicate over events

    def units(self, e: dict) -> list[dict]:
        return pairs(e, self.by_site.get(e["site_id"], []))


def compute(events: list[dict], rng: Range, metrics: list[str], dims: list[str], pred: Any,
            tz: ZoneInfo, goals: Goals | None = None) -> dict[tuple, dict[str, Any]]:  # fmt: skip
    """Row key (dimension values) -> metric values (exact) over one range.

    With goals, the filter and the dimensions apply to (event, goal) pairs; a row's
    events are the distinct events of its pairs."""
    unit = next((d[5:] for d in dims if d in TIME_DIMS), "")
    units = goals.units if goals else lambda e: [e]

    def key(attr: Any, ts: datetime) -> tuple:
        return tuple(fmt(bucket(ts, unit, tz)) if d in TIME_DIMS else attr(d) for d in dims)

    ev_rows: dict[tuple, dict[tuple, dict]] = defaultdict(dict)  # key -> event id -> event
    if any(m in EVENT_METRICS for m in metrics):
        for e in events:
            for u in units(e) if rng.lo <= e["ts"] <= rng.hi else []:
                if pred(u):
                    ev_rows[key(lambda d, u=u: value(u, d), e["ts"])][(e["site_id"], e["seq"])] = e
    se_rows: dict[tuple, list[Session]] = defaultdict(list)
    if any(m in SESSION_METRICS for m in metrics):
        seen = set()
        for e in events:
            s = e["_session"]
            if (
                id(s) not in seen
                and rng.lo <= s.start <= rng.hi
                and any(pred(u) for x in s.events for u in units(x))
            ):
                seen.add(id(s))
                se_rows[key(lambda d, s=s: s.attrs[d], s.start)].append(s)
    total_visitors = None
    if "percentage" in metrics:
        total_visitors = len({(e["site_id"], e["visitor_id"]) for e in events
                              if rng.lo <= e["ts"] <= rng.hi and any(pred(u) for u in units(e))})  # fmt: skip
    divisors: dict[tuple, int] = {}
    if "conversion_rate" in metrics:
        assert goals is not None
        others = [d for d in dims if d != "goal"]
        by_other: dict[tuple, set] = defaultdict(set)
        for e in events:
            if rng.lo <= e["ts"] <= rng.hi and goals.base(e):
                k = tuple(fmt(bucket(e["ts"], unit, tz)) if d in TIME_DIMS else value(e, d)
                          for d in others)  # fmt: skip
                by_other[k].add((e["site_id"], e["visitor_id"]))
        divisors = {k: len(v) for k, v in by_other.items()}
    out = {}
    for k in set(ev_rows) | set(se_rows):
        evs, ses = list(ev_rows.get(k, {}).values()), se_rows.get(k, [])
        visitors = len({(e["site_id"], e["visitor_id"]) for e in evs})
        other = tuple(v for v, d in zip(k, dims, strict=True) if d != "goal")
        gaps = [e["_next_view"]["ts"] - e["ts"] for e in evs
                if e["name"] == "pageview" and e["_next_view"] is not None]  # fmt: skip
        vals = {
            "visitors": visitors,
            "pageviews": sum(e["name"] == "pageview" for e in evs),
            "events": len(evs),
            "time_on_page": ratio(
                sum((Fraction(g // timedelta(microseconds=1), 10**6) for g in gaps), Fraction(0)),
                len(gaps),
            ),
            "percentage": ratio(visitors, total_visitors or 0),
            "conversion_rate": ratio(visitors, divisors.get(other, 0)),
            "sessions": len(ses),
            "bounce_rate": ratio(sum(s.bounce for s in ses), len(ses)),
            "avg_duration": ratio(sum((s.duration for s in ses), Fraction(0)), len(ses)),
            "views_per_session": ratio(sum(s.pageviews for s in ses), len(ses)),
        }
        out[k] = {m: vals[m] for m in metrics}
    return out


def zero(metrics: list[str]) -> dict[str, Any]:
    return {m: 0 if m not in DECIMALS else Fraction(0) for m in metrics}


def rounded(m: str, v: Any, mode: str = ROUND_HALF_UP) -> Any:
    if m not in DECIMALS:
        return v
    q = Decimal(1).scaleb(-DECIMALS[m])
    exact = Decimal(v.numerator) / Decimal(v.denominator) if isinstance(v, Fraction) else Decimal(v)
    return float(exact.quantize(q, rounding=mode))


def change(
    m: str, cur: Any, prev: Any, mode: str = ROUND_HALF_UP, exact: bool = False
) -> float | None:
    """From the rounded values the user sees, or (exact=True) from the unrounded ones: the
    contract says only "rounded to 1 decimal", so the test accepts either reading."""
    if exact:
        c, p = Fraction(cur), Fraction(prev)
    else:
        c, p = Fraction(str(rounded(m, cur, mode))), Fraction(str(rounded(m, prev, mode)))
    if p == 0:
        return None
    diff = (c - p) * 100 if m in POINTS else (c - p) / p * 100
    return rounded("time_on_page", diff, mode)  # 1 decimal


def query(events: list[dict], req: dict, site_timezones: dict[str, str],
          site_goals: dict[str, list[dict]] | None = None) -> dict[str, Any]:  # fmt: skip
    """The whole answer (all pages): metric values exact (Fraction); `shape` rounds them.

    `site_goals`: each site's goals ({name, event_name | page_path})."""
    metrics, dims, pred, base = validate(req)
    goals = Goals(site_goals or {}, base) if base is not None else None
    site = req.get("site_id") or None
    name = req.get("timezone") or (site_timezones[site] if site else "UTC")
    try:
        tz = ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise QueryError("timezone", f"unknown time zone {name!r}") from None
    rng = resolve(req.get("date_range"), tz, "date_range")
    cmp = comparison_range(req["compare"], rng, tz) if req.get("compare") else None
    if any("_session" not in e for e in events):  # sessions span sites' events alike: once
        sessionize(events)
    events = [e for e in events if site is None or e["site_id"] == site]
    unit = next((d[5:] for d in dims if d in TIME_DIMS), "")
    main = compute(events, rng, metrics, dims, pred, tz, goals)
    if not dims:
        main = {(): main.get((), zero(metrics))}
    elif dims == [f"time:{unit}"]:
        main = {(fmt(b),): main.get((fmt(b),), zero(metrics)) for b in buckets(rng, unit, tz)}
    rows = [{"dimensions": list(k), "metrics": v} for k, v in main.items()]
    order = req.get("order_by") or (
        [{"field": f"time:{unit}", "desc": False}]
        if unit
        else [{"field": metrics[0], "desc": True}]
    )
    rows.sort(key=lambda r: tuple(r["dimensions"]))
    for o in reversed(order):
        rows.sort(key=sort_key(o["field"], dims), reverse=bool(o.get("desc")))
    answer: dict[str, Any] = {"results": rows}
    meta: dict[str, Any] = {"timezone": name, "date_range": span(rng, tz), "total_rows": len(rows)}
    if req.get("include_totals"):
        answer["totals"] = {"metrics": compute(events, rng, metrics, [], pred, tz, goals).get(
            (), zero(metrics))}  # fmt: skip
    if cmp:
        meta["comparison_date_range"] = span(cmp, tz)
        other = compute(events, cmp, metrics, dims, pred, tz, goals)
        ti = dims.index(f"time:{unit}") if unit else None
        if ti is not None:
            mine = {fmt(b): i for i, b in enumerate(buckets(rng, unit, tz))}
            theirs = [fmt(b) for b in buckets(cmp, unit, tz)]
        for r in rows:
            k = list(r["dimensions"])
            if ti is not None:
                pos = mine[k[ti]]
                # Past the comparison's last bucket: "" (contract silent; a proto string has no null).
                k[ti] = theirs[pos] if pos < len(theirs) else ""
            vals = other.get(tuple(k), zero(metrics))
            r["comparison"] = {"dimensions": k, "metrics": vals}
        if "totals" in answer:
            answer["totals"]["comparison"] = {"metrics": compute(
                events, cmp, metrics, [], pred, tz, goals).get((), zero(metrics))}  # fmt: skip
    answer["meta"] = meta
    return answer


def sort_key(f: str, dims: list[str]) -> Any:
    """Metrics sort by the value the user sees (rounded); our reading, the contract is silent."""
    if f in dims:
        i = dims.index(f)
        return lambda r: r["dimensions"][i]
    return lambda r: rounded(f, r["metrics"][f])


def span(rng: Range, tz: ZoneInfo) -> dict[str, str]:
    return {b: rng_at.replace(tzinfo=UTC).astimezone(tz).isoformat()
            for b, rng_at in (("start", rng.lo), ("end", rng.hi))}  # fmt: skip


def shape(answer: dict, metrics: list[str], mode: str = ROUND_HALF_UP) -> dict[str, Any]:
    """The exact answer as the contract's JSON: metrics as lists, rounded, `change` added."""

    def out(block: dict) -> dict:
        res = {k: v for k, v in block.items() if k not in ("metrics", "comparison")}
        res["metrics"] = [rounded(m, block["metrics"][m], mode) for m in metrics]
        if "comparison" in block:
            c = block["comparison"]
            res["comparison"] = {**({"dimensions": c["dimensions"]} if "dimensions" in c else {}),
                                 "metrics": [rounded(m, c["metrics"][m], mode) for m in metrics],
                                 "change": [change(m, block["metrics"][m], c["metrics"][m], mode)
                                            for m in metrics]}  # fmt: skip
        return res

    shaped = {"results": [out(r) for r in answer["results"]], "meta": answer["meta"]}
    if "totals" in answer:
        shaped["totals"] = out(answer["totals"])
    return shaped
