"""Structured JSON logs (structlog) and Prometheus metrics shared by every service."""

import logging
import sys
from typing import IO

import structlog
from prometheus_client import Counter, Histogram
from structlog.typing import Processor

REQUESTS = Counter(
    "weldpulse_requests", "RPCs handled, by method and gRPC status code", ["method", "code"]
)
ERRORS = Counter(
    "weldpulse_request_errors", "RPCs that ended in an error status", ["method", "code"]
)
LATENCY = Histogram(
    "weldpulse_request_duration_seconds", "Time from receiving an RPC to its answer", ["method"]
)
# The ingestion service counts what it committed and what it refused or lost.
INGESTED = Counter("weldpulse_ingested_events", "Events committed to the events store")
DROPPED = Counter("weldpulse_dropped_events", "Events not stored, by reason", ["reason"])
RATE_LIMITED = Counter("weldpulse_rate_limited", "Calls refused by the rate limiter")
LIMITER_FALLBACKS = Counter(
    "weldpulse_ratelimit_fallbacks", "Calls limited in-process because Redis was unreachable"
)
CANCELLED_STATEMENTS = Counter(
    "weldpulse_cancelled_statements", "Database statements cancelled because their RPC ended"
)

_SHARED: list[Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure_structlog() -> None:
    """Routes structlog through the standard logging tree (idempotent)."""
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[*_SHARED, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing every record, structlog's or stdlib's, as one JSON object a line."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
            foreign_pre_chain=_SHARED,
        )
    )
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for the whole process."""
    configure_structlog()
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level)
