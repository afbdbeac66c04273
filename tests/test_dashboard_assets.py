"""The dashboard's committed files are exactly what `make dashboard` builds from web/."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

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
