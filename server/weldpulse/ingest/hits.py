"""From a raw hit to a storable event: limits, parsing, enrichment and the visitor id."""

import ipaddress
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeAlias, TypeVar

from weldpulse.domain import SESSION_GAP, Event
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


def direct(step: Callable[[Any], T], value: Any) -> T:
    """Runs one step of check or enrich_hit on its value: the single-hit way."""
    return step(value)


class Once:
    """One import call's memo: each step runs once per distinct value (a call
    repeats a few URLs, agents, IPs and visitors), its BadRequest remembered too."""

    def __init__(self) -> None:
        self._seen: dict[tuple[Callable, Any], Any] = {}

    def __call__(self, step: Callable[[Any], T], value: Any) -> T:
        key = (step, value)
        try:
            result = self._seen[key]
        except KeyError:
            try:
                result = step(value)
            except BadRequest as err:
                result = _Refused(err.message)
            self._seen[key] = result
        if type(result) is _Refused:
            raise BadRequest(result.message)
        return result


@dataclass(frozen=True)
class _Refused:
    message: str


Step: TypeAlias = Callable[[Callable[[Any], T], Any], T]


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


def check(hit: Hit, once: Step = direct) -> dict[str, str]:
    """Raises BadRequest naming the first field over its limit; returns the props as text.

    `once`: how each step runs on its value; an import passes its call's Once.
    """
    once(_name, hit.name)
    once(_user_agent, hit.user_agent)
    once(_url_given, hit.url)
    once(_referrer_bytes, hit.referrer)
    once(_url_on_site, (hit.url, hit.site.domain))
    once(_referrer_url, hit.referrer)
    once(_visitor, hit.opaque_visitor)
    props = _props(hit.props) if hit.props else {}
    once(_timestamp, hit.ts)
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
    once: Step = direct,
) -> Enriched:
    """The event to store; `country` is a trusted CDN header's value, used without a GeoIP DB."""
    dev = enrich.device(hit.user_agent) if hit.user_agent else enrich.Device("", "", "")
    place = once(geo.locate, hit.ip) if hit.ip else enrich.Place()
    if not (place.country or place.region) and country:
        place = enrich.Place(enrich.country_code(country))
    previous = None
    if hit.opaque_visitor:
        visitor = once(_supplied, (hit.site.id, hit.opaque_visitor))
    else:
        day = hit.ts.date()
        visitor = once(_salted, (salts, hit.site.id, hit.ip, hit.user_agent, day))
        # Only a hit in the first 30 minutes of a day can continue a session
        # begun the day before, under the previous day's salt.
        if hit.ts - datetime.combine(day, time.min) <= SESSION_GAP:
            yesterday = day - timedelta(days=1)
            previous = once(_salted, (salts, hit.site.id, hit.ip, hit.user_agent, yesterday))
    pathname, host, utm = once(_page, hit.url)
    event = Event(
        site_id=hit.site.id,
        ts=hit.ts,
        name=hit.name.strip(),
        visitor_id=visitor,
        pathname=pathname,
        referrer_source=once(_source, (hit.url, hit.referrer, hit.site.domain)),
        country=place.country,
        region=place.region,
        device_type=dev.device_type,
        browser=dev.browser,
        os=dev.os,
        props=props,
        hostname=host,
        referrer=once(enrich.referrer_url, hit.referrer),
        city=place.city,
        **utm,
    )
    return Enriched(event, previous)


def _supplied(site_visitor: tuple[str, str]) -> int:
    return supplied_visitor_id(*site_visitor)


def _salted(key: tuple[Salts, str, str, str, date]) -> int:
    salts, site_id, ip, user_agent, day = key
    return salts.visitor_id(site_id, ip, user_agent, day)


def _page(url: str) -> tuple[str, str, dict[str, str]]:
    """What a page URL gives the event: pathname, hostname and UTM parameters."""
    return enrich.pathname(url), enrich.hostname(url), enrich.utm(url)


def _source(key: tuple[str, str, str]) -> str:
    return enrich.source(*key)
