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
        )
