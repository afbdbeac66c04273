"""Ingestion at the wire: collects (32 connections) beside a no-op floor, and imports, via wrk.

Starts `python -m weldpulse.app` (one or more processes) behind one Envoy on
fresh stores and drives it with wrk (Debian package `wrk`; a Python client
would be the bottleneck on 2 cores). The floor is a no-op RPC through the
same Envoy: the collect route (same config, filters and transcoding) in
front of a bare grpc.aio server whose Collect returns at once, so
collects / floor is the share of the stack's own limit the server reaches.
`bot` is the real server's collect with a bot's user agent (site lookup,
validation; nothing stored). `--code DIR` runs another checkout's server (its `server` and
`gen/python`), so before and after are measured side by side in one run:

    python bench/ingest_wire.py --code /tmp/before --label before --code . --label after

`--ingest-processes 0 1 2` adds that many ingest-only processes (as
WELDPULSE_INGEST_PROCESSES does for `weldpulse up`), each count in turn per round.
`--collect-only` runs the collect series alone (no floor, bot or imports) and
samples the processes' RSS every second, for the memory target at length:

    python bench/ingest_wire.py --collect-only --seconds 600
"""

import argparse
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from weldpulse.config import EdgeLimits
from weldpulse.envoy import Envoy
from weldpulse.ingest.processes import IngestProcesses

ROOT = Path(__file__).resolve().parent.parent
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Safari/537.36"
)
BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
OPEN_EDGE = EdgeLimits(
    collect_per_second=10**6, collect_burst=10**6, api_per_second=10**6, api_burst=10**6
)
SETUP = """
import json, sys
from weldpulse.storage import accounts, engines
meta, events = engines.open_stores(sys.argv[1], sys.argv[2])
with meta.begin() as conn:
    project = accounts.create_project(conn, "bench", "enterprise")
    site = accounts.create_site(conn, project, "big.example")
    key = accounts.create_api_key(conn, project, ["events:write"])["key"]
    fresh = accounts.create_site(conn, project, "fresh.example")
    read = accounts.create_api_key(conn, project, ["stats:read"])["key"]
print(json.dumps({"site_key": site["site_key"], "site_id": site["id"], "key": key,
                  "fresh_key": fresh["site_key"], "fresh_id": fresh["id"], "read": read}))
"""
# The floor's server: IngestService.Collect as an async no-op, and health (Envoy checks it).
NOOP = """
import asyncio
from grpc import aio
from grpc_health.v1 import health, health_pb2_grpc
from weldpulse.v1 import ingest_pb2, ingest_pb2_grpc

class Noop(ingest_pb2_grpc.IngestServiceServicer):
    async def Collect(self, request, context):
        return ingest_pb2.CollectResponse()

async def main():
    server = aio.server()
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(Noop(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"noop: gRPC on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()

asyncio.run(main())
"""
COLLECT_LUA = """
local n = 0
request = function()
  n = n + 1
  local body = '{"site_key":"%(site_key)s","name":"pageview",'
    .. '"url":"https://big.example/c/' .. (n %% 50) .. '"}'
  local ua = "%(ua)s probe/" .. (n %% 500)
  local headers = {["Content-Type"]="application/json", ["User-Agent"]=ua}
  return wrk.format("POST", "/v1/collect", headers, body)
end
"""
IMPORT_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer %(key)s"
local f = io.open("%(body)s", "r")
wrk.body = f:read("*a")
f:close()
"""


def _env(code: Path, data: Path, meta: str, events: str) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": f"{code / 'server'}:{code / 'gen' / 'python'}",
        "WELDPULSE_DATA_DIR": str(data),
        "WELDPULSE_METADATA_URL": meta,
        "WELDPULSE_EVENTS_URL": events,
        "WELDPULSE_GRPC_PORT": "0",
        "WELDPULSE_RATE_LIMIT": str(10**9),  # the per-key quota is not what is measured
    }


def _wrk(port: int, script: str, connections: int, seconds: int, path: str = "/") -> dict[str, Any]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
        lua.write(script)
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", lua.name,
         f"http://127.0.0.1:{port}{path}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    lat = dict(re.findall(r"^\s+(50|90|99)%\s+([\d.]+\w+)", out, re.M))
    return {"per_s": round(rate, 1), "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50": lat.get("50"), "p90": lat.get("90"), "p99": lat.get("99")}  # fmt: skip


def _floor(data: Path, lua: str, seconds: int) -> dict[str, Any]:
    """wrk on the no-op server behind an Envoy of the same config (this tree's protos)."""
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'server'}:{ROOT / 'gen' / 'python'}"}
    noop = subprocess.Popen(
        [sys.executable, "-c", NOOP], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        line = noop.stdout.readline()  # type: ignore[union-attr]
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))  # type: ignore[union-attr]
        envoy = Envoy([port], log_path=data / "envoy-floor.log", limits=OPEN_EDGE).start()
        try:
            _wrk(envoy.http_port, lua, 32, 2)  # warm-up
            before = _cpu_s([noop])
            started = time.perf_counter()
            result = _wrk(envoy.http_port, lua, 32, seconds)
            result["cores"] = round((_cpu_s([noop]) - before) / (time.perf_counter() - started), 2)
            return result
        finally:
            envoy.stop()
    finally:
        noop.terminate()
        noop.wait(10)


def _freshness(port: int, info: dict[str, Any], stop: threading.Event, out: list[float]) -> None:
    """Ack → visible: a marker collect on a small site every 0.2 s, then /v1/realtime polled."""
    base = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {info['read']}"}
    with httpx.Client(base_url=base, timeout=30) as http:
        n = 0
        while not stop.is_set():
            n += 1
            path = f"/marker/{n}"
            body = {"site_key": info["fresh_key"], "name": "pageview",
                    "url": f"https://fresh.example{path}"}  # fmt: skip
            if http.post("/v1/collect", json=body, headers={"User-Agent": UA}).status_code != 202:
                continue
            acked = time.perf_counter()
            while time.perf_counter() - acked < 30:
                resp = http.get("/v1/realtime", params={"site_id": info["fresh_id"]}, headers=auth)
                if path in resp.text:
                    out.append(time.perf_counter() - acked)
                    break
                time.sleep(0.01)
            stop.wait(0.2)


def _import_body(site_id: str, path: Path, size: int = 1000) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    events = [
        {"name": "pageview", "timestamp": now, "url": f"https://big.example/imp/{i % 100}",
         "visitor_id": f"imp-{i % 300}", "user_agent": UA, "ip": "203.0.113.9",
         "referrer": "https://www.google.com/"}
        for i in range(size)
    ]  # fmt: skip
    path.write_text(json.dumps({"site_id": site_id, "events": events}))


def _backlog(log: Path) -> int:
    if not log.exists():
        return 0
    with sqlite3.connect(f"file:{log}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT total(events) FROM records").fetchone()[0])


def measure(
    code: Path,
    engine: str,
    servers: int,
    seconds: int,
    pg_url: str | None,
    ingest_only: int = 0,
    collect_only: bool = False,
) -> dict:
    data = Path(tempfile.mkdtemp(prefix="weldpulse-wire-"))
    meta = f"sqlite:///{data}/metadata.sqlite3"
    events = f"duckdb:///{data}/events.duckdb"
    if engine == "postgres":
        assert pg_url, "--postgres-url"
        meta = events = _fresh_database(pg_url)
    env = _env(code, data, meta, events)
    info = json.loads(
        subprocess.run(
            [sys.executable, "-c", SETUP, meta, events],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    procs, ports = [], []
    for _ in range(servers):
        with open(data / "server.log", "a") as server_log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "weldpulse.app"],
                env=env,
                stdout=subprocess.PIPE,
                stderr=server_log,
                text=True,
            )
        line = proc.stdout.readline()  # type: ignore[union-attr]
        ports.append(int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1)))  # type: ignore[union-attr]
        procs.append(proc)
    log = data / "events.duckdb.ingest-log" if engine == "embedded" else data / "ingest-log.sqlite3"
    ingest = IngestProcesses(ingest_only, str(log), env).start()
    envoy = Envoy(
        ports, log_path=data / "envoy.log", limits=OPEN_EDGE, ingest_ports=ingest.ports
    ).start()
    result: dict[str, Any] = {
        "code": str(code), "engine": engine, "servers": servers, "ingest_processes": ingest_only
    }  # fmt: skip
    try:
        port = envoy.http_port
        if not collect_only:
            result["floor"] = _floor(
                data, COLLECT_LUA % {"site_key": info["site_key"], "ua": UA}, seconds
            )
            lua = COLLECT_LUA % {"site_key": info["site_key"], "ua": BOT}
            _wrk(port, lua, 32, 2)  # warm-up
            result["bot"] = _wrk(port, lua, 32, seconds)
        lua = COLLECT_LUA % {"site_key": info["site_key"], "ua": UA}
        _wrk(port, lua, 32, 2)
        stop, visible = threading.Event(), []  # type: ignore[var-annotated]
        marker = threading.Thread(target=_freshness, args=(port, info, stop, visible))
        marker.start()
        watched: dict[str, list[Any]] = {
            "server": procs,
            "ingest_only": ingest.procs,
            "envoy": [envoy.process],
        }
        before = {name: _cpu_s(ps) for name, ps in watched.items()}
        wrk_before = _children_cpu_s()
        rss: list[int] = []
        sampler = threading.Thread(target=_sample_rss, args=(procs + ingest.procs, stop, rss))
        sampler.start()
        started = time.perf_counter()
        try:
            result["collect"] = _wrk(port, lua, 32, seconds)
            # Where the cores went during the collect series: CPU seconds per wall second.
            wall = time.perf_counter() - started
            result["collect_cores"] = {
                name: round((_cpu_s(ps) - before[name]) / wall, 2) for name, ps in watched.items()
            }
            result["collect_cores"]["wrk"] = round((_children_cpu_s() - wrk_before) / wall, 2)
            if not collect_only:
                result["collect_per_floor"] = round(
                    result["collect"]["per_s"] / result["floor"]["per_s"], 2
                )
        finally:
            stop.set()
            marker.join()
            sampler.join()
        if rss:
            # RSS of the weldpulse processes together, sampled every second of the series.
            tenth = max(1, len(rss) // 10)
            result["rss_over_time_mib"] = {"start": rss[0], "end": rss[-1], "max": max(rss),
                                           "every_tenth": rss[::tenth]}  # fmt: skip
        visible.sort()
        result["ack_to_visible_ms"] = {
            "n": len(visible),
            "p50": round(visible[len(visible) // 2] * 1000) if visible else None,
            # The target is the p99; with n of 20-30 (8 s series) it is the max.
            "p99": round(visible[int(len(visible) * 0.99)] * 1000) if visible else None,
            "max": round(visible[-1] * 1000) if visible else None,
        }
        result["backlog_after_collects"] = _backlog(log)
        started = time.perf_counter()
        while _backlog(log) and time.perf_counter() - started < 60:
            time.sleep(0.05)
        result["drain_s"] = round(time.perf_counter() - started, 2)
        if collect_only:
            result["rss_mib"] = [_rss(p.pid) for p in procs + ingest.procs]
            return result
        body = data / "import.json"
        _import_body(info["site_id"], body)
        imp = _wrk(port, IMPORT_LUA % {"key": info["key"], "body": body}, 4, seconds, "/v1/import")
        result["import"] = {**imp, "events_per_s": round(imp["per_s"] * 1000)}
        result["rss_mib"] = [_rss(p.pid) for p in procs + ingest.procs]
    finally:
        envoy.stop()
        ingest.stop()
        for proc in procs:
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
        if engine == "postgres":
            _drop_database(events)
    return result


def _drop_database(url: str) -> None:
    name = make_url(url).database
    admin = create_engine(
        make_url(url).set(drivername="postgresql+psycopg", database="postgres"),
        isolation_level="AUTOCOMMIT",
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _fresh_database(url: str) -> str:
    """A new, empty PostgreSQL database beside `url`'s (each run migrates its own code)."""
    name = f"weldpulse_wire_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def _cpu_s(procs: list[Any]) -> float:
    """User + system CPU seconds of these processes so far (/proc/PID/stat)."""
    total = 0
    for proc in procs:
        fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def _children_cpu_s() -> float:
    """CPU seconds of this process's finished children (wrk, once it has exited)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _sample_rss(procs: list[Any], stop: threading.Event, out: list[int]) -> None:
    """The processes' summed resident memory (VmRSS, MiB), once a second until `stop`."""
    while not stop.wait(1.0):
        out.append(sum(_rss(p.pid, "VmRSS:") for p in procs))


def _rss(pid: int, field: str = "VmHWM:") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) // 1024
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=textwrap.dedent(__doc__ or ""))
    parser.add_argument("--code", type=Path, action="append", default=[])
    parser.add_argument("--label", action="append", default=[])
    parser.add_argument("--engine", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--servers", type=int, default=1)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--ingest-processes", type=int, nargs="+", default=[0])
    parser.add_argument("--collect-only", action="store_true")
    args = parser.parse_args()
    codes = args.code or [ROOT]
    labels = args.label or [str(c) for c in codes]
    for r in range(args.rounds):
        for code, label in zip(codes, labels, strict=True):
            for n in args.ingest_processes:
                res = measure(code.resolve(), args.engine, args.servers, args.seconds,
                              args.postgres_url, n, args.collect_only)  # fmt: skip
                print(json.dumps({"round": r, "label": label, **res}), flush=True)


if __name__ == "__main__":
    main()
