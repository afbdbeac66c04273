"""Seeds a demo project with 35 days of traffic into an empty store; prints a curl line."""

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from weldpulse import accounts, db, ingest
from weldpulse.config import Settings
from weldpulse.schema import projects

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
SOURCES = ["Direct / None", "Google", "Hacker News", "Twitter", "GitHub", "DuckDuckGo", "Reddit"]
PLACES = [("US", "California"), ("US", "New York"), ("DE", "Berlin"), ("GB", "England"),
          ("FR", "Île-de-France"), ("IN", "Karnataka"), ("BR", "São Paulo"),
          ("JP", "Tokyo")]  # fmt: skip
DEVICES = [("desktop", "Chrome", "Windows"), ("desktop", "Chrome", "macOS"),
           ("desktop", "Firefox", "Linux"), ("desktop", "Safari", "macOS"),
           ("mobile", "Safari", "iOS"), ("mobile", "Chrome", "Android"),
           ("tablet", "Safari", "iOS"), ("desktop", "Edge", "Windows")]  # fmt: skip


def demo_events(site_id: str, now: datetime, days: int = 35, seed: int = 7) -> list[ingest.Event]:
    rng = random.Random(seed)
    out = []
    start = (now - timedelta(days=days)).replace(minute=0, second=0, microsecond=0)
    for day in range(days):
        weekday_factor = 0.6 if (start + timedelta(days=day)).weekday() >= 5 else 1.0
        for _ in range(int(rng.gauss(120, 15) * weekday_factor)):
            ts = start + timedelta(days=day, hours=rng.betavariate(4, 3) * 24)
            if ts > now:
                continue
            visitor = rng.getrandbits(63)
            source = rng.choices(SOURCES, weights=[40, 30, 8, 7, 6, 5, 4])[0]
            country, region = rng.choices(PLACES, weights=[30, 12, 12, 10, 8, 10, 8, 10])[0]
            device, browser, os_name = rng.choices(DEVICES, weights=[25, 15, 6, 8, 20, 15, 4, 7])[0]
            for _view in range(min(1 + int(rng.expovariate(0.6)), 8)):
                page = rng.choices(PAGES, weights=[30, 15, 12, 10, 6, 5, 8, 4])[0]
                common = dict(site_id=site_id, visitor_id=visitor, pathname=page,
                              referrer_source=source, country=country, region=region,
                              device_type=device, browser=browser, os=os_name)  # fmt: skip
                out.append(ingest.Event(ts=ts, name="pageview", **common))
                if page == "/pricing" and rng.random() < 0.2:
                    plan = {"plan": rng.choice(["pro", "free"])}
                    click = ts + timedelta(seconds=9)
                    out.append(ingest.Event(ts=click, name="signup_click", props=plan, **common))
                ts += timedelta(seconds=rng.randint(5, 400))
    return out


def main() -> None:
    settings = Settings.from_env()
    meta, events = db.open_stores(settings.metadata_url, settings.events_url)
    assert events is not None
    with meta.begin() as conn:
        project = conn.execute(select(projects.c.id).where(projects.c.name == "Demo")).scalar()
        if (
            project is None
            and not conn.execute(select(func.count()).select_from(projects)).scalar()
        ):
            project = accounts.create_project(conn, "Demo", "pro")
            site = accounts.create_site(conn, project, "demo.weldpulse.test", "Demo site")
            seeded = ingest.record(
                events, demo_events(site["id"], datetime.now(UTC).replace(tzinfo=None))
            )
            print(f"demo: seeded {seeded} events for site {site['domain']}")
        if project is None:
            print("demo: store has projects of its own; no demo key created")
            return
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    end = datetime.now(UTC)
    begin = end - timedelta(days=30)
    print("Try it once `weldpulse up` is serving:\n")
    print(
        f"  curl -s http://127.0.0.1:{settings.http_port}/v1/stats "
        f"-H 'Authorization: Bearer {key}' "
        f"-G -d start={begin:%Y-%m-%dT00:00:00Z} -d end={end:%Y-%m-%dT23:59:59Z}\n"
    )
    events.dispose()


if __name__ == "__main__":
    main()
