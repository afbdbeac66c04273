"""Schemathesis against the live stack through Envoy: no 5xx, every answer matches the OpenAPI document.

The document is generated from the protos (gen/openapi/, checked by
test_gen). WELDPULSE_FUZZ_CASES sets the cases per run (default 5,400,
split over the engines that run and their operations); `make fuzz` runs a
long one.
"""

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

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
from weldpulse.app import Options, build_server
from weldpulse.envoy import Envoy

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


@pytest.fixture(scope="module")
def fuzz_target(stack: Stack) -> Iterator[tuple[str, str]]:
    """A server on the stack's stores without a practical rate limit, behind its own Envoy."""
    server, port = build_server(stack.metadata, stack.events, options=Options(rate_limit=10**9))
    envoy = Envoy(port, limits=OPEN_EDGE).start()
    TALLY[stack.engine] = Counter()
    try:
        yield f"http://127.0.0.1:{envoy.http_port}", stack.keys["a"]
    finally:
        envoy.stop()
        server.stop(grace=None)
        tally = TALLY[stack.engine]
        fivexx = sum(n for status, n in tally.items() if status >= 500)
        print(
            f"\nfuzz {stack.engine}: {sum(tally.values())} cases, {fivexx} 5xx, "
            f"statuses {dict(sorted(tally.items()))}"
        )


@schema.parametrize()
@settings(
    max_examples=max(1, -(-PER_ENGINE // OPERATIONS)),
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_api_never_fails_and_matches_its_schema(
    case: schemathesis.Case, stack: Stack, fuzz_target: tuple[str, str]
) -> None:
    base_url, key = fuzz_target
    response = case.call_and_validate(
        base_url=base_url, headers={"Authorization": f"Bearer {key}"}, checks=CHECKS
    )
    TALLY[stack.engine][response.status_code] += 1


def test_oversized_query_values_are_never_5xx(stack: Stack) -> None:
    for size in (1_000, 10_000, 40_000):
        resp = stack.get("/v1/pages", key="b", start="9" * size, end="x", limit=1, site_id="s")
        assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST"
    resp = stack.get("/v1/pages", key="b", limit="9" * 30_000)  # not an int32: Envoy refuses
    assert resp.status_code == 400 and resp.json()["code"] == "BAD_REQUEST"
