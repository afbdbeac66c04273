"""No raw IP is stored anywhere, and daily salts are deleted once they cannot be needed."""

import time
from datetime import UTC, date, datetime, timedelta

from conftest import Stack, Tenant
from sqlalchemy import Engine, MetaData, select
from weldpulse.app import build_server
from weldpulse.config import ServerOptions
from weldpulse.ingest.visitors import Salts
from weldpulse.storage.schema import events_db, metadata_db, salts

SECRET_IP = "203.0.113.77"
SECRET_IP6 = "2001:db8::beef"


def every_value(engine: Engine, tables: MetaData) -> str:
    """Every cell of every table of a store, as text."""
    out: list[str] = []
    with engine.connect() as conn:
        for table in tables.sorted_tables:
            for row in conn.execute(select(table)):
                out.extend(str(v) for v in row)
    return "\n".join(out)


def test_no_raw_ip_in_either_store(stack: Stack, tenant: Tenant) -> None:
    ua = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"
    events = [
        {
            "timestamp": "2024-05-01T10:00:00Z",
            "name": "pageview",
            "url": f"https://{tenant.domain}/",
            "user_agent": ua,
            "ip": ip,
        }
        for ip in (SECRET_IP, SECRET_IP6)
    ]
    resp = stack.http.post(
        "/v1/import",
        json={"site_id": tenant.site_id, "events": events},
        headers={"Authorization": f"Bearer {tenant.write_key}"},
    )
    assert resp.json()["accepted"] == 2
    stored = every_value(stack.metadata, metadata_db) + every_value(stack.events, events_db)
    assert "California" in stored  # the IP was used...
    assert SECRET_IP not in stored and SECRET_IP6 not in stored  # ...and not kept
    assert "203.0.113" not in stored


def test_old_salts_are_deleted(stack: Stack) -> None:
    now = datetime.now(UTC).replace(tzinfo=None)
    today = now.date()
    with stack.metadata.begin() as conn:
        for back, age in (
            (3, timedelta(days=3)),
            (2, timedelta(hours=30)),
            (10, timedelta(hours=2)),
        ):
            day = today - timedelta(days=back)
            conn.execute(salts.delete().where(salts.c.day == day))
            conn.execute(salts.insert().values(day=day, salt="00" * 32, created_at=now - age))
    store = Salts(stack.metadata)
    store.for_day(today)
    with stack.metadata.connect() as conn:
        kept = {r.day for r in conn.execute(select(salts.c.day))}
    days = {d if isinstance(d, date) else date.fromisoformat(str(d)) for d in kept}
    assert today in days
    assert today - timedelta(days=3) not in days and today - timedelta(days=2) not in days
    # A back-fill's salt of an old day lives 24 h from when it was made.
    assert today - timedelta(days=10) in days


def test_visitor_ids_change_with_the_day_and_the_site() -> None:
    from weldpulse.ingest.visitors import _hash63

    a = _hash63(b"salt-1", "site", "1.2.3.4", "ua")
    assert a == _hash63(b"salt-1", "site", "1.2.3.4", "ua")
    assert a != _hash63(b"salt-2", "site", "1.2.3.4", "ua")
    assert a != _hash63(b"salt-1", "other", "1.2.3.4", "ua")
    assert 0 <= a < 2**63


def test_expired_salts_are_deleted_by_an_idle_server(stack: Stack) -> None:
    server, _ = build_server(
        stack.metadata, stack.events, options=ServerOptions(salt_sweep_seconds=0.2)
    )
    try:
        now = datetime.now(UTC).replace(tzinfo=None)
        old = now.date() - timedelta(days=40)
        with stack.metadata.begin() as conn:
            conn.execute(salts.delete().where(salts.c.day == old))
            conn.execute(salts.insert().values(day=old, salt="11" * 32, created_at=now - timedelta(days=3)))  # fmt: skip
        deadline = time.monotonic() + 10
        while _salt_days(stack.metadata) & {old}:  # no collect happens meanwhile
            assert time.monotonic() < deadline, "the expired salt was kept"
            time.sleep(0.1)
    finally:
        server.stop(grace=None)


def _salt_days(engine: Engine) -> set[date]:
    with engine.connect() as conn:
        days = conn.execute(select(salts.c.day)).scalars()
        return {d if isinstance(d, date) else date.fromisoformat(str(d)) for d in days}
