"""Shared by ingestion, the stores and the queries: the event, the pageview, the session gap."""

import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, TypeAlias

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


EVENT_FIELDS = tuple(f.name for f in fields(Event))
# Events as columns: each of EVENT_FIELDS (and maybe "previous_visitor_id") → one list,
# row i of every list one event. Imports are logged and applied in this shape.
Columns: TypeAlias = dict[str, list[Any]]
_event_fields = operator.attrgetter(*EVENT_FIELDS)


def transposed(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> Columns:
    """Rows of values (one per name, in order) as columns, transposed in C."""
    columns = list(map(list, zip(*rows, strict=True)))
    return dict(zip(names, columns, strict=True)) if columns else {name: [] for name in names}


def columns_of(events: Sequence[Event]) -> Columns:
    """The events as columns."""
    return transposed(EVENT_FIELDS, map(_event_fields, events))


def in_time_order(columns: Columns) -> Columns:
    """The rows sorted by ts, stably: equal timestamps keep their receive order."""
    ts = columns["ts"]
    order = sorted(range(len(ts)), key=ts.__getitem__)
    if len(order) < 2 or order == list(range(len(order))):
        return dict(columns)
    pick = operator.itemgetter(*order)
    return {name: list(pick(values)) for name, values in columns.items()}
