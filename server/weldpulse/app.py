"""Builds and runs the gRPC server: services, interceptors, limits, health and graceful shutdown."""

import gc
import os
import signal
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import start_http_server
from sqlalchemy import Engine
from weldpulse.api.analytics import AnalyticsServicer
from weldpulse.api.funnels import FunnelServicer
from weldpulse.api.ingest import IngestServicer
from weldpulse.api.interceptors import (
    AuthLayer,
    CallLayer,
    ConcurrencyLayer,
    ErrorLayer,
    Gate,
    RateLimitLayer,
)
from weldpulse.api.live import Hub, LiveServicer
from weldpulse.api.ratelimit import Limiter, SlidingLogLimiter
from weldpulse.api.redis_limiter import RedisLimiter
from weldpulse.api.serving import Pool, Server
from weldpulse.api.sites import SitesServicer
from weldpulse.config import MIB, IngestOptions, ServerOptions, Settings
from weldpulse.ingest import enrich
from weldpulse.ingest.collector import Collector
from weldpulse.ingest.log import ApplierLease, ApplierLock, IngestLog, SqliteLog
from weldpulse.ingest.nats_log import NatsLog, StoreApplierLock
from weldpulse.ingest.visitors import Salts, SaltSweeper
from weldpulse.observability import configure_logging, configure_structlog
from weldpulse.storage import engines
from weldpulse.v1 import (
    analytics_pb2,
    analytics_pb2_grpc,
    funnels_pb2,
    funnels_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    live_pb2,
    live_pb2_grpc,
    sites_pb2,
    sites_pb2_grpc,
)

log = structlog.get_logger(__name__)
SERVICE_NAME = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
INGEST_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
FUNNEL_NAME = funnels_pb2.DESCRIPTOR.services_by_name["FunnelService"].full_name
LIVE_NAME = live_pb2.DESCRIPTOR.services_by_name["LiveService"].full_name
SITES_NAME = sites_pb2.DESCRIPTOR.services_by_name["SitesService"].full_name


def limiter_for(options: ServerOptions) -> Limiter:
    """Per-key quotas shared through Redis when it is configured, else in this process."""
    if options.redis_url:
        return RedisLimiter(options.redis_url, limit=options.rate_limit)
    return SlidingLogLimiter(limit=options.rate_limit)


def channel_options(options: ServerOptions) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", options.max_message_bytes),
        ("grpc.max_send_message_length", 64 * MIB),
        # Envoy accepts 60 KiB of request headers and forwards the path twice
        # (:path, x-envoy-original-path); gRPC's 16 KiB default would turn a
        # long query string into RESOURCE_EXHAUSTED (a misleading 429).
        ("grpc.max_metadata_size", 256 * 1024),
        # Keepalive enforcement: a client pinging more often than every 10 s
        # without data gets GOAWAY (too_many_pings) after 2 strikes; the
        # server pings idle peers every 60 s and drops the dead ones.
        ("grpc.http2.min_recv_ping_interval_without_data_ms", 10_000),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.keepalive_permit_without_calls", 0),
        ("grpc.keepalive_time_ms", 60_000),
        ("grpc.keepalive_timeout_ms", 20_000),
        ("grpc.max_connection_idle_ms", 15 * 60_000),
    ]


def gate(
    metadata: Engine, limiter: Limiter, options: ServerOptions, pool: ThreadPoolExecutor
) -> Gate:
    """The one interceptor: its layers run in this order, before each call's message."""
    layers = [
        CallLayer(),
        ErrorLayer(),
        AuthLayer(metadata),
        # Quota before concurrency: every keyed answer, a refused one too, carries the
        # quota headers, and a key's stalled calls spend its quota.
        RateLimitLayer(limiter),
        ConcurrencyLayer(options.max_calls_per_key, options.max_keyless_calls),
    ]
    return Gate(layers, options.max_concurrent_rpcs, pool)


def collector_for(events: Engine | None, options: IngestOptions) -> Collector:
    """The durable ingest log, its appender and (if this process owns it) applier.

    Without `events` (an ingest-only process), only the appender.
    """
    log: IngestLog | None = None
    lease: ApplierLease | None = None
    if options.nats_url:
        log = NatsLog(options.nats_url, options.nats_stream)
        # Servers on several machines: the one holding the store's lock applies.
        if events is not None and events.dialect.name == "postgresql":
            lease = StoreApplierLock(events, log.log_id)
    elif options.log_path:
        log = SqliteLog(Path(options.log_path), options.log_max_bytes)
        lease = ApplierLock(Path(options.log_path))
    return Collector(
        events,
        log=log,
        applier_lock=lease,
        ack="applied" if options.ack == "applied" else "durable",
        max_backlog=options.max_backlog,
    )


def build_server(
    metadata: Engine,
    events: Engine | None,
    port: int = 0,
    host: str = "127.0.0.1",
    limiter: Limiter | None = None,
    workers: int | None = None,
    options: ServerOptions | None = None,
    health_servicer: health.HealthServicer | None = None,
    ingest: IngestOptions | None = None,
    extra_handlers: Sequence[grpc.GenericRpcHandler] = (),
    collector: Collector | None = None,
) -> tuple[Server, int]:
    """A started server and the port it listens on (`port=0` picks a free one).

    The ingestion writer is a thread that ends after the server stops: a
    stopping server first waits for in-flight calls, and each of those waits
    for its commit. Without `events`, an ingest-only server: the ingest
    service (appending to the shared log) and health, nothing that reads the store.
    """
    enrichment = ingest or IngestOptions()
    configure_structlog()
    options = options or ServerOptions()
    # grpc.aio: unary calls run in this bounded pool, live streams on the event loop.
    pool = Pool(workers or options.workers)
    server = Server(
        pool,
        interceptors=[gate(metadata, limiter or limiter_for(options), options, pool)],
        options=channel_options(options),
    )
    collector = collector or collector_for(events, enrichment)
    salts = Salts(metadata)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(
            metadata,
            collector,
            salts,
            enrich.GeoIP(enrichment.geoip_db),
            enrichment.trusted_hops,
            enrichment.country_header,
        ),
        server,
    )
    services = [INGEST_NAME]
    if events is not None:
        _add_store_services(server, metadata, events, pool)
        services += [SERVICE_NAME, FUNNEL_NAME, LIVE_NAME, SITES_NAME]
    # Further services (tests add streaming ones); they go through the same interceptors.
    server.add_generic_rpc_handlers(tuple(extra_handlers))
    health_servicer = health_servicer or health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (*services, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    sweeper = SaltSweeper(salts, options.salt_sweep_seconds).start()

    # Once the server has stopped (in-flight calls done), the writer stores what is
    # queued and ends, so it stops rolling days too; the salt sweeper stops with it.
    def close_writer() -> None:
        server.wait_for_termination()
        sweeper.stop()
        collector.close()

    threading.Thread(target=close_writer, name="collector-stop", daemon=True).start()
    for name in (*services, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("grpc server listening", host=host, port=bound)
    return server, bound


def _add_store_services(server: Server, metadata: Engine, events: Engine, pool: Pool) -> None:
    """The services that read the events store: only in the process that owns it."""
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(metadata, events), server
    )
    funnels_pb2_grpc.add_FunnelServiceServicer_to_server(FunnelServicer(metadata, events), server)
    hub = Hub(metadata, events, pool)
    live_pb2_grpc.add_LiveServiceServicer_to_server(LiveServicer(hub), server)
    # A stopping server ends its live streams first (UNAVAILABLE); unary calls get the grace.
    server.before_stop(hub.close)
    sites_pb2_grpc.add_SitesServiceServicer_to_server(SitesServicer(metadata), server)


def shutdown(
    server: grpc.Server, health_servicer: health.HealthServicer, options: ServerOptions
) -> None:
    """Graceful stop: NOT_SERVING at once, optional drain, then in-flight calls get the grace."""
    health_servicer.enter_graceful_shutdown()
    log.info("shutting down", drain_seconds=options.drain_seconds, grace=options.grace_seconds)
    time.sleep(options.drain_seconds)
    server.stop(grace=options.grace_seconds).wait()
    log.info("stopped")


class Running:
    """A gRPC server process with its stores, health and metrics; `stop()` is graceful."""

    def __init__(self, settings: Settings) -> None:
        self.options = options = settings.server
        # Every file the server makes is the owner's alone: DuckDB remakes its .wal
        # after each checkpoint, with the process umask (salts, key hashes, events).
        os.umask(engines.PRIVATE)
        # An ingest-only process never opens the events store (DuckDB allows one process).
        events_url = None if settings.ingest.only else settings.events_url
        self.metadata, self.events = engines.open_stores(
            settings.metadata_url, events_url, settings.duckdb.config()
        )
        self.health = health.HealthServicer()
        self.collector = collector_for(self.events, settings.ingest)
        self.server, self.port = build_server(
            self.metadata,
            self.events,
            settings.grpc_port,
            settings.host,
            options=options,
            health_servicer=self.health,
            ingest=settings.ingest,
            collector=self.collector,
        )
        self.metrics = None
        if options.metrics_port is not None:
            self.metrics, _ = start_http_server(options.metrics_port, addr=settings.host)
            log.info("metrics listening", port=self.metrics.server_port)
        settle_gc()

    def stop(self) -> None:
        shutdown(self.server, self.health, self.options)
        # The writer closes in its own thread once the server has stopped; the process
        # must not exit before it stored what is logged (a daemon thread would just end).
        self.collector.close()
        if self.metrics is not None:
            self.metrics.shutdown()
        self.metadata.dispose()
        if self.events is not None:
            self.events.dispose()


def settle_gc() -> None:
    """Keeps the start-up heap (modules, descriptors, compiled statements) out of collections.

    Under wrk, cyclic collections took 4.8-4.9% of a serving process's CPU,
    3.4-4.1% with this. (Collecting the young generation less often saved
    more, but kept refused calls' cyclic garbage, 900 KB messages in it, for
    longer: tests/test_input_bounds.py.)
    """
    gc.freeze()


def wait_for_signal() -> None:
    """Blocks until SIGINT or SIGTERM."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def main() -> None:
    """`python -m weldpulse.app`: the gRPC server alone, for running several behind one Envoy."""
    configure_logging()
    running = Running(Settings.from_env())
    metrics = f", metrics on 127.0.0.1:{running.metrics.server_port}" if running.metrics else ""
    print(f"weldpulse: gRPC on 127.0.0.1:{running.port}{metrics}", flush=True)
    wait_for_signal()
    running.stop()


if __name__ == "__main__":
    main()
