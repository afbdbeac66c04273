"""Enrichment of hits: user agent → device and bot flag, URLs → source and UTM, IP → place.

Each lookup uses a maintained library made for the job: ua-parser (with its
bundled uap-core rules and Rust accelerator) and CrawlerDetect for user
agents, Snowplow's referer-parser database for sources, and a MaxMind-format
database (WELDPULSE_GEOIP_DB) for places. Results of the user-agent parsers
are cached: real traffic repeats a small set of user agents.

Every parser here sees hostile input (the collect endpoint is public), so each
one must take linear time: ua-parser runs uap-core's rules on Rust's regex
crate (the `regex` extra), and CrawlerDetect's patterns run on RE2 here
rather than on `re`, whose backtracking over them is quadratic in a long run
of letters (8,000 of them took 3.8 s).
"""

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, parse_qsl, urlsplit

import maxminddb
import re2  # type: ignore[import-untyped]
from crawlerdetect.providers.crawlers import data as crawler_patterns
from crawlerdetect.providers.exclusions import data as exclusion_patterns
from iso3166 import countries_by_alpha2
from referer_parser import REFERERS, Referer
from ua_parser import parse as parse_ua
from weldpulse.errors import BadRequest

DIRECT = "Direct / None"

# uap-core family names → the names the API documents.
BROWSERS = {
    "Mobile Safari": "Safari",
    "Mobile Safari UI/WKWebView": "Safari",
    "Chrome Mobile": "Chrome",
    "Chrome Mobile iOS": "Chrome",
    "Chrome Mobile WebView": "Chrome",
    "Firefox Mobile": "Firefox",
    "Firefox iOS": "Firefox",
    "Edge Mobile": "Edge",
    "Opera Mobile": "Opera",
}
OPERATING_SYSTEMS = {"Mac OS X": "macOS", "Ubuntu": "Linux", "Fedora": "Linux", "Debian": "Linux"}
# Hosts newer than the referer-parser database (its data predates x.com).
EXTRA_SOURCES = {"x.com": "Twitter"}
# Campaign parameters that name a source, in order of precedence.
SOURCE_PARAMS = ("utm_source", "ref", "source")
# The campaign parameters kept per event, in the Event's field names.
UTM_PARAMS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
# As referrer_source, which a utm_source becomes: a label, not a document.
MAX_PARAM_CHARS = 200


@dataclass(frozen=True)
class Device:
    device_type: str  # desktop | mobile | tablet | "" (unknown)
    browser: str
    os: str


class LinearPatterns:
    """A list of regexes matched as CrawlerDetect does (case-insensitive), on RE2.

    RE2 refuses lookarounds; the patterns that use one are kept on `re`, one
    by one. In crawlerdetect 0.4.2 that is only `Yandex(?!Search)`, a literal
    and a short lookahead: linear too (test_input_bounds times a 60 KB agent).
    """

    def __init__(self, patterns: list[str]) -> None:
        options = re2.Options()
        options.case_sensitive = False
        options.log_errors = False
        options.max_mem = 64 << 20  # room for the whole alternation's DFA
        ok, rest = [], []
        for pattern in patterns:
            try:
                re2.compile(pattern, options)
            except re2.error:
                rest.append(pattern)
            else:
                ok.append(pattern)
        self.linear = re2.compile(f"({'|'.join(ok)})", options)
        self.backtracking = [re.compile(p, re.IGNORECASE) for p in rest]

    def search(self, text: str) -> bool:
        return bool(self.linear.search(text)) or any(p.search(text) for p in self.backtracking)

    def remove(self, text: str) -> str:
        text = self.linear.sub("", text)
        for pattern in self.backtracking:
            text = pattern.sub("", text)
        return text


_crawlers = LinearPatterns(crawler_patterns)
_exclusions = LinearPatterns(exclusion_patterns)
# Anyone can send new user agents and referrers: each cache holds at most
# about this many (≤ 512 and ≤ 2,000 bytes each), ~9 MiB per 10,000 agents.
UA_CACHE = 10_000
REFERRER_CACHE = 4_096


def is_crawler(user_agent: str) -> bool:
    """CrawlerDetect's verdict on its own data: what is left after browser tokens names a bot."""
    agent = _exclusions.remove(user_agent.strip())
    return bool(agent) and _crawlers.search(agent)


@lru_cache(maxsize=UA_CACHE)
def is_bot(user_agent: str) -> bool:
    """Known bots, crawlers, headless browsers and HTTP libraries, or no user agent at all."""
    if not user_agent.strip():
        return True
    result = parse_ua(user_agent)
    if result.device is not None and result.device.family == "Spider":
        return True
    if result.user_agent is not None and result.user_agent.family == "HeadlessChrome":
        return True
    return is_crawler(user_agent)


@lru_cache(maxsize=UA_CACHE)
def device(user_agent: str) -> Device:
    result = parse_ua(user_agent)
    family = result.user_agent.family if result.user_agent else ""
    os_family = result.os.family if result.os else ""
    return Device(
        device_type=_device_type(user_agent, os_family, result.device),
        browser=BROWSERS.get(family, family if family != "Other" else ""),
        os=OPERATING_SYSTEMS.get(os_family, os_family if os_family != "Other" else ""),
    )


def _device_type(user_agent: str, os_family: str, dev: object) -> str:
    family = getattr(dev, "family", "") or ""
    brand = getattr(dev, "brand", "") or ""
    if family == "iPad" or "Tablet" in brand or "Kindle" in family:
        return "tablet"
    if os_family == "Android":
        # Google's rule: Android phones send "Mobile", Android tablets do not.
        return "mobile" if "Mobile" in user_agent else "tablet"
    if os_family in ("iOS", "Windows Phone", "BlackBerry OS") or "Mobile" in user_agent:
        return "mobile"
    if os_family:
        return "desktop"
    return ""


def split_url(field: str, url: str) -> SplitResult:
    """urlsplit, whose ValueError on a bad host (`http://[x`, NFKC) is the caller's bad input."""
    try:
        return urlsplit(url)
    except ValueError as err:
        raise BadRequest(f"{field}: not a valid URL ({err})") from None


def _host(url: str, field: str = "url") -> str:
    host = (split_url(field, url).hostname or "").lower()
    return host.removeprefix("www.")


def on_domain(url: str, domain: str, field: str = "url") -> bool:
    """True when the URL's host is the site's domain or one of its subdomains."""
    host, domain = _host(url, field), domain.lower().removeprefix("www.")
    return bool(host) and (host == domain or host.endswith(f".{domain}"))


def source(page_url: str, referrer: str, site_domain: str) -> str:
    """The referrer source of a hit, as docs/metrics.md defines it."""
    raw_query = split_url("url", page_url).query
    if raw_query and any(f"{param}=" in raw_query for param in SOURCE_PARAMS):
        query = parse_qs(raw_query)
        for param in SOURCE_PARAMS:
            value = _printable(query.get(param, [""])[0])
            if value:
                return value[:200]
    if not referrer.strip():
        return DIRECT
    host = _host(referrer, "referrer")
    if not host or on_domain(referrer, site_domain, "referrer"):
        return DIRECT
    return _known_source(referrer) or host


def _printable(text: str) -> str:
    """Without control characters: percent-decoding gives back the NUL (%00) that
    PostgreSQL refuses in text, which would fail every event committed with it."""
    return "".join(c for c in text if c.isprintable()).strip()


@lru_cache(maxsize=REFERRER_CACHE)
def _known_source(referrer: str) -> str:
    host = _host(referrer, "referrer")
    if host in EXTRA_SOURCES:
        return EXTRA_SOURCES[host]
    try:
        parsed = Referer(referrer)
    except Exception:  # the parser raises on odd URLs; those are just unknown
        return ""
    return parsed.referer if parsed.known and parsed.referer else ""


def hostname(url: str) -> str:
    """The page URL's host, lower-case, without a leading `www.` and without port."""
    return _host(url)


def referrer_url(referrer: str) -> str:
    """The referrer as host + path: no scheme, port, query or fragment, no `www.`.

    A path of just "/" is dropped (`https://ref.com/` → `ref.com`); "" without
    a host. Kept even on the site's own domain (unlike referrer_source).
    """
    if not referrer.strip():
        return ""
    parts = split_url("referrer", referrer)
    host = (parts.hostname or "").lower().removeprefix("www.")
    if not host:
        return ""
    return without_controls(host + ("" if parts.path == "/" else parts.path))


def utm(url: str) -> dict[str, str]:
    """The UTM parameters of a page URL that has them, decoded as URLSearchParams does.

    The WHATWG urlencoded parser: split on `&` only, name and value at the
    first `=`, `+` is a space, percent-decoded as UTF-8 with U+FFFD for bad
    bytes, names decoded too; the first occurrence wins, as `get()` returns.
    Control characters are removed (PostgreSQL refuses the NUL of `%00`).
    """
    query = split_url("url", url).query
    found: dict[str, str] = {}
    if not query:
        return found
    for name, value in parse_qsl(query, keep_blank_values=True, separator="&"):
        if name in UTM_PARAMS and name not in found:
            found[name] = without_controls(value)[:MAX_PARAM_CHARS]
    return found


def without_controls(text: str) -> str:
    """`text` without Unicode control characters (C0, DEL, C1)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc")


def _medium_by_source() -> dict[str, str]:
    """Lower-case source names and domains of the referrer database → "search" | "social".

    A name listed under both (Mail.Ru) counts as search, the rule checked first.
    """
    mediums: dict[str, str] = {}
    for domain, referer in REFERERS.items():
        medium = referer["medium"]
        if medium in ("search", "social"):
            for key in (referer["name"].lower(), domain.lower()):
                if mediums.get(key) != "search":
                    mediums[key] = medium
    return mediums


MEDIUMS = _medium_by_source()
PAID_MEDIUM = re2.compile(r"^(.*cp.*|ppc|retargeting|paid.*)$")
EMAIL_WORDS = ("email", "e-mail", "e_mail", "newsletter")


def channel(source: str, utm_medium: str) -> str:
    """The session's channel from its referrer_source and utm_medium (docs/metrics.md).

    First match of: Direct, Paid Search, Organic Search, Paid Social,
    Organic Social, Email, Affiliates, Display, Referral. Search engines and
    social networks are the sources (names as referrer_source has them, or
    domains as a utm_source may give them; any case) that Snowplow's
    referer-parser database lists under its `search` and `social` mediums.
    utm_medium is matched case-sensitively but for the email words.
    """
    if source == DIRECT:
        return "Direct"
    medium = MEDIUMS.get(source.lower().removeprefix("www."), "")
    paid = bool(PAID_MEDIUM.search(utm_medium))
    if medium == "search":
        return "Paid Search" if paid else "Organic Search"
    if medium == "social":
        return "Paid Social" if paid else "Organic Social"
    if any(word in text.lower() for text in (source, utm_medium) for word in EMAIL_WORDS):
        return "Email"
    if utm_medium == "affiliate":
        return "Affiliates"
    if utm_medium in ("display", "banner", "cpm"):
        return "Display"
    return "Referral"


def pathname(url: str) -> str:
    """The path of a URL without query or fragment; "/" when empty."""
    return split_url("url", url).path or "/"


def country_code(value: str) -> str:
    """An assigned ISO 3166-1 alpha-2 code (as a CDN's country header sends it), else "".

    CDNs also send XX (unknown) and T1 (Tor), and a client can send anything
    when no CDN overwrites the header; none of that is a country.
    """
    code = value.strip().upper()
    return code if len(code) == 2 and code in countries_by_alpha2 else ""


@dataclass(frozen=True)
class Place:
    country: str = ""  # ISO 3166-1 alpha-2
    region: str = ""  # English subdivision name
    city: str = ""  # English city name


def _place(record: Any) -> Place:
    """The place of a GeoIP2/GeoLite2 City record; "" for what it lacks."""
    if not isinstance(record, dict):
        return Place()
    country = (record.get("country") or {}).get("iso_code") or ""
    subdivisions = record.get("subdivisions") or [{}]
    region = (subdivisions[0].get("names") or {}).get("en") or ""
    city = ((record.get("city") or {}).get("names") or {}).get("en") or ""
    return Place(str(country), str(region), str(city))


class GeoIP:
    """Country code, region and city name of an IP from a MaxMind-format database, if one is set."""

    def __init__(self, path: str | None) -> None:
        self.reader = maxminddb.open_database(path) if path and Path(path).exists() else None

    def locate(self, ip: str) -> Place:
        if self.reader is None:
            return Place()
        try:
            record = self.reader.get(ipaddress.ip_address(ip.strip()))
        except ValueError:
            return Place()
        return _place(record)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
