"""Property tests of the ingestion parsers on hostile input: a result or a 400 naming the field.

The parsers (pipeline.check, enrich.source/pathname/is_bot, the import
timestamp, the props Struct) see anything a client can send; any other
exception is a 500. The last property runs random payloads through the real
stack and checks that every accepted event is stored exactly once.
"""

import json
import math
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote_from_bytes

import httpx
from conftest import Stack, Tenant
from crawlerdetect import CrawlerDetect
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iso3166 import countries_by_alpha2
from sqlalchemy import func, select
from weldpulse.api.ingest import _parse_timestamp, _props
from weldpulse.domain import SESSION_GAP, columns_of
from weldpulse.errors import BadRequest
from weldpulse.ingest import enrich
from weldpulse.ingest.hits import Hit, Site, check, check_ip, enrich_hit, import_rows
from weldpulse.ingest.visitors import Salts
from weldpulse.storage.schema import events

FIELDS = ("name", "url", "referrer", "user_agent", "visitor_id", "props", "timestamp", "ip")
DOMAIN = "example.com"
REAL_UAS = [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    "YandexSearch/1.0",
    "curl/8.4.0",
    "python-requests/2.31.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
]

# Pieces of URLs an attacker would try: broken IPv6 brackets, hosts that NFKC
# normalisation changes, odd schemes, ports, userinfo, percent-escapes.
hosts = st.one_of(
    st.just(DOMAIN),
    st.just(f"www.{DOMAIN}"),
    st.sampled_from(
        ["[x", "[::1", "[::1]", "[::1]:x", "\uff03x.example", "a\u2100.com", "a@b:c", "%zz", ""]
    ),
    st.text(max_size=20),
)
urls = st.one_of(
    st.builds(
        lambda scheme, host, path: f"{scheme}{host}{path}",
        st.sampled_from(["http://", "https://", "HTTPS://", "ftp://", "//", ""]),
        hosts,
        st.text(max_size=40).map(lambda p: "/" + p if p and p[0] not in "/?#" else p),
    ),
    st.text(max_size=60),
)
user_agents = st.one_of(st.sampled_from(REAL_UAS), st.text(max_size=600))


def _with_offset(moment: datetime, minutes: int) -> str:
    sign = "+" if minutes >= 0 else "-"
    return f"{moment.isoformat()}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


timestamps = st.one_of(
    st.datetimes().map(datetime.isoformat),
    st.builds(_with_offset, st.datetimes(), st.integers(-23 * 60 - 59, 23 * 60 + 59)),
    st.sampled_from(
        ["0001-01-01T00:00:00+00:30", "0001-01-01T00:00+01:00", "9999-12-31T23:59:59-01:00"]
    ),
    st.text(max_size=40),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**60), 2**60),
    st.floats(),  # inf and NaN included: native gRPC can send them
    st.text(max_size=30),
)
props = st.dictionaries(st.text(max_size=20), scalars, max_size=33)


def named_field(err: BadRequest) -> str:
    field = err.message.split(":")[0].split(".")[0].split(" ")[0]
    assert field in FIELDS, err.message
    return field


def hit_of(url: str, referrer: str, ua: str, values: dict[str, Any], ts: datetime) -> Hit:
    return Hit(Site("s", DOMAIN), ts, "pageview", url, referrer, ua, "203.0.113.9", values)


@settings(max_examples=400, deadline=None)
@given(url=urls, referrer=st.one_of(urls, st.just("")), ua=user_agents, values=props)
def test_check_passes_or_names_a_field_and_enrichment_then_never_fails(
    url: str, referrer: str, ua: str, values: dict[str, Any]
) -> None:
    try:
        check(hit_of(url, referrer, ua, values, datetime(2024, 1, 1)))
    except BadRequest as err:
        named_field(err)
        return
    # Everything enrich_hit parses, for anything check() let through.
    assert isinstance(enrich.source(url, referrer, DOMAIN), str)
    assert isinstance(enrich.pathname(url), str)
    assert isinstance(enrich.is_bot(ua), bool)
    enrich.device(ua)


@given(page=urls, referrer=urls)
def test_source_and_pathname_return_or_name_the_field(page: str, referrer: str) -> None:
    for parse in (lambda: enrich.source(page, referrer, DOMAIN), lambda: enrich.pathname(page)):
        try:
            assert isinstance(parse(), str)
        except BadRequest as err:
            assert named_field(err) in ("url", "referrer")


@settings(max_examples=300)
@given(timestamps)
def test_import_timestamps_parse_or_name_the_field(value: str) -> None:
    try:
        parsed = _parse_timestamp(value)
    except BadRequest as err:
        assert named_field(err) == "timestamp" and len(err.message) < 500
        return
    assert parsed.tzinfo is None
    try:
        check(hit_of(f"https://{DOMAIN}/", "", REAL_UAS[0], {}, parsed))
    except BadRequest as err:
        assert named_field(err) == "timestamp"


@given(props)
def test_props_struct_passes_or_names_the_property(values: dict[str, Any]) -> None:
    struct = struct_pb2.Struct()
    for key, value in values.items():
        struct.fields[key].CopyFrom(_value(value))
    try:
        stored = check(
            hit_of(f"https://{DOMAIN}/", "", REAL_UAS[0], _props(struct), datetime(2024, 1, 1))
        )
    except BadRequest as err:
        assert named_field(err) == "props"
        return
    assert set(stored) == set(values)
    assert all(isinstance(v, str) for v in stored.values())
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in values.values())


def _value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = float(value)
    else:
        out.string_value = value
    return out


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.sampled_from(REAL_UAS),
        st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=120),
    )
)
def test_bot_detection_agrees_with_crawlerdetect(ua: str) -> None:
    # The same data on RE2 instead of re: the same verdict on ASCII user agents.
    assert enrich.is_crawler(ua) == CrawlerDetect().is_crawler(ua)


@given(st.text(max_size=5))
def test_country_codes_are_assigned_iso_codes_or_nothing(value: str) -> None:
    code = enrich.country_code(value)
    assert code == "" or (code == value.strip().upper() and code in countries_by_alpha2)


class FixedSalts(Salts):
    """A salt per day without a store: what the memo must not change is the arithmetic."""

    def __init__(self) -> None:
        pass

    def for_day(self, day: date) -> bytes:
        return day.isoformat().encode()


def _alone(hit: Hit, salts: Salts) -> object:
    """What an import made of one hit checked alone: its first error's message, or its event."""
    try:
        props = check(hit)
        if not hit.ip and not hit.opaque_visitor:
            raise BadRequest("ip or visitor_id: one is required")
        if hit.ip:
            check_ip(hit.ip)
        if hit.user_agent and enrich.is_bot(hit.user_agent):
            raise BadRequest("user_agent: a known bot; not stored")
        item = enrich_hit(hit, props, salts, enrich.GeoIP(None))
        return item.event, item.previous_visitor_id
    except BadRequest as err:
        return err.message


MIDNIGHT = datetime(2024, 3, 2)
moments = st.integers(-2 * 3600, 2 * 3600).map(lambda s: MIDNIGHT + timedelta(seconds=s))


@settings(max_examples=150, deadline=None)
@given(
    pools=st.tuples(
        st.lists(
            st.one_of(st.just(f"https://{DOMAIN}/a?utm_source=n"), urls), min_size=1, max_size=3
        ),
        st.lists(st.one_of(st.just("https://www.google.com/"), urls), min_size=1, max_size=3),
        st.lists(user_agents, min_size=1, max_size=2),
        st.lists(st.sampled_from(["", "203.0.113.9", "2001:db8::1", "nope"]), min_size=1),
        st.lists(st.sampled_from(["", "v1", "x" * 201]), min_size=1, max_size=2),
        st.lists(
            st.one_of(
                moments.map(datetime.isoformat),
                st.sampled_from([(MIDNIGHT + SESSION_GAP).isoformat(), "nope", "9999-12-31"]),
            ),
            min_size=1,
            max_size=3,
        ),
        st.lists(st.sampled_from(["pageview", " ", "signup "]), min_size=1, max_size=2),
        st.lists(st.sampled_from([{}, {"plan": 1.0}, {"bad": None}]), min_size=1, max_size=2),
    ),
    data=st.data(),
)
def test_an_import_checks_and_enriches_each_row_as_alone(
    pools: tuple[list, ...], data: st.DataObject
) -> None:
    # One call's rows repeat values from small pools: each column's values are
    # worked on once, and a refused value must reject exactly its rows.
    salts, site = FixedSalts(), Site("s", DOMAIN)
    rows = [
        tuple(data.draw(st.sampled_from(p)) for p in pools)
        for _ in range(data.draw(st.integers(1, 12)))
    ]
    expected: list[Any] = []
    for url, referrer, ua, ip, visitor, ts, name, props in rows:
        try:
            at = _parse_timestamp(ts)
        except BadRequest as err:
            expected.append(err.message)
            continue
        expected.append(_alone(Hit(site, at, name, url, referrer, ua, ip, props, visitor), salts))
    names = ("url", "referrer", "user_agent", "ip", "visitor_id", "timestamp", "name", "props")
    columns = zip(*rows, strict=True)
    raw = {name: list(column) for name, column in zip(names, columns, strict=True)}
    cols, rejected = import_rows(site, raw, salts, enrich.GeoIP(None), _parse_timestamp)
    accepted = [e for e in expected if not isinstance(e, str)]
    assert rejected == {i: e for i, e in enumerate(expected) if isinstance(e, str)}
    assert cols == {
        **columns_of([event for event, _ in accepted]),
        "previous_visitor_id": [previous for _, previous in accepted],
    }


# End to end: random payloads with valid keys through Envoy.

http_uas = st.one_of(  # what an HTTP header can carry
    st.sampled_from(REAL_UAS),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=600).map(str.strip),
)
json_props = st.one_of(
    st.dictionaries(
        st.text(max_size=20), st.one_of(st.text(max_size=30), st.integers()), max_size=3
    ),
    st.dictionaries(
        st.text(max_size=20),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(-(2**53), 2**53),
            st.floats(allow_nan=False, allow_infinity=False),  # JSON has no inf or NaN
            st.text(max_size=30),
            st.lists(st.integers(), max_size=2),
        ),
        max_size=32,
    ),
)
# Percent-escapes decode to any byte, NUL included.
campaigns = st.builds(
    lambda param, raw: f"?{param}={quote_from_bytes(raw)}",
    st.sampled_from(["utm_source", "ref", "source"]),
    st.binary(max_size=12),
)
referrers = st.one_of(st.sampled_from(["", "https://www.google.com/", "https://t.co/x"]), urls)


def _stored(stack: Stack, tenant: Tenant) -> int:
    with stack.events.connect() as conn:
        query = select(func.count()).select_from(events).where(events.c.site_id == tenant.site_id)
        return conn.execute(query).scalar_one()


def _contract_400(resp: httpx.Response) -> None:
    assert resp.status_code == 400, resp.text
    assert sorted(resp.json()) == ["code", "error"] and resp.json()["code"] == "BAD_REQUEST"


EXPECTED: dict[str, int] = {}  # events stored per tenant, over a test's examples


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.one_of(st.text(max_size=30), campaigns),
    url=st.one_of(st.none(), urls),
    referrer=referrers,
    ua=http_uas,
    values=json_props,
    rows=st.lists(
        st.fixed_dictionaries(
            {
                "timestamp": timestamps,
                "url": st.one_of(st.none(), urls),
                "referrer": referrers,
                "user_agent": user_agents,
                "props": json_props,
            },
            optional={
                "ip": st.one_of(st.just("198.51.100.4"), st.text(max_size=20)),
                "visitor_id": st.text(max_size=20),
                "name": st.text(max_size=20),
            },
        ),
        min_size=1,
        max_size=5,
    ),
)
def test_random_payloads_are_stored_exactly_once_or_refused(
    stack: Stack,
    tenant: Tenant,
    path: str,
    url: str | None,
    referrer: str,
    ua: str,
    values: dict,
    rows: list[dict],
) -> None:
    stored = EXPECTED.setdefault(tenant.site_id, 0)
    body = {
        "site_key": tenant.site_key,
        "name": "pageview",
        "url": url if url is not None else f"https://{tenant.domain}/{path}",
        "referrer": referrer,
        "props": values,
    }
    resp = stack.http.post(
        "/v1/collect",
        content=json.dumps(body),
        headers={"User-Agent": ua, "Content-Type": "application/json"},
    )
    if resp.status_code == 202:
        stored += "x-weldpulse-dropped" not in resp.headers
    else:
        _contract_400(resp)
    recent = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    batch = [
        {
            "name": "pageview",
            "ip": "203.0.113.9",
            **r,
            "url": r["url"] or f"https://{tenant.domain}/{path}",
        }
        for r in rows
    ]
    batch[0]["timestamp"] = recent  # one row at least that may be accepted
    resp = stack.http.post(
        "/v1/import",
        json={"site_id": tenant.site_id, "events": batch},
        headers={"Authorization": f"Bearer {tenant.write_key}"},
    )
    if resp.status_code == 200:
        answer = resp.json()
        assert answer["accepted"] + len(answer["rejected"]) == len(batch)
        stored += answer["accepted"]
    else:
        _contract_400(resp)
    EXPECTED[tenant.site_id] = stored
    assert _stored(stack, tenant) == stored
