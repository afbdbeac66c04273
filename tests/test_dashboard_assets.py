"""The dashboard's committed files are exactly what `make dashboard` builds from web/."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import Stack

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
COMMITTED = ROOT / "server" / "weldpulse" / "static" / "dashboard"


def test_dashboard_files_are_fresh(tmp_path: Path) -> None:
    node = shutil.which("node")
    if not node or not (WEB / "node_modules" / "esbuild").is_dir():
        reason = "the dashboard's build needs Node >= 20 and `make node-deps`"
        if os.environ.get("CI"):
            pytest.fail(f"CI must check the dashboard's files: {reason}")
        pytest.skip(reason)
    subprocess.run([node, str(WEB / "build.mjs"), str(tmp_path)], check=True, timeout=120)
    built = sorted(p.name for p in tmp_path.iterdir())
    assert built == sorted(p.name for p in COMMITTED.iterdir()), "run `make dashboard`"
    stale = [
        name for name in built if (tmp_path / name).read_bytes() != (COMMITTED / name).read_bytes()
    ]
    assert not stale, f"run `make dashboard`: {stale} differ from a build of web/"


def test_shipped_javascript_is_small() -> None:
    """The issue's budget: at most 120 KB of JavaScript, gzipped."""
    import gzip

    size = len(gzip.compress((COMMITTED / "app.js").read_bytes(), compresslevel=6))
    assert size <= 120 * 1024, f"app.js is {size} bytes gzipped"


def test_envoy_serves_the_dashboard_under_a_strict_policy(stack: Stack) -> None:
    if stack.engine != "embedded":
        pytest.skip("Envoy's static routes do not depend on the engine")
    page = stack.http.get("/dashboard/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'",
                      "connect-src 'self'", "frame-ancestors 'none'"):  # fmt: skip
        assert directive in csp
    assert "unsafe" not in csp
    # No inline script or style for the policy to allow: assets only, by content hash.
    assert "<script>" not in page.text and "<style" not in page.text
    js = re.search(r'src="(/dashboard/app\.js\?v=[0-9a-f]{12})"', page.text)
    assert js
    script = stack.http.get(js.group(1), headers={"Accept-Encoding": "gzip"})
    assert script.status_code == 200
    assert script.headers["content-encoding"] == "gzip"
    assert script.content == (COMMITTED / "app.js").read_bytes()  # httpx decompresses
    assert "immutable" in script.headers["cache-control"]
    # The bare path leads to the page; the API's own 404s are unchanged.
    assert stack.http.get("/dashboard").headers["location"].endswith("/dashboard/")
    assert stack.http.get("/").json()["code"] == "NOT_FOUND"
    assert stack.http.get("/dashboard/nope").json()["code"] == "NOT_FOUND"
