"""Server processes (`python -m weldpulse.app`) for tests that need several, or real signals."""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from weldpulse.config import EdgeLimits
from weldpulse.envoy import Envoy

# Test stacks send far more from 127.0.0.1 than any one real client: Envoy's
# per-address rates are set out of reach (tests/test_edge_limits.py tests them).
OPEN_EDGE = EdgeLimits(
    collect_per_second=10**6, collect_burst=10**6, api_per_second=10**6, api_burst=10**6
)


@dataclass
class ServerProcess:
    proc: subprocess.Popen[str]
    port: int
    metrics_port: int | None
    log_path: Path

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def logs(self) -> str:
        return self.log_path.read_text()

    def health(self) -> grpc.Channel:
        return grpc.insecure_channel(f"127.0.0.1:{self.port}")


def spawn(metadata_url: str, events_url: str, log_path: Path, **env: str) -> ServerProcess:
    """Starts a server on a free port and returns once it serves."""
    full_env = {
        **os.environ,
        "WELDPULSE_METADATA_URL": metadata_url,
        "WELDPULSE_EVENTS_URL": events_url,
        "WELDPULSE_GRPC_PORT": "0",
        # The ingest log (beside a DuckDB file, else here): one per test, shared by its servers.
        "WELDPULSE_DATA_DIR": str(log_path.parent),
        **env,
    }
    with open(log_path, "a") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "weldpulse.app"],
            env=full_env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"gRPC on 127\.0\.0\.1:(\d+)(?:, metrics on 127\.0\.0\.1:(\d+))?", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r} {log_path.read_text()[-2000:]}")
    server = ServerProcess(
        proc, int(match.group(1)), int(match.group(2)) if match.group(2) else None, log_path
    )
    with server.health() as chan:
        stub = health_pb2_grpc.HealthStub(chan)
        status = stub.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        assert status == health_pb2.HealthCheckResponse.SERVING
    return server


@contextmanager
def behind_envoy(
    metadata_url: str, events_url: str | None, tmp: Path, count: int = 2, **env: str
) -> Iterator[tuple[list[ServerProcess], Envoy]]:
    """`count` server processes on shared stores behind one Envoy.

    `events_url=None` gives each process a DuckDB file of its own (a DuckDB
    file is opened by one process at a time); a PostgreSQL URL is shared.
    """
    servers: list[ServerProcess] = []
    envoy = None
    try:
        for i in range(count):
            events = events_url or f"duckdb:///{tmp}/{i}.db"
            servers.append(spawn(metadata_url, events, tmp / f"server{i}.log", **env))
        envoy = Envoy([s.port for s in servers], log_path=tmp / "envoy.log", limits=OPEN_EDGE)
        envoy.start()
        yield servers, envoy
    finally:
        if envoy:
            envoy.stop()
        for server in servers:
            server.kill()
