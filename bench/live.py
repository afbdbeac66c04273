"""The live stream under load: 500 open streams at a 1 s interval against one server process.

    cd bench && ../.venv/bin/python live.py [--events 100000] [--engine embedded|postgres]

Measures, in one run and side by side: the server process's CPU with no
stream and with the streams open (% of one core), /v1/stats p50 through
Envoy without and with them, and how long a collected event takes to show
in a stream update. The streams are held by a child process (`--hold`), so
their client's CPU is not the server's. Results: bench/results/live-<engine>.json.
"""

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from typing import Any

import grpc
import httpx
from run import RESULTS, Server, load, windows
from sqlalchemy import select
from weldpulse.storage import accounts, engines, schema
from weldpulse.v1 import ingest_pb2, ingest_pb2_grpc, live_pb2, live_pb2_grpc

STREAMS = 500
PER_KEY = 5  # the server's cap of open streams per key
CHANNELS = 10


async def hold(target: str, keys: list[str], sites: list[str], streams: int) -> None:
    """Child process: opens `streams` streams (interval 1 s), says "open", counts updates."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(CHANNELS)]
    received, first = [0], [0]
    opened = asyncio.Event()

    async def one(i: int) -> None:
        stub = live_pb2_grpc.LiveServiceStub(channels[i % CHANNELS])
        auth = (("authorization", f"Bearer {keys[i // PER_KEY]}"),)
        request = live_pb2.StreamRealtimeRequest(site_id=sites[i % len(sites)], interval_seconds=1)
        started = False
        async for _ in stub.StreamRealtime(request, metadata=auth):
            received[0] += 1
            if not started:
                started, first[0] = True, first[0] + 1
                if first[0] == streams:
                    opened.set()

    tasks = [asyncio.create_task(one(i)) for i in range(streams)]
    while not opened.is_set():
        await asyncio.sleep(1)
        failed = [t.exception() for t in tasks if t.done() and t.exception()]
        if failed:
            raise SystemExit(f"streams failed: {failed[0]!r}")
    print("open", flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # until the parent says stop
    print(json.dumps({"updates": received[0]}), flush=True)
    for task in tasks:
        task.cancel()


def cpu_seconds(server: Server) -> float:
    times = server.ps.cpu_times()
    return float(times.user + times.system)


def settle(server: Server, limit_pct: float = 5.0, seconds: float = 60.0) -> None:
    """Waits until the server is idle (start-up work done: migrations, rollups, checkpoints)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        before = cpu_seconds(server)
        time.sleep(1)
        if (cpu_seconds(server) - before) * 100 < limit_pct:
            return


def stats_p50(http: httpx.Client, site: str, auth: str, requests: int) -> float:
    start, end = windows()["30d"]
    params = {"site_id": site, "start": start.date().isoformat(), "end": end.date().isoformat()}
    took = []
    for i in range(requests + 5):
        began = time.perf_counter()
        http.get("/v1/stats", params=params, headers={"Authorization": auth}).raise_for_status()
        if i >= 5:  # warm-up
            took.append(time.perf_counter() - began)
    return statistics.median(took) * 1000


def event_to_update(target: str, key: str, site: str, site_key: str, trials: int) -> list[float]:
    """Seconds from a collect's acknowledgement to the first update that counts its visitor.

    Each collect follows an update at once, so this is the worst case: a
    whole interval (1 s) plus the snapshot's time.
    """
    latencies = []
    with grpc.insecure_channel(target) as chan:
        stub = live_pb2_grpc.LiveServiceStub(chan)
        auth = (("authorization", f"Bearer {key}"),)
        updates = stub.StreamRealtime(
            live_pb2.StreamRealtimeRequest(site_id=site, interval_seconds=1), metadata=auth
        )
        seen = next(updates).current_visitors
        for i in range(trials):
            # A new visitor each time: another browser version, same address.
            ua = (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
                f"Chrome/120.0.{i}.0 Safari/537.36"
            )
            with grpc.insecure_channel(target, options=[("grpc.primary_user_agent", ua)]) as c:
                hit = ingest_pb2.CollectRequest(
                    site_key=site_key, name="pageview", url=f"https://small.example/live/{i}"
                )
                ingest_pb2_grpc.IngestServiceStub(c).Collect(hit, timeout=10)
            acked = time.perf_counter()
            for update in updates:
                if update.current_visitors > seen:
                    seen = update.current_visitors
                    latencies.append(time.perf_counter() - acked)
                    break
        updates.cancel()
    return latencies


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--engine", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--streams", type=int, default=STREAMS)
    parser.add_argument("--seconds", type=float, default=20.0, help="CPU sampling window")
    parser.add_argument("--requests", type=int, default=200, help="/v1/stats calls per p50")
    parser.add_argument(
        "--hold", nargs=3, metavar=("TARGET", "KEYS", "SITES"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.hold:
        target, keys, sites = args.hold
        asyncio.run(hold(target, keys.split(","), sites.split(","), args.streams))
        return 0

    data_dir = RESULTS / f"data-live-{args.engine}-{args.events}"
    data_dir.mkdir(parents=True, exist_ok=True)
    print(f"loading {args.events} events ({args.engine})", file=sys.stderr)
    info = load(args.events, args.engine, data_dir, batch=100_000)
    meta = engines.connect(info["meta_url"])
    with meta.begin() as conn:
        keys = [
            accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
            for _ in range(args.streams // PER_KEY + 2)
        ]
        sites = schema.sites.c
        site_key = conn.execute(
            select(sites.site_key).where(sites.id == info["sites"][2])
        ).scalar_one()
    meta.dispose()
    os.environ["WELDPULSE_RATE_LIMIT"] = "1000000"
    server = Server(info, data_dir)
    target = f"127.0.0.1:{server.grpc_port}"
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60)
    auth = f"Bearer {keys[-1]}"
    result: dict[str, Any] = {"engine": args.engine, "events": args.events, "streams": args.streams}
    try:
        stats_p50(http, info["sites"][0], auth, 20)  # warm caches before either measurement
        settle(server)
        before = cpu_seconds(server)
        time.sleep(args.seconds)
        result["cpu_idle_pct"] = round((cpu_seconds(server) - before) / args.seconds * 100, 1)
        result["stats_p50_ms_without"] = round(
            stats_p50(http, info["sites"][0], auth, args.requests), 2
        )
        holder = subprocess.Popen(
            [sys.executable, __file__, "--streams", str(args.streams), "--hold", target,
             ",".join(keys[:-2]), ",".join(info["sites"])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert holder.stdin is not None and holder.stdout is not None
        print(f"opening {args.streams} streams", file=sys.stderr)
        opening = time.perf_counter()
        assert holder.stdout.readline().strip() == "open"
        result["open_s"] = round(time.perf_counter() - opening, 2)
        before = cpu_seconds(server)
        time.sleep(args.seconds)
        used = cpu_seconds(server) - before
        result["cpu_streams_pct"] = round(used / args.seconds * 100, 1)
        result["rss_mib"] = round(server.ps.memory_info().rss / 2**20)
        result["stats_p50_ms_with"] = round(
            stats_p50(http, info["sites"][0], auth, args.requests), 2
        )
        lat = event_to_update(target, keys[-2], info["sites"][2], site_key, 10)
        result["event_to_update_s"] = {
            "p50": round(statistics.median(lat), 2), "max": round(max(lat), 2), "n": len(lat)
        }  # fmt: skip
        holder.stdin.write("stop\n")
        holder.stdin.flush()
        result["updates_received"] = json.loads(holder.stdout.readline())["updates"]
        holder.send_signal(signal.SIGTERM)
        holder.wait(30)
        # Again without streams: the machine is shared, so the ratio uses both sides.
        time.sleep(3)
        after = stats_p50(http, info["sites"][0], auth, args.requests)
        result["stats_p50_ms_without_after"] = round(after, 2)
        without = (result["stats_p50_ms_without"] + after) / 2
        result["stats_ratio"] = round(result["stats_p50_ms_with"] / without, 2)
    finally:
        http.close()
        server.stop()
    (RESULTS / f"live-{args.engine}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
