"""Ingest-only server processes for `weldpulse up` (WELDPULSE_INGEST_PROCESSES): more than one GIL.

Each is `python -m weldpulse.app` with WELDPULSE_INGEST_ONLY=1: it serves
collects and imports, appends them to the same durable log as the main
server and never opens the events store, which the main server owns and
applies the log to. Envoy balances /v1/collect and /v1/import over them.
"""

import os
import re
import signal
import subprocess
import sys
from collections.abc import Mapping

STOP_TIMEOUT_S = 15.0
_LISTENING = re.compile(r"gRPC on 127\.0\.0\.1:(\d+)")


class IngestProcesses:
    """`count` ingest-only processes on free ports; `stop()` is graceful (SIGTERM, then wait)."""

    def __init__(self, count: int, log_path: str | None, env: Mapping[str, str] | None = None):
        if count and not log_path:
            raise ValueError("ingest-only processes need the shared log (WELDPULSE_INGEST_LOG)")
        self.count = count
        self.env = {
            **(env if env is not None else os.environ),
            "WELDPULSE_INGEST_ONLY": "1",
            "WELDPULSE_GRPC_PORT": "0",
            "WELDPULSE_INGEST_LOG": log_path or "",
            "WELDPULSE_METRICS_PORT": "",  # the main server's port is taken
        }
        self.procs: list[subprocess.Popen[str]] = []
        self.ports: list[int] = []

    def start(self) -> "IngestProcesses":
        try:
            for _ in range(self.count):
                self._start_one()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_one(self) -> None:
        proc = subprocess.Popen(
            [sys.executable, "-m", "weldpulse.app"],
            env=self.env,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the process prints its port once it serves
        match = _LISTENING.search(line)
        if match is None:
            raise RuntimeError(f"an ingest process did not start: {line!r}")
        self.ports.append(int(match.group(1)))

    def stop(self) -> None:
        """Each finishes its calls in flight (they are logged: the main server stores them)."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
