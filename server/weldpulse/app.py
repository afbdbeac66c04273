"""Builds the gRPC server: analytics service, interceptors, health and reflection."""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from sqlalchemy import Engine
from weldpulse import enrich
from weldpulse.analytics import AnalyticsServicer
from weldpulse.collector import Collector
from weldpulse.ingestion import IngestServicer
from weldpulse.interceptors import AuthInterceptor, ErrorInterceptor, RateLimitInterceptor
from weldpulse.ratelimit import SlidingLogLimiter
from weldpulse.v1 import analytics_pb2, analytics_pb2_grpc, ingest_pb2, ingest_pb2_grpc
from weldpulse.visitors import Salts

log = logging.getLogger(__name__)
SERVICE_NAME = analytics_pb2.DESCRIPTOR.services_by_name["AnalyticsService"].full_name
INGEST_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


@dataclass(frozen=True)
class IngestOptions:
    geoip_db: str | None = None
    trusted_hops: int = 0
    country_header: str = ""


def build_server(
    metadata: Engine,
    events: Engine,
    port: int = 0,
    host: str = "127.0.0.1",
    limiter: SlidingLogLimiter | None = None,
    workers: int = 16,
    ingest: IngestOptions | None = None,
) -> tuple[grpc.Server, int]:
    """A started server and the port it listens on (`port=0` picks a free one).

    The ingestion writer is a daemon thread: a stopping server first waits
    for in-flight calls, and each of those waits for its commit.
    """
    options = ingest or IngestOptions()
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rpc"),
        interceptors=[
            ErrorInterceptor(),
            AuthInterceptor(metadata),
            RateLimitInterceptor(limiter or SlidingLogLimiter()),
        ],
    )
    analytics_pb2_grpc.add_AnalyticsServiceServicer_to_server(
        AnalyticsServicer(metadata, events), server
    )
    collector = Collector(events)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(
        IngestServicer(
            metadata,
            collector,
            Salts(metadata),
            enrich.GeoIP(options.geoip_db),
            options.trusted_hops,
            options.country_header,
        ),
        server,
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, INGEST_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    server.start()
    for name in (SERVICE_NAME, INGEST_NAME, ""):
        health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gRPC server listening on %s:%d", host, bound)
    return server, bound
