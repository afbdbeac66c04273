"""What ingestion keeps for the query dimensions: hostname, referrer, UTM, city, seq, channel."""

import json
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest
from conftest import Stack, Tenant
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from weldpulse.ingest import enrich
from weldpulse.storage.schema import events, sessions

CHROME = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36"
BASE = datetime(2024, 3, 4, 9, 0, 0)
UTM = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
EVENT_COLS = ("pathname", "hostname", "referrer", *UTM, "referrer_source", "country", "city")
SESSION_COLS = ("entry_page", "exit_page", "referrer", *UTM, "referrer_source", "city", "channel")


def stored(stack: Stack, site_id: str) -> tuple[list[tuple], dict[int, Any]]:
    """The site's events in seq order (with their session id) and its sessions by id."""
    with stack.events.connect() as conn:
        rows = conn.execute(
            select(events.c.session_id, events.c.seq, *(events.c[c] for c in EVENT_COLS))
            .where(events.c.site_id == site_id)
            .order_by(events.c.seq)
        ).all()
        found = conn.execute(select(sessions).where(sessions.c.site_id == site_id)).all()
    seqs = [r.seq for r in rows]
    assert len(set(seqs)) == len(seqs)
    return [tuple(r)[:1] + tuple(r)[2:] for r in rows], {s.session_id: s._mapping for s in found}


def imported(tenant: Tenant, ts: datetime, url: str, **extra: str) -> dict:
    return {
        "timestamp": ts.isoformat() + "Z",
        "name": "pageview",
        "url": f"https://{url.format(d=tenant.domain)}",
        "user_agent": CHROME,
        **extra,
    }


def test_import_keeps_every_dimension_exactly(stack: Stack, tenant: Tenant) -> None:
    d, t = tenant.domain, BASE
    later = t + timedelta(hours=1)
    batch = [
        # A: percent-encoding, `+`, a repeated parameter (the first wins), a
        # referrer with `www.`, upper case, query and fragment; San Francisco.
        imported(
            tenant,
            t,
            "www.{d}/in?utm_source=news%20letter&utm_medium=email"
            "&utm_campaign=spring+sale&utm_campaign=second&utm_content=%E2%82%AC5"
            "&utm_term=a%2Bb%00#utm_term=frag",
            referrer="https://WWW.Google.com/search?q=x#top",
            ip="203.0.113.9",
            visitor_id="a",
        ),
        # A again: a referrer on the site's own domain is kept; session unchanged.
        imported(
            tenant,
            t + timedelta(minutes=1),
            "{d}/next?utm_source=other",
            referrer=f"https://{d}/in?utm_source=x",
            ip="203.0.113.9",
            visitor_id="a",
        ),
        # B: a subdomain in upper case; a referrer whose path is just "/"; Berlin.
        imported(
            tenant, t, "Blog.{d}/p", referrer="https://ref.com/", ip="2001:db8::1", visitor_id="b"
        ),
        # C: paid search from utm parameters alone; Utrecht.
        imported(
            tenant,
            t,
            "{d}/?utm_medium=cpc&utm_source=google&utm_term=",
            ip="10.1.2.3",
            visitor_id="c",
        ),
        # D: no IP (no city); a social referrer, paid; a path with a trailing slash.
        imported(
            tenant,
            t,
            "{d}/x?utm_medium=paid_social",
            referrer="https://t.co/abc/?x=1",
            visitor_id="d",
        ),
        # E: three events with one timestamp, out of path order: the batch order stays.
        imported(tenant, later, "{d}/3", visitor_id="e"),
        imported(tenant, later, "{d}/1", visitor_id="e"),
        imported(tenant, later, "{d}/2", visitor_id="e"),
    ]
    resp = stack.http.post(
        "/v1/import",
        json={"site_id": tenant.site_id, "events": batch},
        headers={"Authorization": f"Bearer {tenant.write_key}"},
    )
    assert resp.status_code == 200 and resp.json()["accepted"] == len(batch), resp.text
    rows, by_id = stored(stack, tenant.site_id)
    none5 = ("",) * 5
    # Events in seq order: time, then batch order (A, B, C, D share a timestamp).
    assert [r[1:] for r in rows] == [
        ("/in", d, "google.com/search", "news letter", "email", "spring sale", "€5", "a+b",
         "news letter", "US", "San Francisco"),
        ("/p", f"blog.{d}", "ref.com", *none5, "ref.com", "DE", "Berlin"),
        ("/", d, "", "google", "cpc", "", "", "", "google", "NL", "Utrecht"),
        ("/x", d, "t.co/abc/", "", "paid_social", "", "", "", "Twitter", "", ""),
        ("/next", d, f"{d}/in", "other", "", "", "", "", "other", "US", "San Francisco"),
        ("/3", d, "", *none5, "Direct / None", "", ""),
        ("/1", d, "", *none5, "Direct / None", "", ""),
        ("/2", d, "", *none5, "Direct / None", "", ""),
    ]  # fmt: skip
    session_of = {r[1]: r[0] for r in rows}  # pathname → session id
    got = {p: tuple(by_id[session_of[p]][c] for c in SESSION_COLS) for p in ("/in", "/p", "/",
                                                                            "/x", "/3")}  # fmt: skip
    assert session_of["/next"] == session_of["/in"] and session_of["/1"] == session_of["/3"]
    assert got == {
        "/in": ("/in", "/next", "google.com/search", "news letter", "email", "spring sale", "€5",
                "a+b", "news letter", "San Francisco", "Email"),
        "/p": ("/p", "/p", "ref.com", *none5, "ref.com", "Berlin", "Referral"),
        "/": ("/", "/", "", "google", "cpc", "", "", "", "google", "Utrecht", "Paid Search"),
        "/x": ("/x", "/x", "t.co/abc/", "", "paid_social", "", "", "", "Twitter", "",
               "Paid Social"),
        "/3": ("/3", "/2", "", *none5, "Direct / None", "", "Direct"),
    }  # fmt: skip


def test_collect_keeps_every_dimension(stack: Stack, tenant: Tenant) -> None:
    d = tenant.domain
    hits = [
        (f"https://WWW.{d}/a?utm_source=Mail&utm_medium=newsletter&utm_source=dup&utm_campaign"
         "=%ZZ+x", "https://www.news.example/story/?id=5#c"),
        (f"https://{d}/b", f"https://{d}/a?utm_source=Mail"),
        (f"https://shop.{d}/c", ""),
    ]  # fmt: skip
    for url, referrer in hits:
        resp = stack.http.post(
            "/v1/collect",
            content=json.dumps(
                {"site_key": tenant.site_key, "name": "pageview", "url": url, "referrer": referrer}
            ),
            headers={"User-Agent": CHROME, "Content-Type": "application/json"},
        )
        assert resp.status_code == 202, resp.text
    rows, by_id = stored(stack, tenant.site_id)
    # Loopback is in Utrecht in the test GeoIP database.
    assert [r[1:] for r in rows] == [
        ("/a", d, "news.example/story/", "Mail", "newsletter", "%ZZ x", "", "", "Mail", "NL",
         "Utrecht"),
        ("/b", d, f"{d}/a", *("",) * 5, "Direct / None", "NL", "Utrecht"),
        ("/c", f"shop.{d}", "", *("",) * 5, "Direct / None", "NL", "Utrecht"),
    ]  # fmt: skip
    assert len(by_id) == 1
    session = next(iter(by_id.values()))
    assert tuple(session[c] for c in SESSION_COLS) == (
        "/a", "/c", "news.example/story/", "Mail", "newsletter", "%ZZ x", "", "", "Mail",
        "Utrecht", "Email",
    )  # fmt: skip


@pytest.mark.parametrize(
    ("source", "medium", "expected"),
    [
        ("Direct / None", "cpc", "Direct"),
        ("Google", "cpc", "Paid Search"),
        ("Google", "ppc", "Paid Search"),
        ("google", "paid", "Paid Search"),  # a utm_source, any case
        ("bing.com", "retargeting", "Paid Search"),  # a domain as utm_source
        ("Bing", "", "Organic Search"),
        ("DuckDuckGo", "organic", "Organic Search"),
        ("Google", "PPC", "Organic Search"),  # the paid pattern is case-sensitive
        ("Google", "ppc2", "Organic Search"),  # ppc only as the whole medium
        ("Google", "email", "Organic Search"),  # search is checked before email
        ("Mail.Ru", "", "Organic Search"),  # listed as search and social: search first
        ("Facebook", "paid_social", "Paid Social"),
        ("Twitter", "cpm", "Paid Social"),
        ("Hacker News", "", "Organic Social"),
        ("LinkedIn", "social", "Organic Social"),
        ("Newsletter", "", "Email"),
        ("acme", "E-Mail", "Email"),
        ("acme", "weekly_e_mail", "Email"),
        ("my-EMAIL-list", "", "Email"),
        ("acme", "affiliate", "Affiliates"),
        ("acme", "Affiliate", "Referral"),
        ("acme", "display", "Display"),
        ("acme", "banner", "Display"),
        ("acme", "cpm", "Display"),  # paid, but neither search nor social
        ("acme", "cpc", "Referral"),  # paid, but neither search nor social
        ("ref.com", "", "Referral"),
        ("", "", "Referral"),
    ],
)
def test_channel_rules(source: str, medium: str, expected: str) -> None:
    assert enrich.channel(source, medium) == expected


def test_search_and_social_come_from_the_referrer_database() -> None:
    from referer_parser import REFERERS

    search = {r["name"] for r in REFERERS.values() if r["medium"] == "search"}
    social = {r["name"] for r in REFERERS.values() if r["medium"] == "social"} - search
    assert len(search) > 100 and len(social) > 50
    assert {enrich.channel(s, "") for s in search} == {"Organic Search"}
    assert {enrich.channel(s, "") for s in social} == {"Organic Social"}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://ref.com/", "ref.com"),
        ("https://ref.com", "ref.com"),
        ("http://www.Ref.com:8080/a/b/?q=1#f", "ref.com/a/b/"),
        ("https://www.ref.com/a?b", "ref.com/a"),
        ("android-app://com.google.android.gm/", "com.google.android.gm"),
        ("", ""),
        ("not a url", ""),
    ],
)
def test_referrer_is_host_and_path(url: str, expected: str) -> None:
    assert enrich.referrer_url(url) == expected


def url_search_params(query: str) -> list[tuple[str, str]]:
    """The WHATWG application/x-www-form-urlencoded parser, as URLSearchParams runs it."""

    def decode(text: str) -> str:
        data, out, i = text.encode().replace(b"+", b" "), bytearray(), 0
        while i < len(data):
            hexdigits = data[i + 1 : i + 3]
            if (
                data[i] == ord("%")
                and len(hexdigits) == 2
                and all(chr(c) in "0123456789abcdefABCDEF" for c in hexdigits)
            ):
                out.append(int(hexdigits, 16))
                i += 3
            else:
                out.append(data[i])
                i += 1
        return out.decode("utf-8", errors="replace")

    pairs = []
    for sequence in query.split("&"):
        if sequence:
            name, _, value = sequence.partition("=")
            pairs.append((decode(name), decode(value)))
    return pairs


TOKENS = st.sampled_from([
    "utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term", "utm%5Fterm",
    "UTM_SOURCE", "ref", "=", "=", "&", "&", "+", "%", "%2", "%20", "%2B", "%26", "%3D",
    "%E2%82%AC", "%C3", "%FF", "%00", "%7F", "%C2%85", "a", "Z", "é", "€", " ", ";", "?", "/",
])  # fmt: skip


@given(st.lists(TOKENS, max_size=40), st.text(max_size=3))
def test_utm_decoding_is_url_search_params(tokens: list[str], noise: str) -> None:
    query = "".join(tokens) + quote(noise)
    first: dict[str, str] = {}
    for name, value in url_search_params(query):
        first.setdefault(name, value)
    expected = {
        name: "".join(c for c in first[name] if not (c < " " or "\x7f" <= c <= "\x9f"))[:200]
        for name in UTM
        if name in first
    }
    assert enrich.utm(f"https://x.example/p?{query}#utm_source=frag") == expected


def test_utm_values_are_bounded_like_the_source() -> None:
    url = "https://x.example/?utm_term=" + "%C3%A9" * 300 + "&utm_source=" + "s" * 300
    assert enrich.utm(url) == {"utm_term": "é" * 200, "utm_source": "s" * 200}
