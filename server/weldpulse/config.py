"""Settings read from the environment (WELDPULSE_*), with defaults for a laptop."""

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


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


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    metadata_url: str
    events_url: str
    grpc_port: int
    http_port: int
    host: str = "127.0.0.1"
    geoip_db: str | None = None  # MaxMind-format .mmdb for IP → country/region
    trusted_hops: int = 0  # proxies in front of Envoy whose X-Forwarded-For is trusted
    # A CDN's country header (cf-ipcountry, cloudfront-viewer-country), used
    # without a GeoIP DB. Only set it when a CDN in front overwrites that
    # header on every request (see trusted_hops): otherwise any client chooses
    # its country. Values that are no ISO 3166-1 alpha-2 code store none.
    country_header: str = ""
    edge: EdgeLimits = field(default_factory=EdgeLimits)

    @classmethod
    def from_env(cls) -> "Settings":
        data_dir = Path(os.environ.get("WELDPULSE_DATA_DIR", "./var")).resolve()
        return cls(
            data_dir=data_dir,
            metadata_url=os.environ.get("WELDPULSE_METADATA_URL")
            or f"sqlite:///{data_dir / 'metadata.sqlite3'}",
            events_url=os.environ.get("WELDPULSE_EVENTS_URL")
            or f"duckdb:///{data_dir / 'events.duckdb'}",
            grpc_port=int(os.environ.get("WELDPULSE_GRPC_PORT", "50051")),
            http_port=int(os.environ.get("WELDPULSE_HTTP_PORT", "8080")),
            geoip_db=os.environ.get("WELDPULSE_GEOIP_DB") or None,
            trusted_hops=int(os.environ.get("WELDPULSE_TRUSTED_HOPS", "0")),
            country_header=os.environ.get("WELDPULSE_COUNTRY_HEADER", ""),
            edge=EdgeLimits.from_env(),
        )
