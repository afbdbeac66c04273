"""Settings read from the environment (WELDPULSE_*), with defaults for a laptop."""

import os
from dataclasses import dataclass
from pathlib import Path


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
        )
