"""From a raw hit to a storable event: limits, parsing, enrichment and the visitor id."""

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any, TypeVar

from weldpulse.domain import EVENT_FIELDS, SESSION_GAP, Columns, Event
from weldpulse.errors import BadRequest
from weldpulse.ingest import enrich
from weldpulse.ingest.visitors import Salts, supplied_visitor_id

# Limits as Plausible and Umami set them.
MAX_URL_BYTES = 2000
MAX_NAME_CHARS = 120
MAX_PROPS = 30
MAX_PROP_KEY_BYTES = 300
MAX_PROP_VALUE_BYTES = 2000
MAX_VISITOR_ID_BYTES = 200
# Bots are told apart by regexes over the user agent; real browsers send
# 100-300 bytes, so anything longer is refused before any parser runs.
MAX_USER_AGENT_BYTES = 512
MAX_IP_BYTES = 64
MAX_FUTURE = timedelta(minutes=5)
# Older events than this are no web analytics; near datetime.min, session
# arithmetic (ts - 30 minutes, the previous day's salt) would overflow.
MIN_TIMESTAMP = datetime(1970, 1, 1)
T = TypeVar("T")


@dataclass(frozen=True)
class Site:
    id: str
    domain: str


@dataclass(frozen=True)
class Hit:
    """One event as received, before enrichment."""

    site: Site
    ts: datetime  # naive UTC
    name: str
    url: str
    referrer: str
    user_agent: str
    ip: str
    props: dict[str, Any]
    opaque_visitor: str = ""


@dataclass(frozen=True)
class Enriched:
    """A storable event, and the previous day's visitor id that may continue a session."""

    event: Event
    previous_visitor_id: int | None


def _check_bytes(field: str, value: str, limit: int) -> None:
    if len(value.encode()) > limit:
        raise BadRequest(f"{field}: longer than {limit} bytes")
    check_text(field, value)


def check_text(field: str, value: str) -> None:
    """Text stores refuse NUL (PostgreSQL does), so it is bad input, not a server error."""
    if "\x00" in value:
        raise BadRequest(f"{field}: contains a NUL character")


def _prop_text(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        raise BadRequest(f"props.{key}: must be a finite number")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str | int | float):
        return str(value)
    raise BadRequest(f"props.{key}: must be a string, number or boolean")


@dataclass(frozen=True)
class _Refused:
    message: str


def _name(name: str) -> None:
    if not name.strip():
        raise BadRequest("name: required")
    if len(name) > MAX_NAME_CHARS:
        raise BadRequest(f"name: longer than {MAX_NAME_CHARS} characters")
    check_text("name", name)


def _user_agent(user_agent: str) -> None:
    _check_bytes("user_agent", user_agent, MAX_USER_AGENT_BYTES)


def _url_given(url: str) -> None:
    if not url.strip():
        raise BadRequest("url: required")
    _check_bytes("url", url, MAX_URL_BYTES)


def _referrer_bytes(referrer: str) -> None:
    _check_bytes("referrer", referrer, MAX_URL_BYTES)


def _url_on_site(url_domain: tuple[str, str]) -> None:
    url, domain = url_domain
    if not url.lower().startswith(("http://", "https://")):
        raise BadRequest("url: must be an http(s) URL")
    if not enrich.on_domain(url, domain):
        raise BadRequest(f"url: not on the site's domain {domain}")


def _referrer_url(referrer: str) -> None:
    enrich.split_url("referrer", referrer)


def _visitor(opaque: str) -> None:
    _check_bytes("visitor_id", opaque, MAX_VISITOR_ID_BYTES)


def _timestamp(ts: datetime) -> None:
    if ts > datetime.now(UTC).replace(tzinfo=None) + MAX_FUTURE:
        raise BadRequest("timestamp: more than 5 minutes in the future")
    if ts < MIN_TIMESTAMP:
        raise BadRequest(f"timestamp: before {MIN_TIMESTAMP:%Y-%m-%d}")


def check(hit: Hit) -> dict[str, str]:
    """Raises BadRequest naming the first field over its limit; returns the props as text."""
    _name(hit.name)
    _user_agent(hit.user_agent)
    _url_given(hit.url)
    _referrer_bytes(hit.referrer)
    _url_on_site((hit.url, hit.site.domain))
    _referrer_url(hit.referrer)
    _visitor(hit.opaque_visitor)
    props = _props(hit.props) if hit.props else {}
    _timestamp(hit.ts)
    return props


def _props(raw: dict[str, Any]) -> dict[str, str]:
    if len(raw) > MAX_PROPS:
        raise BadRequest(f"props: more than {MAX_PROPS} properties")
    props = {}
    for key, value in raw.items():
        _check_bytes("props key", key, MAX_PROP_KEY_BYTES)
        props[key] = _prop_text(key, value)
        _check_bytes(f"props.{key}", props[key], MAX_PROP_VALUE_BYTES)
    return props


def check_ip(ip: str) -> None:
    """An imported event's IP must be one: it is hashed and looked up, never stored."""
    _check_bytes("ip", ip, MAX_IP_BYTES)
    try:
        ipaddress.ip_address(ip.strip())
    except ValueError:
        raise BadRequest("ip: not an IPv4 or IPv6 address") from None


def enrich_hit(
    hit: Hit,
    props: dict[str, str],
    salts: Salts,
    geo: enrich.GeoIP,
    country: str = "",
) -> Enriched:
    """The event to store; `country` is a trusted CDN header's value, used without a GeoIP DB."""
    dev = enrich.device(hit.user_agent) if hit.user_agent else enrich.Device("", "", "")
    place = geo.locate(hit.ip) if hit.ip else enrich.Place()
    if not (place.country or place.region) and country:
        place = enrich.Place(enrich.country_code(country))
    previous = None
    if hit.opaque_visitor:
        visitor = supplied_visitor_id(hit.site.id, hit.opaque_visitor)
    else:
        day = hit.ts.date()
        visitor = salts.visitor_id(hit.site.id, hit.ip, hit.user_agent, day)
        # Only a hit in the first 30 minutes of a day can continue a session
        # begun the day before, under the previous day's salt.
        if hit.ts - datetime.combine(day, time.min) <= SESSION_GAP:
            yesterday = day - timedelta(days=1)
            previous = salts.visitor_id(hit.site.id, hit.ip, hit.user_agent, yesterday)
    pathname, host, utm = _page(hit.url)
    event = Event(
        site_id=hit.site.id,
        ts=hit.ts,
        name=hit.name.strip(),
        visitor_id=visitor,
        pathname=pathname,
        referrer_source=enrich.source(hit.url, hit.referrer, hit.site.domain),
        country=place.country,
        region=place.region,
        device_type=dev.device_type,
        browser=dev.browser,
        os=dev.os,
        props=props,
        hostname=host,
        referrer=enrich.referrer_url(hit.referrer),
        city=place.city,
        **utm,
    )
    return Enriched(event, previous)


def _page(url: str) -> tuple[str, str, dict[str, str]]:
    """What a page URL gives the event: pathname, hostname and UTM parameters."""
    return enrich.pathname(url), enrich.hostname(url), enrich.utm(url)


class Rows:
    """An import call's rows as columns, checked and enriched a column at a time.

    Each step runs once per distinct value among the rows still standing (a
    call repeats a few URLs, agents, IPs and visitors); a value it refuses
    rejects those rows with its message, so each rejected row keeps the first
    error that checking it alone would give, and later steps never see it.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.standing: list[int] | None = None  # None: every row
        self.rejected: dict[int, str] = {}
        self._distinct: dict[int, tuple[list[Any], set[Any]]] = {}  # by id of a column

    def check(self, step: Callable[[Any], object], values: list[Any]) -> None:
        """Runs step(value) on each distinct value; rows of a refused value are rejected."""
        refused = {}
        for value in self._values(values):
            try:
                step(value)
            except BadRequest as err:
                refused[value] = err.message
        if refused:
            self._reject([refused.get(v) for v in self.kept(values)])

    def step(self, step: Callable[[Any], T], values: list[Any]) -> list[T]:
        """step(value) for each row (one value per row of the call); rejected rows get None."""
        rows = self.standing
        memo: dict[Any, Any] = {}
        refusals = {}
        for value in self._values(values):
            try:
                memo[value] = step(value)
            except BadRequest as err:
                refusals[value] = err.message
        if refusals:
            self._reject([refusals.get(v) for v in self.kept(values)])
            for value in refusals:
                memo[value] = None
        if rows is None and len(memo) == 1:  # one value for every row (an agent, a day)
            return [next(iter(memo.values()))] * self.n
        results = list(
            map(memo.__getitem__, values if rows is None else self._picked(values, rows))
        )
        return self._spread(rows, results)

    def each(self, step: Callable[[Any], T], values: list[Any]) -> list[T]:
        """step(value) per row, for values that are not hashable (props)."""
        rows = self.standing
        results: list[Any] = []
        messages: list[str | None] = []
        for value in self.kept(values):
            try:
                results.append(step(value))
                messages.append(None)
            except BadRequest as err:
                results.append(None)
                messages.append(err.message)
        if any(messages):
            self._reject(messages)
        return self._spread(rows, results)

    def _values(self, values: list[Any]) -> set[Any]:
        """The distinct values of the standing rows (kept while no row is rejected)."""
        known = self._distinct.get(id(values))
        if known is None or known[0] is not values:
            known = self._distinct[id(values)] = (values, set(self.kept(values)))
        return known[1]

    def _reject(self, messages: list[str | None]) -> None:
        """Rejects the standing rows that have a message (one per standing row)."""
        standing = range(self.n) if self.standing is None else self.standing
        kept = []
        for i, message in zip(standing, messages, strict=True):
            if message is None:
                kept.append(i)
            else:
                self.rejected[i] = message
        self.standing = kept
        self._distinct.clear()

    def _spread(self, rows: list[int] | None, results: list[Any]) -> list[Any]:
        """The results of `rows` placed at their rows' indexes."""
        if rows is None:
            return results
        out: list[Any] = [None] * self.n
        for i, result in zip(rows, results, strict=True):
            out[i] = result
        return out

    @staticmethod
    def _picked(values: list[T], rows: list[int]) -> list[T]:
        return [values[i] for i in rows]

    def kept(self, values: list[T]) -> list[T]:
        """The values of the rows still standing."""
        return values if self.standing is None else self._picked(values, self.standing)


def import_rows(
    site: Site,
    raw: dict[str, list[Any]],
    salts: Salts,
    geo: enrich.GeoIP,
    parse_timestamp: Callable[[str], datetime],
) -> tuple[Columns, dict[int, str]]:
    """An import call's accepted events as columns, and each rejected row's first error.

    `raw`: the rows as received (timestamp text, name, url, referrer,
    user_agent, ip, props, visitor_id), one list per field. Runs what
    check, check_ip, the bot test and enrich_hit run per hit, in that order.
    """
    rows = Rows(len(raw["name"]))
    urls, referrers, agents, ips = raw["url"], raw["referrer"], raw["user_agent"], raw["ip"]
    opaque = raw["visitor_id"]
    ts = rows.step(parse_timestamp, raw["timestamp"])
    rows.check(_name, raw["name"])
    rows.check(_user_agent, agents)
    rows.check(_url_given, urls)
    rows.check(_referrer_bytes, referrers)
    rows.check(lambda url: _on_site(url, site.domain), urls)
    rows.check(_referrer_url, referrers)
    rows.check(_visitor, opaque)
    props = rows.each(lambda given: _props(given) if given else {}, raw["props"])
    rows.check(_timestamp, ts)
    rows.check(_identified, list(zip(ips, opaque, strict=True)))
    rows.check(_ip, ips)
    rows.check(_not_bot, agents)
    devices = rows.step(_device, agents)
    places = rows.step(lambda ip: _place(geo, ip), ips)
    visitors = rows.step(
        lambda key: _visitor_ids(salts, site.id, *key),
        list(zip(opaque, ips, agents, rows.step(_day, ts), strict=True)),
    )
    pages = rows.step(_page_fields, urls)
    sources = rows.step(
        lambda key: _source(key[0], key[1], site.domain),
        list(zip(urls, referrers, strict=True)),
    )
    refs = rows.step(enrich.referrer_url, referrers)
    names = rows.step(str.strip, raw["name"])
    kept = rows.kept
    n = len(kept(names))
    device_type, browser, os = _unzipped(kept(devices), 3)
    country, region, city = _unzipped(kept(places), 3)
    visitor_id, previous = _unzipped(kept(visitors), 2)
    pathname, hostname, *utm = _unzipped(kept(pages), 2 + len(enrich.UTM_PARAMS))
    cols: Columns = {
        "site_id": [site.id] * n,
        "ts": kept(ts),
        "name": kept(names),
        "visitor_id": visitor_id,
        "pathname": pathname,
        "referrer_source": kept(sources),
        "country": country,
        "region": region,
        "device_type": device_type,
        "browser": browser,
        "os": os,
        "props": kept(props),
        "hostname": hostname,
        "referrer": kept(refs),
        **dict(zip(enrich.UTM_PARAMS, utm, strict=True)),
        "city": city,
    }
    return {name: cols[name] for name in EVENT_FIELDS} | {
        "previous_visitor_id": previous
    }, rows.rejected


def _unzipped(values: list[tuple], width: int) -> list[list]:
    """Tuples as columns; the same tuple in every row (one agent, one IP) as repeated values."""
    if not values:
        return [[] for _ in range(width)]
    if values.count(values[0]) == len(values):  # identical objects compare at once
        return [[value] * len(values) for value in values[0]]
    return [list(column) for column in zip(*values, strict=True)]


def _identified(ip_visitor: tuple[str, str]) -> None:
    if not any(ip_visitor):
        raise BadRequest("ip or visitor_id: one is required")


def _ip(ip: str) -> None:
    if ip:
        check_ip(ip)


def _not_bot(user_agent: str) -> None:
    if user_agent and enrich.is_bot(user_agent):
        raise BadRequest("user_agent: a known bot; not stored")


def _device(user_agent: str) -> tuple[str, str, str]:
    dev = enrich.device(user_agent) if user_agent else enrich.Device("", "", "")
    return dev.device_type, dev.browser, dev.os


def _place(geo: enrich.GeoIP, ip: str) -> tuple[str, str, str]:
    place = geo.locate(ip) if ip else enrich.Place()
    return place.country, place.region, place.city


def _day(ts: datetime) -> tuple[date, bool]:
    """The hit's day, and whether it may continue a session begun the day before."""
    day = ts.date()
    return day, ts - datetime.combine(day, time.min) <= SESSION_GAP


def _visitor_ids(
    salts: Salts, site_id: str, opaque: str, ip: str, user_agent: str, day: tuple[date, bool]
) -> tuple[int, int | None]:
    """The visitor id, and the previous day's that may continue a session (as enrich_hit)."""
    if opaque:
        return supplied_visitor_id(site_id, opaque), None
    visitor = salts.visitor_id(site_id, ip, user_agent, day[0])
    if not day[1]:
        return visitor, None
    return visitor, salts.visitor_id(site_id, ip, user_agent, day[0] - timedelta(days=1))


# Imports repeat a site's pages across calls: what a URL gives is kept (each entry
# holds at most a 2,000-byte URL and its parts, so at most ~20 MB in all).
PAGE_CACHE = 4_096


@lru_cache(maxsize=PAGE_CACHE)
def _url_error(url: str, domain: str) -> str:
    """_url_on_site's message for the URL, "" if none."""
    try:
        _url_on_site((url, domain))
    except BadRequest as err:
        return err.message
    return ""


def _on_site(url: str, domain: str) -> None:
    if message := _url_error(url, domain):
        raise BadRequest(message)


@lru_cache(maxsize=PAGE_CACHE)
def _source(url: str, referrer: str, domain: str) -> str:
    return enrich.source(url, referrer, domain)


@lru_cache(maxsize=PAGE_CACHE)
def _page_fields(url: str) -> tuple[str, ...]:
    """pathname, hostname and the UTM parameters (UTM_PARAMS' order) of a page URL."""
    pathname, host, utm = _page(url)
    return (pathname, host, *(utm.get(name, "") for name in enrich.UTM_PARAMS))
