"""Fixtures that run the real stack: stores (DuckDB+SQLite or PostgreSQL), gRPC server, Envoy."""

import os
import secrets
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from dataset import ev, project_a_events, project_b_events, wide_events
from servers import OPEN_EDGE
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from weldpulse.api.ratelimit import SlidingLogLimiter
from weldpulse.app import build_server
from weldpulse.config import IngestOptions
from weldpulse.envoy import Envoy
from weldpulse.storage import accounts, engines, writer
from weldpulse_client import Client

POSTGRES_URL = os.environ.get("WELDPULSE_TEST_POSTGRES_URL")


@dataclass
class Stack:
    """A running server with Envoy in front, and the seeded projects' ids and keys."""

    engine: str
    metadata_url: str
    events_url: str
    metadata: Engine
    events: Engine
    grpc_port: int
    http: httpx.Client
    ids: dict[str, Any] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, key: str | None = "a", **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[key]}"} if key else {}
        return self.http.get(path, params=params, headers=headers)

    def new_key(self, project: str, scopes: list[str] | None = None) -> str:
        with self.metadata.begin() as conn:
            key = accounts.create_api_key(conn, self.ids[project], scopes or ["stats:read"])
        return key["key"]


def _postgres_database() -> Iterator[str]:
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL engine: set WELDPULSE_TEST_POSTGRES_URL (.ci/run does) to run")
    name = f"weldpulse_test_{secrets.token_hex(4)}"
    admin = create_engine(
        make_url(POSTGRES_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def seed(metadata: Engine, events: Engine) -> tuple[dict[str, Any], dict[str, str]]:
    ids: dict[str, Any] = {}
    keys: dict[str, str] = {}
    with metadata.begin() as conn:
        a = ids["a"] = accounts.create_project(conn, "Project A", "pro")
        ids["a_site1"] = accounts.create_site(conn, a, "example.com", "Main Site")["id"]
        ids["a_site2"] = accounts.create_site(conn, a, "blog.example.com")["id"]
        b = ids["b"] = accounts.create_project(conn, "Project B", "enterprise")
        ids["b_site"] = accounts.create_site(conn, b, "other.org")["id"]
        wide = ids["wide"] = accounts.create_project(conn, "Wide", "pro")
        ids["wide_site"] = accounts.create_site(conn, wide, "wide.example")["id"]
        live = ids["live"] = accounts.create_project(conn, "Live", "pro")
        ids["live_site"] = accounts.create_site(conn, live, "live.example")["id"]
        free = ids["free"] = accounts.create_project(conn, "Free", "free")
        accounts.create_site(conn, free, "free.example")
        ids["empty"] = accounts.create_project(conn, "No sites", "pro")
        for name in ("a", "b", "wide", "live", "free", "empty"):
            keys[name] = accounts.create_api_key(conn, ids[name], ["stats:read"])["key"]
        keys["a_write_only"] = accounts.create_api_key(conn, a, ["events:write"])["key"]
        revoked = accounts.create_api_key(conn, a, ["stats:read"])
        conn.execute(accounts.revoke_api_key_stmt(revoked["id"]))
        keys["revoked"] = revoked["key"]
    writer.record(events, project_a_events(ids["a_site1"], ids["a_site2"]))
    writer.record(events, project_b_events(ids["b_site"]))
    writer.record(events, wide_events(ids["wide_site"]))
    return ids, keys


# A tiny GeoIP2-City-shaped database. Envoy reports a loopback client as the
# host's own address, which differs between machines, so every IPv4 address
# is in Utrecht but for two documentation networks inserted after it.
PLACES = {
    "0.0.0.0/0": ("NL", "Utrecht", "Utrecht"),
    "203.0.113.0/24": ("US", "California", "San Francisco"),
    "2001:db8::/32": ("DE", "Berlin", "Berlin"),
}


def write_geoip_db(path: Path) -> Path:
    from mmdb_writer import MMDBWriter
    from netaddr import IPSet

    writer = MMDBWriter(ip_version=6, database_type="GeoIP2-City", ipv4_compatible=True)
    for network, (country, region, city) in PLACES.items():
        record = {
            "country": {"iso_code": country},
            "subdivisions": [{"names": {"en": region}}],
            "city": {"names": {"en": city}},
        }
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return path


@dataclass
class Tenant:
    """A project of its own with one site, a read key and a write key."""

    project_id: str
    site_id: str
    site_key: str
    domain: str
    read_key: str
    write_key: str


@pytest.fixture
def tenant(stack: "Stack") -> Tenant:
    domain = f"t{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, domain, "pro")
        site = accounts.create_site(conn, project, domain)
        read = accounts.create_api_key(conn, project, ["stats:read"])["key"]
        write = accounts.create_api_key(conn, project, ["events:write"])["key"]
    return Tenant(project, site["id"], site["site_key"], domain, read, write)


@pytest.fixture(scope="session", params=["embedded", "postgres"])
def stack(request: pytest.FixtureRequest) -> Iterator[Stack]:
    """The whole stack on one engine: DuckDB + SQLite files, or PostgreSQL for both stores."""
    tmp = Path(tempfile.mkdtemp(prefix="weldpulse-test-"))
    if request.param == "postgres":
        pg = _postgres_database()
        meta_url = events_url = next(pg)
    else:
        meta_url, events_url = f"sqlite:///{tmp}/metadata.sqlite3", f"duckdb:///{tmp}/events.duckdb"
    metadata, events = engines.open_stores(meta_url, events_url)
    assert events is not None
    ids, keys = seed(metadata, events)
    # ack="applied": the tests read what they have just written (read-your-writes).
    geo = IngestOptions(geoip_db=str(write_geoip_db(tmp / "geo.mmdb")), ack="applied")
    server, port = build_server(metadata, events, limiter=SlidingLogLimiter(), ingest=geo)
    envoy = Envoy(port, log_path=tmp / "envoy.log", limits=OPEN_EDGE).start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{envoy.http_port}", timeout=30)
    try:
        yield Stack(request.param, meta_url, events_url, metadata, events, port, client, ids, keys)
    finally:
        client.close()
        envoy.stop()
        server.stop(grace=None)
        metadata.dispose()
        events.dispose()
        if request.param == "postgres":
            next(pg, None)


@pytest.fixture
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{stack.grpc_port}") as chan:
        yield chan


@dataclass
class LiveProject:
    """A project of its own whose one site has visitors right now (realtime answers)."""

    key: str
    site_id: str
    domain: str


@pytest.fixture
def live_project(stack: Stack) -> LiveProject:
    """Visitors 20 and 21 on `/now` 1 and 2 minutes ago, from Google, CA, desktop."""
    domain = f"live-{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, "Clients live", "pro")
        site = accounts.create_site(conn, project, domain)["id"]
        key = accounts.create_api_key(conn, project, ["stats:read"])["key"]
    now = datetime.now(UTC).replace(tzinfo=None)
    attrs = ("Google", "CA", "Ontario", "desktop", "Chrome", "Windows")
    writer.record(stack.events, [
        ev(site, 20, now - timedelta(minutes=1), "/now", attrs),
        ev(site, 21, now - timedelta(minutes=2), "/now", attrs),
    ])  # fmt: skip
    return LiveProject(key, site, domain)


GrpcClients = Callable[..., Client]


@pytest.fixture
def grpc_client(stack: Stack) -> Iterator[GrpcClients]:
    """Opens the project's Python client: `grpc_client("a")`, `grpc_client(None, port=...)`."""
    opened: list[Client] = []

    def open_client(key: str | None = "a", port: int | None = None, **options: Any) -> Client:
        api_key = stack.keys[key] if key else ""
        opened.append(Client(f"127.0.0.1:{port or stack.grpc_port}", api_key, **options))
        return opened[-1]

    yield open_client
    for client in opened:
        client.close()


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Ends the run with pytest's own status, skipping interpreter finalization.

    At finalization, Python 3.11 force-unwinds daemon threads still inside
    gRPC's C++ core (a channel's or a stopped server's polling thread);
    a `catch (...)` there makes that "FATAL: exception not rethrown" and an
    abort (exit 134) after every test passed, now and then. Everything a
    test wrote is flushed first; nothing runs after this hook but teardown
    that the OS does anyway.
    """
    if _EXIT_STATUS and not hasattr(sys, "ps1"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_EXIT_STATUS[0])
