"""`make bench`: generate and load events, then time every /v1 endpoint against its SQL floor.

Loads through `weldpulse.storage.writer.record`, runs the floor statements on the bare
engine, starts the real server and Envoy (`weldpulse up`) in a subprocess,
times each endpoint through Envoy and directly over gRPC, probes the
ingestion routes, and writes JSON and Markdown under bench/results/.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import httpx
import psutil
from floor import SQL, executor, floor_params, time_statement
from funnel_shapes import time_funnels
from generate import DAYS, END, generate
from ingest_probe import probe_ingestion
from queries import GOALS, SHAPES
from report import write_reports
from weldpulse.domain import SESSION_GAP, Event
from weldpulse.storage import accounts, engines, goals, rollups, writer
from weldpulse.v1 import analytics_pb2 as pb
from weldpulse.v1 import analytics_pb2_grpc

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SITES = ("big.example", "mid.example", "small.example")
SMALL_BATCH = 1000

# endpoint -> (RPC, request class, extra parameters, takes a range)
ENDPOINTS: dict[str, tuple[str, Any, dict[str, str], bool]] = {
    "stats": ("GetStats", pb.GetStatsRequest, {}, True),
    "pages": ("ListPages", pb.ListPagesRequest, {}, True),
    "referrers": ("ListReferrers", pb.ListReferrersRequest, {}, True),
    "timeseries": ("GetTimeseries", pb.GetTimeseriesRequest, {"interval": "1 day"}, True),
    "realtime": ("GetRealtime", pb.GetRealtimeRequest, {}, False),
    "events": ("ListEvents", pb.ListEventsRequest, {}, True),
    "geo": ("ListGeo", pb.ListGeoRequest, {}, True),
    "devices": ("ListDevices", pb.ListDevicesRequest, {}, True),
    "sites": ("ListSites", pb.ListSitesRequest, {}, False),
}
WINDOWS = {"30d": 30, "90d": DAYS}


def summary(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"p50": round(statistics.median(ordered), 2), "p95": round(p95, 2), "n": len(times)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events_url(engine: str, data_dir: Path, n: int) -> str:
    if engine == "embedded":
        return f"duckdb:///{data_dir / 'events.duckdb'}"
    base = os.environ.get("BENCH_POSTGRES_URL") or os.environ["WELDPULSE_TEST_POSTGRES_URL"]
    # BENCH_POSTGRES_DB: a database of one's own, when several people bench on one server.
    name = os.environ.get("BENCH_POSTGRES_DB") or f"weldpulse_bench_{n}"
    admin = base.rsplit("/", 1)[0]
    with (
        engines.connect(f"{admin}/postgres")
        .execution_options(isolation_level="AUTOCOMMIT")
        .connect() as c
    ):
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return f"{admin}/{name}"


def live_events(site: str, now: datetime) -> list[Event]:
    """200 visitors active in the last 5 minutes, so /v1/realtime has rows to group."""
    return [
        Event(site_id=site, ts=now - timedelta(seconds=290 - i), name="pageview",
              visitor_id=10**15 + i, pathname=f"/live/{i % 7}", country="US",
              region="US-01", device_type="desktop", browser="Chrome", os="Windows")
        for i in range(200)
    ]  # fmt: skip


def load(n: int, engine: str, data_dir: Path, batch: int) -> dict[str, Any]:
    """Fresh stores, three sites, the stream through writer.record; returns the load figures."""
    meta_url = f"sqlite:///{data_dir / 'metadata.sqlite3'}"
    ev_url = events_url(engine, data_dir, n)
    metadata, events = engines.open_stores(meta_url, ev_url)
    assert events is not None
    with metadata.begin() as conn:
        project = accounts.create_project(conn, "Bench", "pro")
        site_ids = [accounts.create_site(conn, project, d)["id"] for d in SITES]
    started = wall = time.perf_counter()
    stream = generate(n)
    generated = time.perf_counter() - started
    print(f"bench: generated {n:,} events in {generated:.0f} s", flush=True)
    # The last tenth (at most 100k events) goes in 1,000-event batches: the import path.
    small = min(n // 10, 100_000)
    timings = {"bulk": [0.0, 0], "small": [0.0, 0]}
    for kind, size, lo, hi in (("bulk", batch, 0, n - small), ("small", SMALL_BATCH, n - small, n)):
        for events_batch in stream.batches(site_ids, size, lo, hi):
            started = time.perf_counter()
            recorded = writer.record(events, events_batch)
            timings[kind][0] += time.perf_counter() - started
            if (timings[kind][1] + recorded) // 5_000_000 > timings[kind][1] // 5_000_000:
                print(f"bench: {kind}: {timings[kind][1] + recorded:,} events", flush=True)
            timings[kind][1] += recorded
    writer.record(events, live_events(site_ids[0], datetime.now(UTC).replace(tzinfo=None)))
    if engine == "postgres":  # as after any bulk load: the planner needs current statistics
        with events.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    metadata.dispose()
    events.dispose()
    info = {
        "meta_url": meta_url, "events_url": ev_url, "project": project, "sites": site_ids,
        "generate_s": round(generated, 1),
        "record_bulk_events_per_s": round(timings["bulk"][1] / max(timings["bulk"][0], 1e-9)),
        "record_bulk_batch": batch,
        "record_1000_events_per_s": round(timings["small"][1] / max(timings["small"][0], 1e-9)),
        "record_1000_events": timings["small"][1],
        "load_wall_s": round(time.perf_counter() - wall, 1),
    }  # fmt: skip
    (data_dir / "load.json").write_text(json.dumps(info, indent=1))
    return info


def refresh_live(info: dict[str, Any]) -> None:
    """On --reuse: the live visitors of the load are long gone, so /v1/realtime gets new ones."""
    metadata, events = engines.open_stores(info["meta_url"], info["events_url"])
    assert events is not None
    try:
        writer.record(events, live_events(info["sites"][0], datetime.now(UTC).replace(tzinfo=None)))
    finally:
        metadata.dispose()
        events.dispose()


def roll(info: dict[str, Any]) -> dict[str, Any]:
    """What the server's collector does in the background: rolls every finished (site, day)."""
    metadata, events = engines.open_stores(info["meta_url"], info["events_url"])
    assert events is not None
    before = (datetime.now(UTC).replace(tzinfo=None) - SESSION_GAP).date()
    try:
        with events.connect() as conn:
            days = len(conn.execute(rollups.unrolled_stmt(before)).all())
        started = time.perf_counter()
        rollups.roll_pending(events, before)
        return {"site_days": days, "seconds": round(time.perf_counter() - started, 1)}
    finally:
        metadata.dispose()
        events.dispose()


def windows() -> dict[str, tuple[datetime, datetime]]:
    return {
        w: (END - timedelta(days=d), END - timedelta(microseconds=1)) for w, d in WINDOWS.items()
    }


def run_floor(info: dict[str, Any], warmup: int, requests: int) -> dict[str, Any]:
    execute, close = executor(info["events_url"])
    site, since = info["sites"][0], datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    out: dict[str, Any] = {}
    try:
        for name, sql in SQL.items():
            for window, (start, end) in windows().items():
                if name == "realtime" and window != "30d":
                    continue
                label = "now" if name == "realtime" else window
                times = time_statement(
                    execute, sql, floor_params(site, start, end, since), warmup, requests
                )
                out[f"{name}/{label}"] = summary(times)
    finally:
        close()
    return out


class Server:
    """`weldpulse up` in a subprocess on free ports: gRPC server plus Envoy."""

    def __init__(self, info: dict[str, Any], data_dir: Path) -> None:
        self.grpc_port, self.http_port = free_port(), free_port()
        env = dict(
            os.environ,
            WELDPULSE_DATA_DIR=str(data_dir),
            WELDPULSE_METADATA_URL=info["meta_url"],
            WELDPULSE_EVENTS_URL=info["events_url"],
            WELDPULSE_GRPC_PORT=str(self.grpc_port),
            WELDPULSE_HTTP_PORT=str(self.http_port),
            # Every bench client is 127.0.0.1: no per-address limit at Envoy.
            WELDPULSE_EDGE_API_PER_SECOND="1000000",
            WELDPULSE_EDGE_API_BURST="1000000",
            WELDPULSE_EDGE_COLLECT_PER_SECOND="1000000",
            WELDPULSE_EDGE_COLLECT_BURST="1000000",
        )
        exe = shutil.which("weldpulse", path=str(Path(sys.executable).parent)) or "weldpulse"
        self.log = open(data_dir / "server.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [exe, "up"], env=env, stdout=subprocess.PIPE, stderr=self.log
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if "JSON on" not in line:
            raise RuntimeError(f"server did not start: {line!r}; see {data_dir / 'server.log'}")
        self.ps = psutil.Process(self.process.pid)
        self.max_rss = 0

    def sample_rss(self) -> None:
        self.max_rss = max(self.max_rss, self.ps.memory_info().rss)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def _envoy_call(http: httpx.Client, name: str, params: dict, auth: str) -> Callable[[], None]:
    def call() -> None:
        http.get(f"/v1/{name}", params=params, headers={"Authorization": auth}).raise_for_status()

    return call


def _grpc_call(method: Any, request: Any, auth: str) -> Callable[[], None]:
    def call() -> None:
        method(request, metadata=(("authorization", auth),), timeout=60)

    return call


def time_api(info: dict[str, Any], server: Server, warmup: int, requests: int) -> dict[str, Any]:
    """p50/p95 of every endpoint and window, through Envoy (JSON) and direct gRPC."""
    meta = engines.connect(info["meta_url"])
    site = info["sites"][0]
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=60)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = analytics_pb2_grpc.AnalyticsServiceStub(channel)
    out: dict[str, Any] = {}
    try:
        for name, (rpc, request_cls, extra, ranged) in ENDPOINTS.items():
            for window, (start, end) in windows().items():
                if not ranged and window != "30d":
                    continue
                label = window if ranged else "now"
                params = dict(extra, site_id=site)
                if ranged:
                    params |= {"start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
                if name == "sites":
                    params = {}
                for transport in ("envoy", "grpc"):
                    # A key per series: the 100-a-minute rate limit must not throttle the run.
                    with meta.begin() as conn:
                        key = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
                    auth = f"Bearer {key}"
                    if transport == "envoy":
                        call = _envoy_call(http, name, params, auth)
                    else:
                        call = _grpc_call(getattr(stub, rpc), request_cls(**params), auth)
                    times = time_statement(lambda *_, c=call: c(), "", {}, warmup, requests)
                    out[f"{name}/{label}/{transport}"] = summary(times)
                    server.sample_rss()
    finally:
        http.close()
        channel.close()
        meta.dispose()
    return out


def time_queries(
    info: dict[str, Any], server: Server, warmup: int, requests: int, only: set[str] | None = None
) -> dict[str, Any]:
    """p50/p95 of every query shape (bench/queries.py) and its GET preset through Envoy.

    Per window, one request of each shape and preset in turn, `requests` rounds:
    on a shared machine every series then sees the same load, so the ratios
    (query/GET, compare/without, Berlin/UTC) compare like with like. Presets
    are keyed `get:<endpoint>/<window>`. A shape that does not answer 200 is
    kept as its status and error, so one engine bug or time-out does not cost
    the rest of the run. `only`: these shapes (and their presets), not all.
    """
    shapes = {name: shape for name, shape in SHAPES.items() if not only or name in only}
    meta = engines.connect(info["meta_url"])
    http = httpx.Client(base_url=f"http://127.0.0.1:{server.http_port}", timeout=120)
    site = info["sites"][0]
    out: dict[str, Any] = {}
    with meta.begin() as conn:  # also on --reuse of data loaded before goals existed
        have = {r.name for r in conn.execute(goals.site_goals_stmt([site]))}
        for goal in GOALS:
            if goal["name"] not in have:
                goals.create_goal(conn, site, **goal)

    def auth() -> dict[str, str]:  # a key per series, as in time_api
        with meta.begin() as conn:
            key = accounts.create_api_key(conn, info["project"], ["stats:read"])["key"]
        return {"Authorization": f"Bearer {key}"}

    def post(body: dict, headers: dict) -> Callable[[], None]:
        def call() -> None:
            http.post("/v1/query", json=body, headers=headers).raise_for_status()

        return call

    try:
        for window, (start, end) in windows().items():
            calls: dict[str, Callable[[], None]] = {}
            rows: dict[str, int] = {}
            for name, shape in shapes.items():
                body, headers = shape.body(site, WINDOWS[window]), auth()
                first = http.post("/v1/query", json=body, headers=headers)
                if first.status_code != 200:
                    out[f"{name}/{window}"] = {"status": first.status_code, "error": first.text}
                    print(f"bench: {name}/{window}: {first.status_code} {first.text}", flush=True)
                    continue
                calls[name] = post(body, headers)
                rows[name] = int(first.json()["meta"].get("total_rows", 0))
            for preset in dict.fromkeys(s.preset for s in shapes.values() if s.preset):
                params = dict(ENDPOINTS[preset][2], site_id=site)
                params |= {"start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
                calls[f"get:{preset}"] = _envoy_call(http, preset, params, auth()["Authorization"])
            times: dict[str, list[float]] = {label: [] for label in calls}
            failed: dict[str, httpx.HTTPStatusError] = {}
            for round_ in range(warmup + requests):
                for label, call in calls.items():
                    if label in failed:
                        continue
                    started = time.perf_counter()
                    try:
                        call()
                    except httpx.HTTPStatusError as error:  # e.g. past the time budget under load
                        failed[label] = error
                        print(f"bench: {label}/{window}: {error.response.text}", flush=True)
                        continue
                    if round_ >= warmup:
                        times[label].append((time.perf_counter() - started) * 1000)
                server.sample_rss()
            for label, series in times.items():
                if label in failed:
                    response = failed[label].response
                    out[f"{label}/{window}"] = {
                        "status": response.status_code,
                        "error": response.text,
                    }
                    continue
                extra = {"status": 200, "rows": rows[label]} if label in rows else {}
                out[f"{label}/{window}"] = summary(series) | extra
    finally:
        http.close()
        meta.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--engine", choices=("embedded", "postgres"), default="embedded")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument(
        "--floor-requests",
        type=int,
        help="timed runs of each floor statement (default: --requests)",
    )
    parser.add_argument("--batch", type=int, default=50_000)
    parser.add_argument("--reuse", action="store_true", help="keep the loaded data of a prior run")
    parser.add_argument("--load-only", action="store_true", help="load and roll, time nothing")
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated parts not to time: floor, api, query, funnel, ingestion",
    )
    parser.add_argument("--shapes", default="", help="comma-separated query shapes (default all)")
    parser.add_argument("--label", default="", help="suffix of the result files, e.g. after")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--funnels-only", action="store_true",
        help="with --reuse: time only the funnel shapes (bench/funnel_shapes.py), print JSON",
    )  # fmt: skip
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    data_dir = args.out / f"data-{args.engine}-{args.events}"
    if args.funnels_only:
        return funnels_only(data_dir, args.warmup, args.requests)
    if args.reuse and (data_dir / "load.json").exists():
        info = json.loads((data_dir / "load.json").read_text())
        refresh_live(info)
    else:
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True)
        info = load(args.events, args.engine, data_dir, args.batch)
    print(f"bench: loaded {args.events:,} events: {json.dumps(info)}", flush=True)
    rolled = roll(info)
    print(f"bench: rolled the finished days: {json.dumps(rolled)}", flush=True)
    if args.load_only:
        return 0
    floor = (
        {}
        if "floor" in skip
        else run_floor(info, args.warmup, args.floor_requests or args.requests)
    )
    server = Server(info, data_dir)
    try:
        api = {} if "api" in skip else time_api(info, server, args.warmup, args.requests)
        query = (
            {}
            if "query" in skip
            else time_queries(
                info, server, args.warmup, args.requests, set(filter(None, args.shapes.split(",")))
            )
        )
        funnel = (
            {}
            if "funnel" in skip
            else time_funnels(info, server.http_port, WINDOWS, args.warmup, args.requests, summary)
        )
        ingestion = {} if "ingestion" in skip else probe_ingestion(server.http_port, info)
        server.sample_rss()
    finally:
        server.stop()
    result = {
        "events": args.events, "engine": args.engine, "requests": args.requests,
        "warmup": args.warmup, "machine": machine(), "load": info, "roll": rolled, "floor": floor,
        "api": api, "query": query, "funnel": funnel, "ingestion": ingestion,
        "server_max_rss_mib": round(server.max_rss / 2**20, 1),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }  # fmt: skip
    print(write_reports(result, args.out, args.label))
    return 0


def funnels_only(data_dir: Path, warmup: int, requests: int) -> int:
    """The funnel series alone on a prior run's data: the same harness, in minutes."""
    info = json.loads((data_dir / "load.json").read_text())
    server = Server(info, data_dir)
    try:
        funnel = time_funnels(info, server.http_port, WINDOWS, warmup, requests, summary)
    finally:
        server.stop()
    print(json.dumps(funnel, indent=1))
    return 0


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "python": sys.version.split()[0],
        "platform": sys.platform,
    }


if __name__ == "__main__":
    sys.exit(main())
