"""API keys: format and checksum, no lookup for malformed keys, hashing, expiry, revocation, scope."""

import io
import logging
import string
from datetime import UTC, datetime, timedelta

import pytest
from conftest import Stack
from dataset import DAY_END, DAY_START
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import event, select, text
from weldpulse.observability import json_handler
from weldpulse.storage import accounts, keys
from weldpulse.storage.schema import api_keys

RANGE = {"start": DAY_START, "end": DAY_END}
ENDPOINTS = [
    ("/v1/stats", RANGE),
    ("/v1/pages", RANGE),
    ("/v1/referrers", RANGE),
    ("/v1/timeseries", RANGE),
    ("/v1/events", RANGE),
    ("/v1/geo", RANGE),
    ("/v1/devices", RANGE),
    ("/v1/realtime", {}),
    ("/v1/sites", {}),
]
BASE62 = string.digits + string.ascii_letters


def test_key_format_has_128_bits_and_a_checksum() -> None:
    key = keys.new_api_key()
    assert key.startswith("ak_live_") and len(key) == len("ak_live_") + 22 + 6
    assert all(c in BASE62 for c in key[len("ak_live_") :])
    assert 62**keys.RANDOM_CHARS >= 2**128
    assert keys.is_well_formed(key)
    assert len({keys.new_api_key() for _ in range(1000)}) == 1000


@given(st.text(BASE62, min_size=keys.RANDOM_CHARS, max_size=keys.RANDOM_CHARS), st.data())
def test_every_single_character_typo_fails_the_checksum(body: str, data: st.DataObject) -> None:
    key = f"ak_live_{body}{keys._checksum(body)}"
    assert keys.is_well_formed(key)
    pos = data.draw(st.integers(len("ak_live_"), len(key) - 1))
    char = data.draw(st.sampled_from(BASE62).filter(lambda c: c != key[pos]))
    assert not keys.is_well_formed(key[:pos] + char + key[pos + 1 :])


@given(st.text(max_size=60))
def test_arbitrary_text_is_never_a_key(token: str) -> None:
    assert not keys.is_well_formed(token) or token.startswith("ak_live_")


def test_malformed_key_is_rejected_without_a_store_lookup(stack: Stack) -> None:
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    good = stack.keys["b"]
    typo = good[:-1] + ("A" if good[-1] != "A" else "B")
    event.listen(stack.metadata, "before_cursor_execute", count)
    try:
        resp = stack.http.get("/v1/sites", headers={"Authorization": f"Bearer {typo}"})
        assert resp.status_code == 401 and resp.json()["code"] == "UNAUTHORIZED"
        assert statements == []
        assert stack.get("/v1/sites", key="b").status_code == 200
        assert statements, "a well-formed key is looked up"
    finally:
        event.remove(stack.metadata, "before_cursor_execute", count)


def test_revocation_takes_effect_on_the_next_request(stack: Stack) -> None:
    with stack.metadata.begin() as conn:
        created = accounts.create_api_key(conn, stack.ids["b"], ["stats:read"])
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert stack.http.get("/v1/sites", headers=headers).status_code == 200
    with stack.metadata.begin() as conn:
        conn.execute(accounts.revoke_api_key_stmt(created["id"]))
    resp = stack.http.get("/v1/sites", headers=headers)
    assert resp.status_code == 401 and resp.json() == {
        "error": "Invalid API key",
        "code": "UNAUTHORIZED",
    }


def test_expired_key_is_401_and_a_future_expiry_works(stack: Stack) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    with stack.metadata.begin() as conn:
        past = accounts.create_api_key(conn, stack.ids["b"], ["stats:read"], now - timedelta(1))
        future = accounts.create_api_key(conn, stack.ids["b"], ["stats:read"], now + timedelta(1))
    resp = stack.http.get("/v1/sites", headers={"Authorization": f"Bearer {past['key']}"})
    assert resp.status_code == 401 and resp.json()["error"] == "API key expired"
    resp = stack.http.get("/v1/sites", headers={"Authorization": f"Bearer {future['key']}"})
    assert resp.status_code == 200


def test_last_used_at_is_recorded(stack: Stack) -> None:
    with stack.metadata.begin() as conn:
        created = accounts.create_api_key(conn, stack.ids["b"], ["stats:read"])
    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    used = select(api_keys.c.last_used_at).where(api_keys.c.id == created["id"])
    with stack.metadata.connect() as conn:
        assert conn.execute(used).scalar() is None
    headers = {"Authorization": f"Bearer {created['key']}"}
    assert stack.http.get("/v1/sites", headers=headers).status_code == 200
    with stack.metadata.connect() as conn:
        last_used = conn.execute(used).scalar()
    assert last_used is not None and last_used >= before


def test_write_only_key_cannot_read(stack: Stack) -> None:
    resp = stack.get("/v1/stats", key="a_write_only", **RANGE)
    assert resp.status_code == 403 and "stats:read" in resp.json()["error"]


def _dump(engine, tables: list[str]) -> str:
    with engine.connect() as conn:
        return "\n".join(
            repr(row) for t in tables for row in conn.execute(text(f"SELECT * FROM {t}"))
        )


def test_no_raw_key_in_the_stores_or_the_logs(stack: Stack) -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        with stack.metadata.begin() as conn:
            created = accounts.create_api_key(conn, stack.ids["a"], ["stats:read"])
        secret = created["key"]
        headers = {"Authorization": f"Bearer {secret}"}
        for path, params in ENDPOINTS:
            assert stack.http.get(path, params=params, headers=headers).status_code == 200
        stack.http.get("/v1/stats", params={"start": "nope"}, headers=headers)  # a 400
        with stack.metadata.begin() as conn:
            conn.execute(accounts.revoke_api_key_stmt(created["id"]))
        assert stack.http.get("/v1/sites", headers=headers).status_code == 401
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
    logs = stream.getvalue()
    assert '"event": "rpc"' in logs and created["id"] in logs  # logs name the key by id
    stored = _dump(stack.metadata, ["projects", "sites", "api_keys"])
    stored += _dump(stack.events, ["events", "sessions"])
    body = secret[len("ak_live_") :]
    for secret_part in (secret, body, body[:16]):
        assert secret_part not in logs
        assert secret_part not in stored
    assert keys.hash_key(secret) in stored and keys.display_prefix(secret) in stored


@pytest.mark.parametrize(("path", "params"), ENDPOINTS, ids=[p for p, _ in ENDPOINTS])
def test_no_key_of_project_b_reads_project_a(stack: Stack, path: str, params: dict) -> None:
    # Asking for A's sites is refused...
    for site in ("a_site1", "a_site2"):
        resp = stack.get(path, key="b", site_id=stack.ids[site], **params)
        assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST", resp.text
    everything = stack.get(path, key="b", **params)
    if path == "/v1/sites":  # takes no site_id: B lists exactly its one site
        assert [s["id"] for s in everything.json()["data"]] == [stack.ids["b_site"]]
        return
    # ...and B's unfiltered answer is exactly the answer for B's own site.
    own = stack.get(path, key="b", site_id=stack.ids["b_site"], **params)
    assert everything.status_code == own.status_code == 200
    assert everything.json() == own.json()
    for site in ("a_site1", "a_site2"):
        assert stack.ids[site] not in everything.text
    # A key of A sees data B cannot, so the comparison above is not vacuous.
    assert stack.get(path, key="a", **params).json() != everything.json() or path == "/v1/realtime"
