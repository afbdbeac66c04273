"""The `weldpulse` command as a user runs it: its JSON output, and keys that work or stop working."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from conftest import Stack
from weldpulse.storage import accounts, keys

WELDPULSE = str(Path(sys.executable).with_name("weldpulse"))


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [WELDPULSE, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=60
    )


def cli_json(*args: str, env: dict[str, str]) -> dict:
    done = cli(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_create_project_site_and_key_then_revoke(stack: Stack) -> None:
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    project = cli_json("projects", "create", "--name", "CLI", "--plan", "enterprise", env=env)
    assert list(project) == ["id"]
    site = cli_json(
        "sites", "create", "--project", project["id"], "--domain", "cli.example", env=env
    )
    assert list(site) == ["id", "domain", "name", "site_key", "is_active", "created_at", "timezone"]
    assert (site["domain"], site["name"], site["is_active"], site["timezone"]) == (
        "cli.example",
        "cli.example",
        True,
        "UTC",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", site["created_at"])
    key = cli_json("keys", "create", "--project", project["id"], "--scope", "stats:read", env=env)
    assert sorted(key) == ["id", "key", "project_id", "scopes"]
    assert key["scopes"] == ["stats:read"] and keys.is_well_formed(key["key"])

    headers = {"Authorization": f"Bearer {key['key']}"}
    sites = stack.http.get("/v1/sites", headers=headers).json()["data"]
    assert [(s["id"], s["site_key"]) for s in sites] == [(site["id"], site["site_key"])]

    assert cli_json("keys", "revoke", key["id"], env=env) == {"id": key["id"], "revoked": True}
    assert stack.http.get("/v1/sites", headers=headers).status_code == 401
    again = cli("keys", "revoke", key["id"], env=env)
    assert again.returncode == 1 and "no active key" in again.stderr


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    env = {"WELDPULSE_DATA_DIR": str(tmp_path)}
    done = cli("sites", "create", "--project", "nope", "--domain", "x.example", env=env)
    assert done.returncode == 1 and "no project nope" in done.stderr
    done = cli("projects", "create", "--name", "X", "--plan", "gold", env=env)
    assert done.returncode == 2 and "invalid choice" in done.stderr


def test_up_serves_json_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = {**os.environ, "WELDPULSE_DATA_DIR": str(tmp_path), "WELDPULSE_GRPC_PORT": "0",
           "WELDPULSE_HTTP_PORT": "0"}  # fmt: skip
    proc = subprocess.Popen([WELDPULSE, "up"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"JSON on http://127\.0\.0\.1:(\d+)/v1/", line)
        assert match, line
        resp = httpx.get(f"http://127.0.0.1:{match.group(1)}/v1/sites", timeout=10)
        assert resp.status_code == 401 and resp.json()["code"] == "UNAUTHORIZED"
        assert (tmp_path / "metadata.sqlite3").exists() and (tmp_path / "events.duckdb").exists()
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{match.group(1)}/v1/sites", timeout=1)
            except httpx.TransportError:
                break
            time.sleep(0.1)
        else:
            raise AssertionError("Envoy still serves after weldpulse up stopped")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_keys_create_site_limits_the_key(stack: Stack) -> None:
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    with stack.metadata.begin() as conn:
        project = accounts.create_project(conn, "Two sites")
        first = accounts.create_site(conn, project, "one.example")["id"]
        second = accounts.create_site(conn, project, "two.example")["id"]
    key = cli_json("keys", "create", "--project", project, "--site", first, env=env)
    assert key["site_id"] == first and key["scopes"] == ["stats:read"]
    headers = {"Authorization": f"Bearer {key['key']}"}
    sites = stack.http.get("/v1/sites", headers=headers).json()["data"]
    assert [s["id"] for s in sites] == [first]
    day = {"start": "2024-01-15", "end": "2024-01-15"}
    other = stack.http.get("/v1/stats", params={**day, "site_id": second}, headers=headers)
    assert other.status_code == 403 and other.json()["code"] == "FORBIDDEN"
    # A site of another project cannot be named.
    done = cli("keys", "create", "--project", project, "--site", stack.ids["b_site"], env=env)
    assert done.returncode == 1 and f"no site {stack.ids['b_site']}" in done.stderr


def test_share_prints_a_dashboard_link_with_a_read_only_site_key(stack: Stack) -> None:
    env = {"WELDPULSE_METADATA_URL": stack.metadata_url}
    site, other = stack.ids["a_site1"], stack.ids["a_site2"]
    shared = cli_json("share", "--site", site, "--base-url", "https://stats.example/", env=env)
    assert sorted(shared) == ["id", "site_id", "url"] and shared["site_id"] == site
    base, _, key = shared["url"].partition("#key=")
    assert base == "https://stats.example/dashboard/" and keys.is_well_formed(key)
    headers = {"Authorization": f"Bearer {key}"}
    sites = stack.http.get("/v1/sites", headers=headers).json()["data"]
    assert [s["id"] for s in sites] == [site]
    day = {"start": "2024-01-15", "end": "2024-01-15"}
    assert (
        stack.http.get("/v1/stats", params=day, headers=headers).json()
        == stack.get("/v1/stats", site_id=site, **day).json()
    )
    refused = stack.http.get("/v1/stats", params={**day, "site_id": other}, headers=headers)
    assert refused.status_code == 403
    # Read-only: it cannot import.
    body = {"site_id": site, "events": [{"timestamp": "2024-01-15T10:00:00Z", "name": "x"}]}
    wrote = stack.http.post("/v1/import", json=body, headers=headers)
    assert wrote.status_code == 403 and "events:write" in wrote.json()["error"]
    # Revoking the key (what `keys revoke` does, tested above) ends the link.
    with stack.metadata.begin() as conn:
        conn.execute(accounts.revoke_api_key_stmt(shared["id"]))
    assert stack.http.get("/v1/sites", headers=headers).status_code == 401
    missing = cli("share", "--site", "nope", env=env)
    assert missing.returncode == 1 and "no site nope" in missing.stderr
