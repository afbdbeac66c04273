"""Shared by ingestion, the stores and the queries: the event, the pageview, the session gap."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

# The event name the tracker sends for a page load; every other name is a custom event.
PAGEVIEW = "pageview"
# A session ends after this long without an event; so a hit this soon after
# midnight may continue a session begun the day before.
SESSION_GAP = timedelta(minutes=30)
# The stores' timestamp resolution: the last instant before `t` is `t - ONE_MICROSECOND`.
ONE_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class Event:
    """One event after enrichment: everything the stores keep of it."""

    site_id: str
    ts: datetime  # naive UTC
    name: str
    visitor_id: int
    pathname: str = ""
    referrer_source: str = "Direct / None"
    country: str = ""
    region: str = ""
    device_type: str = ""
    browser: str = ""
    os: str = ""
    props: dict[str, str] = field(default_factory=dict)
    # What the query dimensions need ("" = none); see docs/metrics.md.
    hostname: str = ""  # host of the page URL, lower-case, without www.
    referrer: str = ""  # referrer host + path, no query or fragment
    utm_source: str = ""
    utm_medium: str = ""
    utm_campaign: str = ""
    utm_content: str = ""
    utm_term: str = ""
    city: str = ""  # English name from the GeoIP database
