"""Runs the TypeScript client's node tests (clients/typescript/test) against the live stack."""

import json
import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import LiveProject, Stack, Tenant
from weldpulse.storage import accounts

TS = Path(__file__).resolve().parent.parent / "clients/typescript"


def node_problem() -> str | None:
    """Why the node tests cannot run here, or None."""
    node = shutil.which("node")
    if node is None:
        return "Node >= 20 is not installed"
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    if int(version.lstrip("v").split(".")[0]) < 20:
        return f"Node >= 20 is needed, found {version.strip()}"
    if not (TS / "node_modules/.bin/tsc").exists():
        return "clients/typescript has no node_modules: run `make node-deps`"
    return None


@pytest.fixture(scope="module")
def compiled() -> Path:
    problem = node_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the TypeScript client tests: {problem}")
        pytest.skip(problem)
    tsc = subprocess.run(
        [str(TS / "node_modules/.bin/tsc"), "-p", str(TS)], capture_output=True, text=True
    )
    assert tsc.returncode == 0, tsc.stdout + tsc.stderr
    return TS / "dist/test"


def test_typescript_client_calls_every_rpc(
    compiled: Path, stack: Stack, live_project: LiveProject, tenant: Tenant
) -> None:
    domain = f"ts-{secrets.token_hex(4)}.example"
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, domain, "pro")
        site = accounts.create_site(conn, project, domain)["id"]
        sites_key = accounts.create_api_key(conn, project, ["sites:write", "stats:read"])["key"]
    fixture = {
        "sites": {"siteId": site, "writeKey": sites_key},
        "key": stack.new_key("a"),
        "siteIds": [stack.ids["a_site1"], stack.ids["a_site2"]],
        "funnelKey": stack.new_key("a", ["stats:read", "sites:write"]),
        "liveKey": live_project.key,
        "tenant": {
            "siteId": tenant.site_id,
            "siteKey": tenant.site_key,
            "domain": tenant.domain,
            "readKey": tenant.read_key,
            "writeKey": tenant.write_key,
        },
    }
    env = {
        **os.environ,
        "WELDPULSE_GRPC_URL": f"http://127.0.0.1:{stack.grpc_port}",
        "WELDPULSE_HTTP_URL": f"http://127.0.0.1:{stack.http.base_url.port}",
        "WELDPULSE_FIXTURE": json.dumps(fixture),
    }
    run = subprocess.run(
        ["node", "--test", "--test-reporter=tap", str(compiled)],
        cwd=TS, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    summary = dict(re.findall(r"^# (pass|fail|skipped|cancelled) (\d+)$", run.stdout, re.M))
    assert run.returncode == 0 and summary.get("fail") == "0", run.stdout[-6000:] + run.stderr
    # 21 RPCs + the enumeration check + 2 error cases, over each of gRPC and JSON.
    assert int(summary["pass"]) >= 2 * (21 + 1 + 2), summary
    assert summary.get("skipped") == "0" and summary.get("cancelled") == "0", summary
