"""The Python client (clients/python) on the real server: every RPC, retries, deadlines, install."""

import keyword
import re
import secrets
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from conftest import LiveProject, Stack, Tenant
from dataset import DAY_END, DAY_START, WIDE_DAY
from google.protobuf.message import Message
from weldpulse.api.ratelimit import SlidingLogLimiter
from weldpulse.app import build_server
from weldpulse.storage import accounts
from weldpulse_client import Client, Retry, filters, ingest_pb, retry_after, rpc_methods

ROOT = Path(__file__).resolve().parent.parent
# A case gets any other fixture it needs from `request.getfixturevalue`.
Case = Callable[[Client, Stack, pytest.FixtureRequest], None]
CASES: dict[str, Case] = {}


def case(method: str, service: str = "weldpulse.v1.AnalyticsService") -> Callable[[Case], Case]:
    def register(fn: Case) -> Case:
        CASES[f"{service}/{method}"] = fn
        return fn

    return register


def values(row: Message) -> tuple[Any, ...]:
    return tuple(getattr(row, f.name) for f in row.DESCRIPTOR.fields)


def snake(name: str) -> str:
    """GetStats -> get_stats; a keyword gets a trailing underscore (Import -> import_)."""
    snaked = re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
    return f"{snaked}_" if keyword.iskeyword(snaked) else snaked


@pytest.fixture
def client(stack: Stack) -> Iterator[Client]:
    with Client(f"127.0.0.1:{stack.grpc_port}", stack.new_key("a")) as c:
        yield c


# The figures are those of tests/test_metrics.py (computed by hand from tests/dataset.py).


@case("GetStats")
def _stats(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    assert values(client.get_stats(DAY_START, DAY_END)) == (6, 10, 7, 600.0, 0.4286)
    one_site = client.get_stats(DAY_START, DAY_END, site_id=stack.ids["a_site2"])
    assert values(one_site) == (1, 1, 1, 0.0, 1.0)


@case("ListPages")
def _pages(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    assert [values(r) for r in client.list_pages(DAY_START, DAY_END)] == [
        ("/", 5, 5, 910.0, 0.5), ("/pricing", 2, 4, 735.0, 0.5), ("/docs", 1, 1, 0.0, 0.0),
    ]  # fmt: skip
    assert [r.pathname for r in client.list_pages(DAY_START, DAY_END, limit=1)] == ["/"]


@case("ListReferrers")
def _referrers(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    assert [values(r) for r in client.list_referrers(DAY_START, DAY_END)] == [
        ("Google", 3, 7, 0.3333), ("GitHub", 1, 2, 0.0), ("Direct / None", 1, 1, 1.0),
        ("Hacker News", 1, 1, 1.0), ("Twitter", 1, 0, 0.0),
    ]  # fmt: skip


@case("GetTimeseries")
def _timeseries(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    hourly = client.get_timeseries(DAY_START, DAY_END)
    assert len(hourly) == 24 and values(hourly[10]) == ("2024-01-15T10:00:00", 4, 6, 4)
    daily = client.get_timeseries(DAY_START, DAY_END, interval="1 day")
    assert [values(r) for r in daily] == [("2024-01-15T00:00:00", 6, 10, 7)]


@case("GetRealtime")
def _realtime(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    live: LiveProject = request.getfixturevalue("live_project")
    with Client(f"127.0.0.1:{stack.grpc_port}", live.key) as live_client:
        rows = live_client.get_realtime()
    assert [values(r) for r in rows] == [("/now", "CA", "desktop", "Google", 2)]
    assert client.get_realtime() == []  # nobody on project A's sites now


@case("StreamRealtime", service="weldpulse.v1.LiveService")
def _stream_realtime(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    live: LiveProject = request.getfixturevalue("live_project")
    with (
        Client(f"127.0.0.1:{stack.grpc_port}", live.key) as live_client,
        live_client.stream_realtime(interval_seconds=1) as stream,
    ):
        first, second = next(stream), next(stream)
    for update in (first, second):
        assert [values(r) for r in update.data] == [("/now", "CA", "desktop", "Google", 2)]
        assert update.current_visitors == 2 and update.t.endswith("Z")
    assert first.t <= second.t
    with pytest.raises(grpc.RpcError) as bad:
        next(client.stream_realtime(interval_seconds=61))
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interval_seconds" in str(bad.value.details())


@case("ListEvents")
def _events(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    rows = client.list_events(DAY_START, DAY_END)
    assert [values(r) for r in rows] == [("signup_click", 2, 1), ("newsletter", 1, 1)]


@case("ListGeo")
def _geo(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    assert [values(r) for r in client.list_geo(DAY_START, DAY_END, limit=3)] == [
        ("US", "California", 2, 5), ("US", "New York", 1, 3), ("DE", "Berlin", 1, 1),
    ]  # fmt: skip


@case("ListDevices")
def _devices(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    rows = client.list_devices(DAY_START, DAY_END)
    assert [values(r) for r in rows][:2] == [
        ("desktop", "Chrome", "macOS", 2, 5), ("desktop", "Firefox", "Linux", 1, 3),
    ]  # fmt: skip
    assert len(rows) == 5


@case("ListSites")
def _sites(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    sites = client.list_sites()
    assert [(s.id, s.domain, s.name) for s in sites] == [
        (stack.ids["a_site1"], "example.com", "Main Site"),
        (stack.ids["a_site2"], "blog.example.com", "blog.example.com"),
    ]
    assert all(s.site_key.startswith("sk_live_") and s.is_active for s in sites)


@case("Query")
def _query(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    whole = client.query(["visitors", "pageviews", "sessions"], DAY_START, DAY_END)
    assert [list(r.metrics) for r in whole.results] == [[6, 10, 7]]  # as GetStats
    pricing = client.query(
        ["pageviews"],
        DAY_START,
        DAY_END,
        dimensions=["page"],
        filters=filters.all_of(filters.is_("page", "/PRICING", case_sensitive=False)),
    )
    assert [(list(r.dimensions), list(r.metrics)) for r in pricing.results] == [(["/pricing"], [4])]
    by_page = client.query(
        ["pageviews"], DAY_START, DAY_END, dimensions=["page"], order_by=["-pageviews"]
    )
    paged = list(client.query_rows(["pageviews"], DAY_START, DAY_END, dimensions=["page"], limit=1,
                                   order_by=["-pageviews"]))  # fmt: skip
    assert paged == list(by_page.results) and len(paged) == by_page.meta.total_rows > 1
    compared = client.query(["visitors"], DAY_START, DAY_END, compare=(DAY_START, DAY_END))
    assert list(compared.results[0].comparison.metrics) == [6]


@case("Collect", service="weldpulse.v1.IngestService")
def _collect(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    tenant: Tenant = request.getfixturevalue("tenant")
    today = datetime.now(UTC).date()
    days = str(today - timedelta(days=1)), str(today + timedelta(days=1))
    client.collect(
        tenant.site_key, "pageview", f"https://{tenant.domain}/py", props={"plan": "pro"}
    )
    with Client(f"127.0.0.1:{stack.grpc_port}", tenant.read_key) as reader:
        assert [(p.pathname, p.pageviews) for p in reader.list_pages(*days)] == [("/py", 1)]


@case("Import", service="weldpulse.v1.IngestService")
def _import(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    tenant: Tenant = request.getfixturevalue("tenant")

    def event(clock: str, path: str) -> ingest_pb.ImportEvent:
        url = f"https://{tenant.domain}{path}" if path else ""
        return ingest_pb.ImportEvent(
            timestamp=f"2024-03-04T{clock}Z", name="pageview", url=url, visitor_id="v1"
        )

    target = f"127.0.0.1:{stack.grpc_port}"
    with Client(target, tenant.write_key) as writer, Client(target, tenant.read_key) as reader:
        reply = writer.import_(
            tenant.site_id,
            [event("09:00:00", "/a"), event("09:01:00", "/b"), event("09:02:00", "")],
        )
        assert reply.accepted == 2
        assert [(r.index, r.error) for r in reply.rejected] == [(2, "url: required")]
        assert values(reader.get_stats("2024-03-04", "2024-03-04"))[:3] == (1, 2, 1)


FUNNEL = "weldpulse.v1.FunnelService"
STEPS = [{"page_path": "/"}, {"page_path": "/pricing"}, {"event_name": "signup_click"}]


@case("RunFunnel", service=FUNNEL)
def _run_funnel(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    site = stack.ids["a_site1"]
    reply = client.run_funnel(site, "2024-01-15", "2024-01-15", steps=STEPS)
    assert [(s.label, s.visitors, s.dropoff) for s in reply.steps] == [
        ("/", 4, 0), ("/pricing", 2, 2), ("signup_click", 1, 1)]  # fmt: skip
    assert reply.steps[1].conversion_rate == 0.5 and reply.meta.timezone == "UTC"
    # V3's /pricing comes 25 minutes after its /: outside a 10-minute window.
    short = client.run_funnel(site, "2024-01-15", "2024-01-15", steps=STEPS[:2], window=10)
    assert [s.visitors for s in short.steps] == [4, 1]


def _writer(stack: Stack) -> Client:
    return Client(f"127.0.0.1:{stack.grpc_port}", stack.new_key("a", ["stats:read", "sites:write"]))


@case("CreateFunnel", service=FUNNEL)
def _create_funnel(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    site = stack.ids["a_site1"]
    with _writer(stack) as writer:
        saved = writer.create_funnel(site, f"py-{time.time_ns()}", STEPS[:2], window=10)
        assert (saved.window.mode, saved.window.minutes, len(saved.steps)) == ("minutes", 10, 2)
        reply = client.run_funnel(site, "2024-01-15", "2024-01-15", funnel_id=saved.id)
        assert [s.visitors for s in reply.steps] == [4, 1]
        writer.delete_funnel(site, saved.id)


@case("ListFunnels", service=FUNNEL)
def _list_funnels(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    site = stack.ids["a_site1"]
    with _writer(stack) as writer:
        saved = writer.create_funnel(site, f"py-{time.time_ns()}", STEPS)
        assert saved.id in [f.id for f in client.list_funnels(site)]
        writer.delete_funnel(site, saved.id)
    assert saved.id not in [f.id for f in client.list_funnels(site)]


@case("DeleteFunnel", service=FUNNEL)
def _delete_funnel(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    site = stack.ids["a_site1"]
    with _writer(stack) as writer:
        saved = writer.create_funnel(site, f"py-{time.time_ns()}", STEPS)
        writer.delete_funnel(site, saved.id)
        with pytest.raises(grpc.RpcError) as err:
            writer.delete_funnel(site, saved.id)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as err:  # a stats:read key cannot change funnels
        client.delete_funnel(site, saved.id)
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


def _site_writer(stack: Stack) -> tuple[Client, str]:
    """A client whose key may change a fresh project's sites, and that project's site."""
    domain = f"py-{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, domain, "pro")
        site = accounts.create_site(conn, project, domain)["id"]
        key = accounts.create_api_key(conn, project, ["sites:write", "stats:read"])["key"]
    return Client(f"127.0.0.1:{stack.grpc_port}", key), site


@case("CreateSite", service="weldpulse.v1.SitesService")
def _create_site(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    writer, _ = _site_writer(stack)
    with writer:
        site = writer.create_site("new.py.example", timezone="Europe/Berlin")
        assert (site.domain, site.name, site.timezone) == ("new.py.example", "new.py.example",
                                                           "Europe/Berlin")  # fmt: skip
        assert site.id in [s.id for s in writer.list_sites()]
        with pytest.raises(grpc.RpcError) as err:
            writer.create_site("new.py.example")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "domain" in (err.value.details() or "")


@case("UpdateSite", service="weldpulse.v1.SitesService")
def _update_site(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    writer, site = _site_writer(stack)
    with writer:
        assert writer.update_site(site, timezone="Asia/Kolkata").timezone == "Asia/Kolkata"
        renamed = writer.update_site(site, name="Renamed")
        assert (renamed.name, renamed.timezone) == ("Renamed", "Asia/Kolkata")
    with pytest.raises(grpc.RpcError) as err:  # key "a" may read, not write
        client.update_site(stack.ids["a_site1"], name="x")
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED


@case("CreateGoal", service="weldpulse.v1.SitesService")
def _create_goal(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    writer, site = _site_writer(stack)
    with writer:
        goal = writer.create_goal(site, "Signup", event_name="signup")
        assert (goal.site_id, goal.name, goal.event_name, goal.page_path) == (
            site, "Signup", "signup", "")  # fmt: skip
        with pytest.raises(grpc.RpcError) as err:
            writer.create_goal(site, "Both", event_name="x", page_path="/x")
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


@case("ListGoals", service="weldpulse.v1.SitesService")
def _list_goals(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    writer, site = _site_writer(stack)
    with writer:
        made = [writer.create_goal(site, "B", page_path="/b/**"),
                writer.create_goal(site, "A", event_name="a")]  # fmt: skip
        assert writer.list_goals(site) == made


@case("DeleteGoal", service="weldpulse.v1.SitesService")
def _delete_goal(client: Client, stack: Stack, request: pytest.FixtureRequest) -> None:
    writer, site = _site_writer(stack)
    with writer:
        goal = writer.create_goal(site, "Gone", page_path="/x")
        writer.delete_goal(site, goal.id)
        assert writer.list_goals(site) == []
        with pytest.raises(grpc.RpcError) as err:
            writer.delete_goal(site, goal.id)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.parametrize("method", sorted(rpc_methods()))
def test_every_rpc(
    method: str, client: Client, stack: Stack, request: pytest.FixtureRequest
) -> None:
    """Enumerates the protos' services, so a new RPC fails here until it has a case."""
    if method not in CASES:
        pytest.fail(f"{method} has no case in tests/test_python_client.py CASES: add one")
    name = snake(method.rsplit("/", 1)[1])
    assert hasattr(Client, name), f"weldpulse_client.Client has no typed method {name}()"
    CASES[method](client, stack, request)


def test_call_by_name_with_a_json_request(client: Client) -> None:
    reply = client.call("GetStats", {"start": DAY_START, "end": DAY_END, "site_id": ""})
    assert values(reply.data[0]) == (6, 10, 7, 600.0, 0.4286)
    with pytest.raises(ValueError, match="unknown or ambiguous RPC 'NoSuchRpc'"):
        client.call("NoSuchRpc", {})


def test_default_limit_applies_when_limit_is_not_given(stack: Stack) -> None:
    with Client(f"127.0.0.1:{stack.grpc_port}", stack.keys["wide"]) as client:
        assert len(client.list_pages(WIDE_DAY, WIDE_DAY)) == 10
        assert len(client.list_pages(WIDE_DAY, WIDE_DAY, limit=1000)) == 60


@pytest.fixture
def tight_server(stack: Stack) -> Iterator[int]:
    """A second real server on the same stores that allows 2 calls per key a second."""
    server, port = build_server(stack.metadata, stack.events, limiter=SlidingLogLimiter(2, 1.0))
    yield port
    server.stop(grace=None)


def test_rate_limited_call_waits_the_servers_retry_after(stack: Stack, tight_server: int) -> None:
    key = stack.new_key("a")
    with Client(f"127.0.0.1:{tight_server}", key, retry=Retry(attempts=1)) as once:
        once.list_sites(), once.list_sites()
        with pytest.raises(grpc.RpcError) as err:
            once.list_sites()
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert retry_after(err.value) == 1.0
    with Client(f"127.0.0.1:{tight_server}", key) as patient:
        started = time.monotonic()
        assert [s.domain for s in patient.list_sites()] == ["example.com", "blog.example.com"]
        # It slept the 1 s the server asked for instead of failing.
        assert time.monotonic() - started >= 0.9
    # A retry-after beyond the call's deadline is not waited for.
    with Client(f"127.0.0.1:{tight_server}", stack.new_key("a"), timeout=0.5) as hurried:
        hurried.list_sites(), hurried.list_sites()
        with pytest.raises(grpc.RpcError) as late:
            hurried.list_sites()
    assert late.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_unavailable_is_retried_until_the_server_is_up(stack: Stack) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"127.0.0.1:{port}", stack.keys["a"], retry=Retry(attempts=1)) as once:
        with pytest.raises(grpc.RpcError) as err:
            once.list_sites()
        assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    servers: list[grpc.Server] = []

    def start() -> None:
        servers.append(build_server(stack.metadata, stack.events, port=port)[0])

    timer = threading.Timer(0.5, start)
    timer.start()
    try:
        retry = Retry(attempts=10, backoff=0.1, max_backoff=1.0)
        with Client(f"127.0.0.1:{port}", stack.new_key("a"), retry=retry) as client:
            assert len(client.list_sites()) == 2
    finally:
        timer.join()
        for server in servers:
            server.stop(grace=None)


def test_deadline_exceeded(client: Client) -> None:
    with pytest.raises(grpc.RpcError) as err:
        client.get_stats(DAY_START, DAY_END, timeout=0.000001)
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_client_needs_only_grpcio_and_protobuf(stack: Stack, tmp_path: Path) -> None:
    """Runs the client with nothing importable but the stdlib, grpcio, protobuf and itself."""
    import google.protobuf
    import typing_extensions

    (tmp_path / "google").mkdir()
    (tmp_path / "google/protobuf").symlink_to(Path(google.protobuf.__file__).parent)
    (tmp_path / "grpc").symlink_to(Path(grpc.__file__).parent)
    (tmp_path / "typing_extensions.py").symlink_to(typing_extensions.__file__)
    script = (
        "import sys\n"
        "from weldpulse_client import Client\n"
        "for name in ('weldpulse', 'google.api', 'sqlalchemy'):\n"
        "    try:\n"
        "        __import__(name)\n"
        "    except ImportError:\n"
        "        continue\n"
        "    sys.exit(f'{name} should not be importable here')\n"
        f"with Client('127.0.0.1:{stack.grpc_port}', sys.argv[1]) as c:\n"
        "    print(c.get_stats('2024-01-15', '2024-01-15').visitors)\n"
    )
    env = {"PYTHONPATH": f"{tmp_path}:{ROOT / 'clients/python/src'}", "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-S", "-c", script, stack.new_key("a")],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "6"
