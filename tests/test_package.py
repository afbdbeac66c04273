"""The built wheel, installed with pipx outside the checkout, serves API, tracker and dashboard.

Building and installing takes about a minute (pip fetches every dependency
into a fresh venv), over the budget of `make test`: .ci/run runs it as its
own step with WELDPULSE_TEST_PACKAGE=1, and `make test-package` does too.
"""

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "server" / "weldpulse" / "static"

pytestmark = pytest.mark.skipif(
    not os.environ.get("WELDPULSE_TEST_PACKAGE"),
    reason="builds and installs the wheel (~1 min): set WELDPULSE_TEST_PACKAGE=1 (.ci/run does)",
)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """The `weldpulse` command of the wheel pipx installed, and the environment to run it in."""
    tmp = tmp_path_factory.mktemp("package")
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        cwd=tmp,
    )
    (wheel,) = wheels.glob("weldpulse-*.whl")
    # Nothing of the checkout's configuration or source leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WELDPULSE_", "PYTHON"))}
    env |= {"PIPX_HOME": str(tmp / "pipx"), "PIPX_BIN_DIR": str(tmp / "bin"),
            "PIPX_MAN_DIR": str(tmp / "man")}  # fmt: skip
    pipx = Path(sys.executable).with_name("pipx")
    subprocess.run(
        [str(pipx), "install", "--python", sys.executable, str(wheel)],
        check=True,
        cwd=tmp,
        env=env,
        capture_output=True,
    )
    return tmp / "bin" / "weldpulse", env


def test_installed_wheel_serves_api_tracker_and_dashboard(
    installed: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    weldpulse, env = installed
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {**env, "WELDPULSE_GRPC_PORT": "0", "WELDPULSE_HTTP_PORT": "0"}

    def cli(*args: str) -> dict:
        done = subprocess.run([str(weldpulse), *args, "--json"], cwd=empty, env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    proc = subprocess.Popen(
        [str(weldpulse), "up"], cwd=empty, env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"JSON on (http://127\.0\.0\.1:\d+)/v1/", line)
        assert match, f"weldpulse up did not start: {line!r}"
        http = httpx.Client(base_url=match.group(1), timeout=10)
        # The default data dir, under the directory it was started in.
        assert (empty / "var" / "metadata.sqlite3").exists()

        project = cli("projects", "create", "--name", "Packaged")["id"]
        site = cli("sites", "create", "--project", project, "--domain", "pkg.example")
        key = cli("keys", "create", "--project", project)["key"]
        sites = http.get("/v1/sites", headers={"Authorization": f"Bearer {key}"})
        assert sites.status_code == 200, sites.text
        assert [s["id"] for s in sites.json()["data"]] == [site["id"]]

        tracker = http.get("/js/script.js")
        assert tracker.status_code == 200
        assert tracker.content == (STATIC / "js" / "script.js").read_bytes()
        page = http.get("/dashboard/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.content == (STATIC / "dashboard" / "index.html").read_bytes()
        # Served from the install, not from this checkout.
        where = subprocess.run(
            [str(weldpulse.resolve().parent / "python"), "-c",
             "import weldpulse.envoy as e; print(e.TEMPLATE, e.DESCRIPTOR, e.TRACKER)"],
            cwd=empty, env=env, capture_output=True, text=True, check=True,
        ).stdout.split()  # fmt: skip
        assert all(not Path(p).is_relative_to(ROOT) and Path(p).exists() for p in where), where
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
