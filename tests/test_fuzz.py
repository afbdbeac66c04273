"""Schemathesis against the live stack through Envoy: no 5xx, every answer matches the OpenAPI document.

The document is generated from the protos (gen/openapi/, checked by
test_gen). WELDPULSE_FUZZ_CASES sets the cases per run (default 5,400,
split over the engines that run and their operations); `make fuzz` runs a
long one. Ingestion cases use real keys most of the time, so that accepted
events reach storage; each of them must be stored exactly once.
"""

import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import POSTGRES_URL, Stack
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from servers import OPEN_EDGE
from sqlalchemy import func, select
from weldpulse.app import build_server
from weldpulse.config import ServerOptions
from weldpulse.envoy import Envoy
from weldpulse.storage import accounts
from weldpulse.storage.schema import events

ROOT = Path(__file__).resolve().parent.parent
schema = schemathesis.openapi.from_path(ROOT / "gen" / "openapi" / "weldpulse.v1.json")
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
OPERATIONS = sum(1 for _ in schema.get_all_operations())
CASES = int(os.environ.get("WELDPULSE_FUZZ_CASES", "5400"))
PER_ENGINE = CASES // (2 if POSTGRES_URL else 1)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
TALLY: dict[str, Counter[int]] = {}
STREAM = "/v1/realtime/stream"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"


@dataclass
class Target:
    """The fuzzed server, and a project of its own whose keys let events be stored.

    Its own project, not the seeded ones: other tests assert project A's numbers.
    """

    base_url: str
    read_key: str
    write_key: str
    admin_key: str  # stats:read and sites:write, for the site routes
    site_id: str
    site_key: str
    domain: str
    stored: int = 0  # events the answers say were stored


def _fuzz_project(stack: Stack) -> tuple[str, str, str, dict]:
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, "Fuzz", "pro")
        site = accounts.create_site(conn, project, f"fuzz-{stack.engine}.example")
        write = accounts.create_api_key(conn, project, ["events:write"])["key"]
        admin = accounts.create_api_key(conn, project, ["stats:read", "sites:write"])["key"]
    return stack.keys["a"], write, admin, site


def _stored(stack: Stack, site_id: str) -> int:
    with stack.events.connect() as conn:
        query = select(func.count()).select_from(events).where(events.c.site_id == site_id)
        return conn.execute(query).scalar_one()


@pytest.fixture(scope="module")
def fuzz_target(stack: Stack) -> Iterator[Target]:
    """A server on the stack's stores without a practical rate limit, behind its own Envoy."""
    server, port = build_server(
        stack.metadata, stack.events, options=ServerOptions(rate_limit=10**9)
    )
    envoy = Envoy(port, limits=OPEN_EDGE).start()
    TALLY[stack.engine] = Counter()
    read_key, write_key, admin_key, site = _fuzz_project(stack)
    target = Target(
        f"http://127.0.0.1:{envoy.http_port}",
        read_key,
        write_key,
        admin_key,
        site["id"],
        site["site_key"],
        site["domain"],
    )
    try:
        yield target
    finally:
        envoy.stop()
        server.stop(grace=None)
        tally = TALLY[stack.engine]
        fivexx = sum(n for status, n in tally.items() if status >= 500)
        print(
            f"\nfuzz {stack.engine}: {sum(tally.values())} cases, {fivexx} 5xx, "
            f"statuses {dict(sorted(tally.items()))}, {target.stored} events stored"
        )
    assert _stored(stack, target.site_id) == target.stored  # each accepted event once


def _recent() -> str:
    return (datetime.now(UTC) - timedelta(hours=1)).isoformat()


def _on_site(url: object, target: Target) -> str:
    return f"https://{target.domain}/{url if isinstance(url, str) else ''}"


def _plausible(event: Any, target: Target) -> Any:
    """A generated event with the fields an import checks made valid; the rest stays random."""
    if not isinstance(event, dict):
        return event
    return {
        "name": "pageview",
        **event,
        "ip": "203.0.113.7",
        "timestamp": _recent(),
        "url": _on_site(event.get("url"), target),
    }


def with_valid_keys(case: schemathesis.Case, target: Target, turn: int) -> str:
    """Two ingestion cases in three use the target's real site (one of those a plausible event).

    Returns the API key to send: the write key for import, a read key otherwise.
    Funnel and site routes name the target's site two cases in three, with a key
    that may read and change it, so they get past the site check.
    """
    body, path = case.body, case.operation.path
    if path == "/v1/funnel" or path.startswith("/v1/sites"):
        if turn % 3:
            if case.path_parameters and "site_id" in case.path_parameters:
                case.path_parameters["site_id"] = target.site_id
            elif isinstance(body, dict):
                body["site_id"] = target.site_id
        return target.admin_key
    if path == "/v1/collect" and isinstance(body, dict) and turn % 3:
        body["site_key"] = target.site_key
        if turn % 3 == 2:
            body["url"] = _on_site(body.get("url"), target)
            body.setdefault("name", "pageview")
    if path != "/v1/import":
        return target.read_key
    if isinstance(body, dict) and turn % 3:
        body["site_id"] = target.site_id
        generated = body.get("events")
        if turn % 3 == 2 and isinstance(generated, list):
            body["events"] = [_plausible(event, target) for event in generated]
    return target.write_key


def _count_stored(case: schemathesis.Case, response: Any, target: Target) -> None:
    path = case.operation.path
    if path == "/v1/collect" and response.status_code == 202:
        target.stored += "x-weldpulse-dropped" not in response.headers
    elif path == "/v1/import" and response.status_code == 200:
        target.stored += response.json()["accepted"]


@schema.parametrize()
@settings(
    max_examples=max(1, -(-PER_ENGINE // OPERATIONS)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case, stack: Stack, fuzz_target: Target
) -> None:
    tally = TALLY[stack.engine]
    key = with_valid_keys(case, fuzz_target, sum(tally.values()))
    if case.operation.path == STREAM:
        tally[_first_update(case, fuzz_target, key)] += 1
        return
    response = case.call_and_validate(
        base_url=fuzz_target.base_url,
        headers={"Authorization": f"Bearer {key}", "User-Agent": BROWSER},
        checks=CHECKS,
    )
    tally[response.status_code] += 1
    _count_stored(case, response, fuzz_target)


def _first_update(case: schemathesis.Case, target: Target, key: str) -> int:
    """A live stream never ends: its answer is checked up to its first update (or its error)."""
    headers = {"Authorization": f"Bearer {key}", "User-Agent": BROWSER}
    url = target.base_url + case.formatted_path
    with httpx.stream("GET", url, params=case.query, headers=headers, timeout=15) as resp:
        if resp.status_code == 200:
            assert resp.headers["content-type"].startswith("text/event-stream"), resp.headers
            line = next(line for line in resp.iter_lines() if line)
            update = json.loads(line.removeprefix("data: "))
            assert {"t", "current_visitors", "data"} <= set(update), update
        else:
            resp.read()
            assert resp.status_code < 500 and resp.json()["code"], resp.text
        return resp.status_code


def test_oversized_query_values_are_never_5xx(stack: Stack) -> None:
    for size in (1_000, 10_000, 40_000):
        resp = stack.get("/v1/pages", key="b", start="9" * size, end="x", limit=1, site_id="s")
        assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST"
    resp = stack.get("/v1/pages", key="b", limit="9" * 30_000)  # not an int32: Envoy refuses
    assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST"
