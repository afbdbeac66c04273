"""A deterministic data set for the query reference: generated, imported through Envoy, read back.

Two sites of one fresh project get a few thousand events in windows around the
days where answers go wrong: DST changes (Europe/Berlin, America/New_York,
Australia/Lord_Howe), 29 Feb 2024 and its year-over-year day, local and UTC
midnights (also Asia/Kolkata's). Visitors carry imported ids, so sessions are
as generated: bounces, sessions crossing midnight, custom events after the last
pageview, props present or missing, same-timestamp ties, UTM parameters,
referrers and places of the test GeoIP database (tests/conftest.py PLACES).
"""

import json
import random
import secrets
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from conftest import Stack
from sqlalchemy import text
from weldpulse.ingest.visitors import supplied_visitor_id
from weldpulse.storage import accounts

# (first day, days): the windows events fall in.
WINDOWS = [
    (date(2024, 2, 28), 3), (date(2023, 2, 27), 3),  # 29 Feb and a year before
    (date(2025, 10, 25), 3), (date(2026, 10, 24), 3),  # Berlin autumn, and a year before
    (date(2026, 3, 7), 3), (date(2026, 3, 28), 3),  # New York and Berlin spring
    (date(2026, 10, 3), 3), (date(2026, 10, 31), 3),  # Lord Howe spring, New York autumn
    (date(2026, 11, 20), 3),
]  # fmt: skip
# UTC times of day where days, hours and sessions split: midnights (UTC, Berlin,
# New York, Kolkata, Lord Howe) and DST changes.
HOT = [time(23, 45), time(22, 50), time(23, 10), time(4, 40), time(18, 15), time(0, 55),
       time(1, 20), time(6, 50), time(5, 50), time(15, 40), time(12, 50)]  # fmt: skip
AGENTS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
    "",
]  # fmt: skip
IPS = ["203.0.113.7", "2001:db8::5", "198.51.100.20", ""]
PATHS = ["/", "/pricing", "/blog/dst", "/Blog/Über", "/docs/a", "/docs/b", "/a%20b"]
REFERRERS = ["", "", "https://www.google.com/", "https://www.google.de/search?q=x",
             "https://t.co/abc", "https://news.ycombinator.com/item?id=1", "https://duckduckgo.com/",
             "https://blog.partner.io/post?x=1#frag", "https://www.reddit.com/r/x/", "OWN"]  # fmt: skip
UTMS = ["", "", "", "utm_source=newsletter&utm_medium=email&utm_campaign=spring+sale",
        "utm_medium=cpc&utm_campaign=brand%20%C3%A9t%C3%A9&utm_term=dst",
        "utm_medium=paid_social&utm_content=a&utm_content=b", "utm_medium=affiliate",
        "utm_medium=banner&utm_campaign=Spring+Sale", "utm_source=partner&utm_medium=retargeting"]  # fmt: skip
CUSTOM = ["signup", "download", "Signup"]
# Goals per site (conversions-api.md): `*` vs `**` (untied URLs gain `/x` segments), names
# differing by case, the same name on both sites with different conditions, and events
# completing several goals (every pageview completes "Any page").
GOALS = [
    [{"name": "Signup", "event_name": "signup"}, {"name": "signup", "event_name": "Signup"},
     {"name": "Docs", "page_path": "/docs/*"}, {"name": "Docs deep", "page_path": "/docs/**"},
     {"name": "Top level", "page_path": "/*"}, {"name": "Any page", "page_path": "/**"},
     {"name": "Blogs", "page_path": "/*log/**"}, {"name": "Pricing", "page_path": "/pricing"},
     {"name": "Download", "event_name": "download"}, {"name": "Nothing", "page_path": "/none*"},
     {"name": "Über", "page_path": "/Blog/Über"}, {"name": "Space", "page_path": "/a%20b*"}],
    [{"name": "Signup", "event_name": "Signup"}, {"name": "Docs", "page_path": "/docs*"},
     {"name": "Any page", "page_path": "**"}, {"name": "Top level", "page_path": "/*"},
     {"name": "Pricing", "page_path": "/pricing/**"}],
]  # fmt: skip
PLANS = ["free", "pro", "Pro", "team plan", "(none)"]


@dataclass
class DataSet:
    project: str
    key: str  # stats:read
    sites: dict[str, str]  # site id -> time zone
    domains: dict[str, str]  # site id -> domain
    events: list[dict]  # as the reference wants them
    windows: list[tuple[date, int]]
    goals: dict[str, list[dict]]  # site id -> its goals, as created


def _visitor(rng: random.Random, domain: str, start: datetime, opaque: str) -> list[dict]:
    agent, ip = rng.choice(AGENTS), rng.choice(IPS)
    out: list[dict] = []
    ts = start
    for _ in range(rng.choice([1, 1, 2, 3])):  # sessions
        ref = rng.choice(REFERRERS)
        ref = f"https://{domain}/pricing" if ref == "OWN" else ref
        query = rng.choice(UTMS)
        host = rng.choice([domain, f"www.{domain}", f"blog.{domain}", domain.upper()])
        for i in range(rng.choice([1, 1, 2, 3, 5, 8])):
            custom = rng.random() < 0.2
            path = rng.choice(PATHS)
            props: dict[str, Any] = {}
            if (custom and rng.random() < 0.7) or rng.random() < 0.15:  # pageviews too
                props["plan"] = rng.choice(PLANS)
            if custom and rng.random() < 0.4:
                props["n"] = rng.randint(1, 3)
            out.append({
                "timestamp": ts.isoformat() + "Z", "name": rng.choice(CUSTOM) if custom else "pageview",
                "url": f"https://{host}{path}" + (f"?{query}" if query and i == 0 else ""),
                "referrer": ref if i == 0 else "", "user_agent": agent, "ip": ip,
                "visitor_id": opaque, "props": props,
            })  # fmt: skip
            ts += timedelta(seconds=rng.choice([0, 0, 5, 60, 600, 1500, 1799, 1800]))
        ts += timedelta(seconds=rng.choice([1801, 3600, 7200, 40_000]))
        if rng.random() < 0.3:  # a custom event after the session's last pageview
            out.append({**out[-1], "name": "download", "props": {"plan": "pro"},
                        "timestamp": (ts - timedelta(seconds=1801)).isoformat() + "Z"})  # fmt: skip
    return out


def generate(domains: list[str], seed: int = 10) -> list[list[dict]]:
    """Per site, the import events in the order they are sent."""
    rng = random.Random(seed)
    per_site: list[list[dict]] = [[] for _ in domains]
    for first, days in WINDOWS:
        for v in range(36):
            s = rng.randrange(len(domains))
            day = datetime.combine(first + timedelta(days=rng.randrange(days)), time())
            at = (
                rng.choice(HOT)
                if rng.random() < 0.5
                else time(rng.randrange(24), rng.randrange(60))
            )
            start = datetime.combine(day.date(), at) + timedelta(seconds=rng.randrange(600))
            # Imported ids repeat across windows and sites: one id, many days.
            per_site[s] += _visitor(rng, domains[s], start, f"user-{v % 24}")
    for events in per_site:
        _untie(events)
        events.sort(key=lambda e: e["timestamp"])  # stable: ties keep their order
    return per_site


def _untie(events: list[dict]) -> None:
    """Stored rows are matched to these by (visitor, ts, name, path, props): keep those unique."""
    seen: set[tuple] = set()
    for e in events:
        while _key(e["visitor_id"], e) in seen:
            base, sep, query = e["url"].partition("?")
            e["url"] = f"{base}/x{sep}{query}"
        seen.add(_key(e["visitor_id"], e))


def _key(visitor: Any, e: dict) -> tuple:
    url = e["url"].split("?")[0].split("//", 1)[1]
    props = {k: str(v) for k, v in e["props"].items()}
    return (
        visitor,
        e["timestamp"],
        e["name"],
        url[url.index("/") :],
        json.dumps(props, sort_keys=True),
    )


def load(stack: Stack, timezones: tuple[str, ...] = ("Europe/Berlin", "UTC")) -> DataSet:
    """Creates the project, imports the events through Envoy and reads the stored rows back."""
    tag = secrets.token_hex(3)
    domains = [f"q{tag}-{i}.example" for i in range(len(timezones))]
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, f"query-ref-{tag}", "pro")
        sites = [
            accounts.create_site(conn, project, d, timezone=tz)["id"]
            for d, tz in zip(domains, timezones, strict=True)
        ]
        site_ids: list[str] = [str(s) for s in sites]
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
        write = accounts.create_api_key(conn, project, ["events:write"])["key"]
        admin = accounts.create_api_key(conn, project, ["sites:write"])["key"]
        # The reference's default zone is the one the store holds, as the engine reads it.
        found = conn.execute(
            text("SELECT id, timezone FROM sites WHERE project_id = :p"), {"p": project}
        )
        stored_tz = {r[0]: r[1] for r in found}
    goals: dict[str, list[dict]] = {}
    for site, site_goals in zip(site_ids, GOALS, strict=False):
        goals[site] = []
        for goal in site_goals:
            resp = stack.http.post(f"/v1/sites/{site}/goals", json=goal,
                                   headers={"Authorization": f"Bearer {admin}"})  # fmt: skip
            assert resp.status_code == 200, resp.text
            goals[site].append(goal)
    sent: dict[tuple, dict] = {}
    for site, events in zip(site_ids, generate(domains), strict=True):
        for lo in range(0, len(events), 1000):
            batch = events[lo : lo + 1000]
            resp = stack.http.post("/v1/import", json={"site_id": site, "events": batch},
                                   headers={"Authorization": f"Bearer {write}"})  # fmt: skip
            assert resp.status_code == 200 and resp.json()["rejected"] == [], resp.text
        for seq, e in enumerate(events):
            sent[_key(supplied_visitor_id(site, e["visitor_id"]), e)] = {
                **e,
                "seq": seq,
                "site_id": site,
            }
    rows = _read(stack, site_ids)
    assert len(rows) == len(sent), (len(rows), len(sent))
    out = []
    for r in rows:
        props = json.loads(r["props"] or "{}")
        ts = r["ts"].isoformat() + "Z"
        probe = {"timestamp": ts, "name": r["name"], "url": f"h://x{r['pathname']}", "props": props}
        e = sent.pop(_key(r["visitor_id"], probe))
        out.append({
            "site_id": r["site_id"], "ts": r["ts"], "seq": r.get("seq", e["seq"]), "name": r["name"],
            "visitor_id": r["visitor_id"], "pathname": r["pathname"], "url": e["url"],
            "referrer": e["referrer"], "referrer_source": r["referrer_source"],
            "country": r["country"], "region": r["region"], "city": r.get("city", ""),
            "device_type": r["device_type"], "browser": r["browser"], "os": r["os"], "props": props,
            "_sent": (r["site_id"], r["ts"], e["seq"]),
        })  # fmt: skip
    # The stored `seq` must order ties as they were received (query-api.md): the import order.
    stored = sorted(out, key=lambda e: (e["site_id"], e["ts"], e["seq"]))
    assert [e["_sent"] for e in stored] == sorted(e["_sent"] for e in out)
    for e in out:
        del e["_sent"]
    return DataSet(
        project,
        key,
        {s: stored_tz[s] for s in site_ids},
        dict(zip(site_ids, domains, strict=True)),
        out,
        WINDOWS,
        goals,
    )


def _read(stack: Stack, site_ids: list[str]) -> list[dict]:
    """Every column of the stored events of these sites."""
    marks = ", ".join(f":s{i}" for i in range(len(site_ids)))
    query = text(f"SELECT * FROM events WHERE site_id IN ({marks})")
    with stack.events.connect() as conn:
        params = {f"s{i}": s for i, s in enumerate(site_ids)}
        return [dict(r) for r in conn.execute(query, params).mappings()]
