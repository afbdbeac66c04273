"""Every setting, read from the environment (WELDPULSE_*), with defaults for a laptop.

`Settings` holds where the stores and ports are and four groups: the gRPC
server's limits (`ServerOptions`), ingestion's enrichment (`IngestOptions`),
what Envoy enforces on the public port (`EdgeLimits`) and the embedded
store's memory and threads (`DuckDBOptions`).
"""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


@dataclass(frozen=True)
class ServerOptions:
    """Limits and wiring of one gRPC server process."""

    # Threads running RPCs; as many as may be admitted, so concurrent collects
    # share commits (64 vs 16: 563-572 vs 358-391 collects/s under wrk, 32 connections).
    workers: int = 64
    max_concurrent_rpcs: int = 64  # beyond: RESOURCE_EXHAUSTED at once (HTTP 429)
    # Of those, the most one API key, and all keyless (collect) calls together, may hold:
    # a call counts before its message arrives, so stalled calls cannot take every slot
    # (keyless and one key together leave 8 for the other keys).
    max_calls_per_key: int = 16
    max_keyless_calls: int = 40
    max_message_bytes: int = 4 * MIB  # largest request message accepted
    rate_limit: int = 100  # requests per key per 60 s
    redis_url: str | None = None  # shared rate limits across processes
    metrics_port: int | None = None  # Prometheus /metrics on 127.0.0.1
    drain_seconds: float = 0.0  # NOT_SERVING before refusing calls, for health-checking LBs
    grace_seconds: float = 10.0  # how long in-flight calls may run after SIGTERM
    salt_sweep_seconds: float = 600.0  # expired salts are deleted this often, even when idle

    @classmethod
    def from_env(cls) -> "ServerOptions":
        env = os.environ.get
        metrics = env("WELDPULSE_METRICS_PORT")
        return cls(
            workers=int(env("WELDPULSE_WORKERS", "64")),
            max_concurrent_rpcs=int(env("WELDPULSE_MAX_CONCURRENT_RPCS", "64")),
            max_calls_per_key=int(env("WELDPULSE_MAX_CALLS_PER_KEY", "16")),
            max_keyless_calls=int(env("WELDPULSE_MAX_KEYLESS_CALLS", "40")),
            max_message_bytes=int(env("WELDPULSE_MAX_MESSAGE_BYTES", str(4 * MIB))),
            rate_limit=int(env("WELDPULSE_RATE_LIMIT", "100")),
            redis_url=env("WELDPULSE_REDIS_URL") or None,
            metrics_port=int(metrics) if metrics else None,
            drain_seconds=float(env("WELDPULSE_DRAIN_SECONDS", "0")),
            grace_seconds=float(env("WELDPULSE_SHUTDOWN_GRACE_SECONDS", "10")),
            salt_sweep_seconds=float(env("WELDPULSE_SALT_SWEEP_SECONDS", "600")),
        )


@dataclass(frozen=True)
class DuckDBOptions:
    """The embedded events store's resources (PostgreSQL has its own settings)."""

    # DuckDB's buffers (hash tables, sorts, cached blocks); by default 80% of RAM. Every
    # query shape at 10M events: server RSS 660 MiB with 512MB, 1,153 MiB without (30M, not
    # remeasured, had reached 1,560). A query needing more spills to temp_directory, or
    # fails with a 503 saying so.
    memory_limit: str = "512MB"
    threads: int | None = None  # DuckDB's default: one per core
    temp_directory: str | None = None  # DuckDB's default: beside the file (events.duckdb.tmp)

    def config(self) -> dict[str, str | int]:
        """duckdb.connect's config for these options."""
        out: dict[str, str | int] = {"memory_limit": self.memory_limit}
        if self.threads is not None:
            out["threads"] = self.threads
        if self.temp_directory is not None:
            out["temp_directory"] = self.temp_directory
        return out

    @classmethod
    def from_env(cls) -> "DuckDBOptions":
        env = os.environ.get
        threads = env("WELDPULSE_DUCKDB_THREADS")
        return cls(
            memory_limit=env("WELDPULSE_DUCKDB_MEMORY_LIMIT") or cls.memory_limit,
            threads=int(threads) if threads else None,
            temp_directory=env("WELDPULSE_DUCKDB_TEMP_DIRECTORY") or None,
        )


MAX_INGEST_PROCESSES = 16


@dataclass(frozen=True)
class IngestOptions:
    """How ingestion finds a visitor's address and place, and how it logs and acknowledges."""

    geoip_db: str | None = None  # MaxMind-format .mmdb for IP → country/region/city
    trusted_hops: int = 0  # proxies in front of Envoy whose X-Forwarded-For is trusted
    # A CDN's country header (cf-ipcountry, cloudfront-viewer-country), used
    # without a GeoIP DB. Only set it when a CDN in front overwrites that
    # header on every request (see trusted_hops): otherwise any client chooses
    # its country. Values that are no ISO 3166-1 alpha-2 code store none.
    country_header: str = ""
    # The durable ingest log (docs/operations.md); None: a temporary one (tests).
    log_path: str | None = None
    log_max_bytes: int | None = None  # a cap on the log file: past it, 503 (as on a full disk)
    # "durable": 202 once the log has fsync'd the event (visible ≤ 1 s later);
    # "applied": once the events store has it too (read-your-writes, slower).
    ack: str = "durable"
    max_backlog: int = 1_000_000  # events logged, not yet stored; beyond, 503 + Retry-After
    # NATS JetStream as the log instead of the local file (several ingest servers, one store).
    nats_url: str | None = None
    nats_stream: str = "WELDPULSE_INGEST"
    # `weldpulse up` starts this many ingest-only processes beside the server;
    # Envoy sends them /v1/collect and /v1/import (docs/operations.md).
    processes: int = 0
    # This process only appends collects and imports to the log: it never opens
    # the events store (one process owns it) and serves no other API.
    only: bool = False

    def __post_init__(self) -> None:
        if self.ack not in ("durable", "applied"):
            raise ValueError("WELDPULSE_INGEST_ACK must be durable or applied")
        if not 0 <= self.processes <= MAX_INGEST_PROCESSES:
            raise ValueError(
                f"WELDPULSE_INGEST_PROCESSES must be between 0 and {MAX_INGEST_PROCESSES}"
            )
        if self.only and self.ack == "applied":
            raise ValueError("an ingest-only process cannot ack once applied: it does not apply")

    @classmethod
    def from_env(cls, default_log: Path | None = None) -> "IngestOptions":
        env = os.environ.get
        max_bytes = env("WELDPULSE_INGEST_LOG_MAX_BYTES")
        return cls(
            geoip_db=env("WELDPULSE_GEOIP_DB") or None,
            trusted_hops=int(env("WELDPULSE_TRUSTED_HOPS", "0")),
            country_header=env("WELDPULSE_COUNTRY_HEADER", ""),
            log_path=env("WELDPULSE_INGEST_LOG") or (str(default_log) if default_log else None),
            log_max_bytes=int(max_bytes) if max_bytes else None,
            ack=env("WELDPULSE_INGEST_ACK", "durable"),
            max_backlog=int(env("WELDPULSE_INGEST_MAX_BACKLOG", "1000000")),
            nats_url=env("WELDPULSE_INGEST_NATS_URL") or None,
            nats_stream=env("WELDPULSE_INGEST_NATS_STREAM", "WELDPULSE_INGEST"),
            processes=int(env("WELDPULSE_INGEST_PROCESSES", "0")),
            only=env("WELDPULSE_INGEST_ONLY", "") in ("1", "true"),
        )


@dataclass(frozen=True)
class EdgeLimits:
    """What Envoy enforces on the public port before a request reaches the server.

    Rates are per client address (an IPv6 client's /64), the address Envoy
    trusts after `trusted_hops` proxies; each is a token bucket refilled every
    second, so `*_burst` requests pass at once and `*_per_second` after that.
    """

    collect_per_second: int = 20  # a busy office behind one NAT, each visitor a page a second
    collect_burst: int = 60
    api_per_second: int = 10  # above 6 keys at the server's 100/min per key
    api_burst: int = 100  # a dashboard's first load, every chart at once
    tracked_clients: int = 50_000  # addresses with buckets of their own (LRU), ~400 B each
    headers_timeout: float = 10.0  # seconds to send the request line and headers
    request_timeout: float = 120.0  # seconds to send a whole request: an 8 MiB import at 1 Mbit/s
    idle_timeout: float = 60.0  # seconds without a byte, on a stream or an idle connection
    max_connections: int = 4096  # open client connections; keep `ulimit -n` above it
    max_heap_mib: int = 256  # Envoy's heap: near it stalled streams are cut, new requests 503

    def __post_init__(self) -> None:
        for f in fields(self):
            if not getattr(self, f.name) > 0:
                raise ValueError(f"edge limit {f.name} must be above 0")

    @classmethod
    def from_env(cls) -> "EdgeLimits":
        """`WELDPULSE_EDGE_<FIELD>` overrides a default: WELDPULSE_EDGE_COLLECT_PER_SECOND=50."""
        default = cls()
        values: dict[str, Any] = {}
        for f in fields(cls):
            name = f"WELDPULSE_EDGE_{f.name.upper()}"
            raw = os.environ.get(name)
            if raw:
                kind = type(getattr(default, f.name))
                try:
                    values[f.name] = kind(raw)
                except ValueError:
                    raise ValueError(f"{name} must be a number ({kind.__name__})") from None
        return cls(**values)


def default_log_path(data_dir: Path, events_url: str) -> Path:
    """The ingest log belongs to its store: beside a DuckDB file, else in the data folder."""
    prefix = "duckdb:///"
    if events_url.startswith(prefix) and events_url[len(prefix) :] not in ("", ":memory:"):
        return Path(f"{events_url[len(prefix) :]}.ingest-log")
    return data_dir / "ingest-log.sqlite3"


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    metadata_url: str
    events_url: str
    grpc_port: int
    http_port: int
    host: str = "127.0.0.1"
    server: ServerOptions = field(default_factory=ServerOptions)
    ingest: IngestOptions = field(default_factory=IngestOptions)
    edge: EdgeLimits = field(default_factory=EdgeLimits)
    duckdb: DuckDBOptions = field(default_factory=DuckDBOptions)

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("WELDPULSE_DATA_DIR", "./var")).resolve()
        events_url = (
            os.environ.get("WELDPULSE_EVENTS_URL") or f"duckdb:///{data_dir / 'events.duckdb'}"
        )
        return cls(
            data_dir=data_dir,
            metadata_url=os.environ.get("WELDPULSE_METADATA_URL")
            or f"sqlite:///{data_dir / 'metadata.sqlite3'}",
            events_url=events_url,
            grpc_port=int(os.environ.get("WELDPULSE_GRPC_PORT", "50051")),
            http_port=int(os.environ.get("WELDPULSE_HTTP_PORT", "8080")),
            server=ServerOptions.from_env(),
            ingest=IngestOptions.from_env(default_log_path(data_dir, events_url)),
            edge=EdgeLimits.from_env(),
            duckdb=DuckDBOptions.from_env(),
        )
