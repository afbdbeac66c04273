"""A small event set whose every figure is computed by hand in the tests (2024-01-15 UTC)."""

from datetime import datetime, timedelta

from weldpulse.domain import Event

DAY = "2024-01-15"
DAY_START, DAY_END = f"{DAY}T00:00:00Z", f"{DAY}T23:59:59Z"
WIDE_DAY = "2024-02-01"  # 60 distinct pages/sources/places: exercises limits


def at(clock: str, day: str = DAY) -> datetime:
    return datetime.fromisoformat(f"{day}T{clock}")


# Visitor attributes: (source, country, region, device_type, browser, os).
GOOGLE_CA_MAC = ("Google", "US", "California", "desktop", "Chrome", "macOS")
HN_BERLIN_IPHONE = ("Hacker News", "DE", "Berlin", "mobile", "Safari", "iOS")
GOOGLE_NY_LINUX = ("Google", "US", "New York", "desktop", "Firefox", "Linux")
TWITTER_ENGLAND_EDGE = ("Twitter", "GB", "England", "desktop", "Edge", "Windows")
GITHUB_PARIS_IPAD = ("GitHub", "FR", "Île-de-France", "tablet", "Safari", "iOS")
DIRECT = ("Direct / None", "US", "California", "desktop", "Chrome", "macOS")


def ev(
    site: str, visitor: int, ts: datetime, path: str, attrs: tuple, name: str = "pageview"
) -> Event:
    source, country, region, device, browser, os_name = attrs
    return Event(
        site_id=site, ts=ts, name=name, visitor_id=visitor, pathname=path,
        referrer_source=source, country=country, region=region,
        device_type=device, browser=browser, os=os_name,
    )  # fmt: skip


def project_a_events(site1: str, site2: str) -> list[Event]:
    return [
        # V1, session 1: 3 pageviews, 2 custom events, 300 s.
        ev(site1, 1, at("10:00:00"), "/", GOOGLE_CA_MAC),
        ev(site1, 1, at("10:00:30"), "/pricing", GOOGLE_CA_MAC),
        ev(site1, 1, at("10:02:00"), "/pricing", GOOGLE_CA_MAC, "signup_click"),
        ev(site1, 1, at("10:03:00"), "/pricing", GOOGLE_CA_MAC, "signup_click"),
        ev(site1, 1, at("10:05:00"), "/docs", GOOGLE_CA_MAC),
        # V1, session 2 after 55 idle minutes: a bounce, direct.
        ev(site1, 1, at("11:00:00"), "/pricing", DIRECT),
        # V2: a bounce from Hacker News.
        ev(site1, 2, at("10:10:00"), "/", HN_BERLIN_IPHONE),
        # V3: one session of 2,700 s (gaps of 20 and 25 minutes).
        ev(site1, 3, at("10:20:00"), "/pricing", GOOGLE_NY_LINUX),
        ev(site1, 3, at("10:40:00"), "/", GOOGLE_NY_LINUX),
        ev(site1, 3, at("11:05:00"), "/pricing", GOOGLE_NY_LINUX),
        # V4: a custom event and no pageview: a session, not a bounce.
        ev(site1, 4, at("10:30:00"), "/signup", TWITTER_ENGLAND_EDGE, "newsletter"),
        # V5: a session across midnight; its second pageview is after the range.
        ev(site1, 5, at("23:50:00"), "/", GITHUB_PARIS_IPAD),
        ev(site1, 5, at("00:10:00", "2024-01-16"), "/docs", GITHUB_PARIS_IPAD),
        # Second site of project A: V6 bounces; V7 is a second before the range.
        ev(site2, 6, at("12:00:00"), "/", GOOGLE_CA_MAC),
        ev(site2, 7, at("23:59:59", "2024-01-14"), "/", DIRECT),
    ]


def project_b_events(site: str) -> list[Event]:
    bing = ("Bing", "SE", "Stockholm", "desktop", "Chrome", "Windows")
    return [
        ev(site, 8, at("10:00:00"), "/secret", bing),
        ev(site, 8, at("10:01:00"), "/secret", bing),
    ]


def wide_events(site: str) -> list[Event]:
    """60 visitors with a page, source, region and browser each, on WIDE_DAY."""
    start = at("08:00:00", WIDE_DAY)
    return [
        ev(site, 100 + i, start + timedelta(seconds=i), f"/p{i:02d}",
           (f"src{i:02d}.example", "US", f"Region {i:02d}", "desktop", f"B{i:02d}", "Linux"))
        for i in range(60)
    ]  # fmt: skip
