"""Property tests of ingestion payloads: any JSON body is a 202 or a contract 400, never a 5xx."""

import json
from datetime import datetime

from conftest import Stack, Tenant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from weldpulse.errors import BadRequest
from weldpulse.ingest.hits import MAX_NAME_CHARS, MAX_PROPS, Hit, Site, check

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=50)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=3)
    ),
    max_leaves=8,
)
texts = st.text(max_size=200)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.one_of(texts, st.just("pageview"), st.integers()),
    path=texts,
    referrer=st.one_of(texts, st.just("https://www.google.com/")),
    props=st.one_of(json_values, st.dictionaries(st.text(max_size=20), scalars, max_size=35)),
    extra=st.dictionaries(st.text(max_size=10), json_values, max_size=2),
)
def test_any_collect_body_is_accepted_or_a_clear_400(
    stack: Stack, tenant: Tenant, name, path, referrer, props, extra
) -> None:
    body = {
        **extra,
        "site_key": tenant.site_key,
        "name": name,
        "url": f"https://{tenant.domain}/{path}",
        "referrer": referrer,
        "props": props,
    }
    resp = stack.http.post(
        "/v1/collect",
        content=json.dumps(body),
        headers={"User-Agent": UA, "Content-Type": "application/json"},
    )
    assert resp.status_code in (202, 400), resp.text
    if resp.status_code == 400:
        assert sorted(resp.json()) == ["code", "error"] and resp.json()["code"] == "BAD_REQUEST"


@given(
    name=st.text(max_size=MAX_NAME_CHARS + 5),
    props=st.dictionaries(
        st.text(max_size=20),
        st.one_of(st.text(max_size=30), st.integers(), st.booleans()),
        max_size=MAX_PROPS + 3,
    ),
)
def test_check_accepts_exactly_what_is_within_the_limits(name: str, props: dict) -> None:
    hit = Hit(
        Site("s", "example.com"),
        datetime(2024, 1, 1),
        name,
        "https://example.com/",
        "",
        UA,
        "",
        props,
    )
    within = (
        bool(name.strip())
        and len(name) <= MAX_NAME_CHARS
        and len(props) <= MAX_PROPS
        and "\x00" not in name + "".join(props) + "".join(map(str, props.values()))
    )
    try:
        stored = check(hit)
    except BadRequest:
        assert not within
    else:
        assert (
            within
            and set(stored) == set(props)
            and all(isinstance(v, str) for v in stored.values())
        )
