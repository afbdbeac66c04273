"""Seeds a demo project with 35 days of traffic into an empty store; prints a dashboard link and a curl line.

The demo's hits go through the import pipeline (limits, user-agent and
referrer parsing, GeoIP, daily-salted visitor ids, sessions, group commit)
with real user agents and referrers; a small GeoIP database for the demo's
documentation-range IPs is written beside the stores.
"""

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mmdb_writer import MMDBWriter
from netaddr import IPSet
from sqlalchemy import func, select
from weldpulse.config import Settings
from weldpulse.ingest import enrich
from weldpulse.ingest.collector import Collector
from weldpulse.ingest.hits import Hit, Site, check, enrich_hit
from weldpulse.ingest.visitors import Salts
from weldpulse.storage import accounts, engines
from weldpulse.storage.schema import projects

PAGES = [
    "/",
    "/pricing",
    "/blog",
    "/docs",
    "/docs/install",
    "/about",
    "/blog/cookieless",
    "/signup",
]
REFERRERS = ["", "https://www.google.com/", "https://news.ycombinator.com/item?id=4242",
             "https://t.co/x1y2z3", "https://github.com/weldpulse/weldpulse",
             "https://duckduckgo.com/", "https://www.reddit.com/r/selfhosted/", "https://www.bing.com/search?q=analytics"]  # fmt: skip
PLACES = [("US", "California", "San Francisco"), ("US", "New York", "New York"),
          ("DE", "Berlin", "Berlin"), ("GB", "England", "London"), ("FR", "Île-de-France", "Paris"),
          ("IN", "Karnataka", "Bengaluru"), ("BR", "São Paulo", "São Paulo"), ("JP", "Tokyo", "Tokyo")]  # fmt: skip
# Campaign links of some landings, by referrer (no extra random draws: the demo's numbers stay).
CAMPAIGNS = {
    "https://t.co/x1y2z3": "?utm_source=twitter&utm_medium=social&utm_campaign=launch",
    "https://www.bing.com/search?q=analytics": "?utm_source=bing&utm_medium=cpc&utm_campaign=analytics+tools",
    "https://github.com/weldpulse/weldpulse": "?ref=github&utm_campaign=readme",
}
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (iPad; CPU OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0",
]  # fmt: skip


def write_demo_geoip(path: Path) -> Path:
    """Country i of PLACES owns 2001:db8:i::/48; the demo's visitors live there."""
    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City")
    for i, (country, region, city) in enumerate(PLACES):
        record = {
            "country": {"iso_code": country},
            "subdivisions": [{"names": {"en": region}}],
            "city": {"names": {"en": city}},
        }
        writer.insert_network(IPSet([f"2001:db8:{i}::/48"]), record)
    writer.to_db_file(str(path))
    return path


def demo_hits(site: Site, now: datetime, days: int = 35, seed: int = 7) -> list[Hit]:
    rng = random.Random(seed)
    # A pool of people: some come back on several days.
    people = [
        (f"2001:db8:{rng.choices(range(len(PLACES)), weights=[30, 12, 12, 10, 8, 10, 8, 10])[0]}::{n:x}",
         rng.choices(USER_AGENTS, weights=[25, 15, 6, 8, 20, 15, 4, 7])[0])
        for n in range(1, 2500)
    ]  # fmt: skip
    hits = []
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    for day in range(days):
        weekday_factor = 0.6 if (start + timedelta(days=day)).weekday() >= 5 else 1.0
        for _ in range(int(rng.gauss(120, 15) * weekday_factor)):
            ts = start + timedelta(days=day, hours=rng.betavariate(4, 3) * 24)
            ip, ua = rng.choice(people)
            referrer = rng.choices(REFERRERS, weights=[40, 30, 8, 7, 6, 5, 4, 3])[0]
            first = True
            for _view in range(min(1 + int(rng.expovariate(0.6)), 8)):
                if ts > now:
                    break
                page = rng.choices(PAGES, weights=[30, 15, 12, 10, 6, 5, 8, 4])[0]
                url = f"https://{site.domain}{page}{CAMPAIGNS.get(referrer, '') if first else ''}"
                ref = referrer if first else f"https://{site.domain}/"
                hits.append(Hit(site, ts, "pageview", url, ref, ua, ip, {}))
                if page == "/pricing" and rng.random() < 0.2:
                    click = ts + timedelta(seconds=9)
                    plan = {"plan": rng.choice(["pro", "free"])}
                    hits.append(Hit(site, click, "signup_click", url, ref, ua, ip, plan))
                ts += timedelta(seconds=rng.randint(5, 400))
                first = False
    return sorted(hits, key=lambda h: h.ts)


def main() -> None:
    settings = Settings.from_env()
    meta, events = engines.open_stores(settings.metadata_url, settings.events_url)
    assert events is not None
    with meta.begin() as conn:
        project = conn.execute(select(projects.c.id).where(projects.c.name == "Demo")).scalar()
        empty = not conn.execute(select(func.count()).select_from(projects)).scalar()
    if project is None and empty:
        with meta.begin() as conn:
            project = accounts.create_project(conn, "Demo", "pro")
            row = accounts.create_site(conn, project, "demo.weldpulse.test", "Demo site")
        site = Site(row["id"], row["domain"])
        geo = enrich.GeoIP(str(write_demo_geoip(settings.data_dir / "demo-geoip.mmdb")))
        salts = Salts(meta)
        now = datetime.now(UTC).replace(tzinfo=None)
        items = [enrich_hit(h, check(h), salts, geo) for h in demo_hits(site, now)]
        collector = Collector(events)
        stored = collector.submit(items).result()
        collector.close()
        print(f"demo: imported {stored} events for site {site.domain}")
    if project is None:
        print("demo: store has projects of its own; no demo key created")
        return
    with meta.begin() as conn:
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    end = datetime.now(UTC)
    begin = end - timedelta(days=30)
    print("Once `weldpulse up` is serving, open the dashboard (the key rides in the fragment,")
    print("which the browser never sends; the page keeps it in the tab's sessionStorage):\n")
    print(f"  http://127.0.0.1:{settings.http_port}/dashboard/#key={key}\n")
    print("or try the API:\n")
    print(
        f"  curl -s http://127.0.0.1:{settings.http_port}/v1/stats "
        f"-H 'Authorization: Bearer {key}' "
        f"-G -d start={begin:%Y-%m-%dT00:00:00Z} -d end={end:%Y-%m-%dT23:59:59Z}\n"
    )
    events.dispose()


if __name__ == "__main__":
    main()
