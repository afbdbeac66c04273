"""Server interceptors: call context (request id, logs, metrics), errors, API keys, rate limits.

Each one wraps the unary handlers of weldpulse services; order in the server
is call → errors → auth → rate limit → servicer. Per-call state (the
request id, the headers to send, the caller's Principal) travels in
contextvars set for the duration of the call.
"""

import contextvars
import hmac
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import structlog
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from weldpulse import accounts, db, keys
from weldpulse.errors import ApiError, Forbidden, RateLimited, Unauthorized
from weldpulse.observability import (
    CANCELLED_STATEMENTS,
    ERRORS,
    LATENCY,
    RATE_LIMITED,
    REQUESTS,
)
from weldpulse.ratelimit import Limiter

log = structlog.get_logger(__name__)

SERVICE_PREFIX = "/weldpulse.v1."
# Methods anyone may call (the tracker's collect), and the scope the others need.
PUBLIC_METHODS = frozenset({"/weldpulse.v1.IngestService/Collect"})
SCOPES = {"/weldpulse.v1.IngestService/Import": "events:write"}
DEFAULT_SCOPE = "stats:read"
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at precision: one write per key a minute
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

principal_var: contextvars.ContextVar[accounts.Principal] = contextvars.ContextVar("principal")


@dataclass
class Call:
    """One RPC: its request id, and the headers (initial metadata) it will answer with."""

    method: str
    request_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    key_id: str | None = None  # the API key's id (never the key), once authenticated


call_var: contextvars.ContextVar[Call] = contextvars.ContextVar("call")

Behavior = Callable[[Any, grpc.ServicerContext], Any]


class _UnaryInterceptor(grpc.ServerInterceptor):
    """Wraps the unary-unary handlers of weldpulse services in `self.around`."""

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        raise NotImplementedError

    def applies_to(self, method: str) -> bool:
        return True

    def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = continuation(handler_call_details)
        method = handler_call_details.method
        if (
            handler is None
            or handler.unary_unary is None
            or not method.startswith(SERVICE_PREFIX)
            or not self.applies_to(method)
        ):
            return handler
        behavior = handler.unary_unary

        def wrapped(request: Any, context: grpc.ServicerContext) -> Any:
            return self.around(method, behavior, request, context)

        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _metadata(context: grpc.ServicerContext, name: str) -> str | None:
    for key, value in context.invocation_metadata():
        if key == name and isinstance(value, str):
            return value
    return None


class CallInterceptor(_UnaryInterceptor):
    """Request id, one JSON access-log line and metrics per call; cancels its SQL when it ends.

    The request id is Envoy's `x-request-id` (or a new one for direct gRPC
    calls); it is bound to every log line of the call and sent back as the
    `x-request-id` response header, so a user can quote it.
    """

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        given = _metadata(context, "x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        call = Call(method, request_id)
        call_token = call_var.set(call)
        guard = db.StatementGuard()
        guard_token = db.current_guard.set(guard)
        # gRPC runs callbacks when the call terminates: finished, cancelled or past its deadline.
        context.add_callback(guard.end)
        started = time.perf_counter()
        try:
            with structlog.contextvars.bound_contextvars(request_id=request_id, method=method):
                try:
                    return behavior(request, context)
                finally:
                    elapsed = time.perf_counter() - started
                    code = _status(context)
                    REQUESTS.labels(method, code).inc()
                    LATENCY.labels(method).observe(elapsed)
                    if code != "OK":
                        ERRORS.labels(method, code).inc()
                    if guard.cancelled:
                        CANCELLED_STATEMENTS.inc(guard.cancelled)
                    log.info(
                        "rpc",
                        code=code,
                        duration_ms=round(elapsed * 1000, 2),
                        key_id=call.key_id,
                        cancelled_statements=guard.cancelled,
                    )
        finally:
            db.current_guard.reset(guard_token)
            call_var.reset(call_token)


def _status(context: grpc.ServicerContext) -> str:
    code = context.code()  # set by abort(); None for a normal return
    if not context.is_active() and code is None:
        return "CANCELLED"
    return code.name if code is not None else "OK"


class ErrorInterceptor(_UnaryInterceptor):
    """Turns ApiError into its status, and anything else into a logged, opaque INTERNAL."""

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        trailers: tuple[tuple[str, str], ...] = (("x-request-id", call_var.get().request_id),)
        try:
            return behavior(request, context)
        except ApiError as err:
            context.set_trailing_metadata((*err.trailers, *trailers))
            context.abort(err.code, err.message)
        except Exception as err:
            if not context.is_active():
                # The caller is gone (deadline, disconnect) and its statement was cancelled.
                log.info("call ended before its answer", error=type(err).__name__)
                context.abort(grpc.StatusCode.CANCELLED, "Call cancelled")
            context.set_trailing_metadata(trailers)
            if isinstance(err, OperationalError):
                # The database is unreachable or refused the connection: worth retrying later.
                log.warning("database unavailable", error=str(err.orig))
                context.abort(
                    grpc.StatusCode.UNAVAILABLE, "Database unavailable, try again shortly"
                )
            log.exception("unhandled error", request_type=type(request).__name__)
            context.abort(grpc.StatusCode.INTERNAL, "Internal server error")


class AuthInterceptor(_UnaryInterceptor):
    """Resolves `authorization: Bearer ak_live_...` to the key's project, or refuses the call.

    Every call reads the key from the store (no cache), so a revocation or an
    expiry takes effect on the very next request, on every server process.
    """

    def __init__(self, metadata_engine: Engine) -> None:
        self.engine = metadata_engine

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        principal = self.authenticate(_bearer_token(context), SCOPES.get(method, DEFAULT_SCOPE))
        call_var.get().key_id = principal.key_id
        reset = principal_var.set(principal)
        try:
            return behavior(request, context)
        finally:
            principal_var.reset(reset)

    def authenticate(self, token: str | None, scope: str = DEFAULT_SCOPE) -> accounts.Principal:
        if token is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer ak_live_...'")
        # The checksum rejects malformed and mistyped keys without touching the store.
        if not keys.is_well_formed(token):
            raise Unauthorized("Invalid API key")
        digest = keys.hash_key(token)
        now = datetime.now(UTC).replace(tzinfo=None)
        with self.engine.connect() as conn:
            row = conn.execute(accounts.key_owner_stmt(digest)).first()
            if (
                row is None
                or not hmac.compare_digest(row.key_hash, digest)
                or row.revoked_at is not None
            ):
                raise Unauthorized("Invalid API key")
            if row.expires_at is not None and row.expires_at <= now:
                raise Unauthorized("API key expired")
            if row.plan not in ("pro", "enterprise"):
                raise Forbidden("API access requires a Pro or Enterprise plan")
            scopes = frozenset(row.scopes.split())
            if scope not in scopes:
                raise Forbidden(f"This API key lacks the {scope} scope")
            site_ids = tuple(
                r.id for r in conn.execute(accounts.project_sites_stmt(row.project_id))
            )
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                conn.execute(accounts.touch_api_key_stmt(row.id, now))
                conn.commit()
        if not site_ids:
            raise Forbidden("No sites configured for the project")
        return accounts.Principal(row.id, row.project_id, row.plan, scopes, site_ids)


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    value = _metadata(context, "authorization")
    if value is not None:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


class RateLimitInterceptor(_UnaryInterceptor):
    """Admits `limit` calls per key in any `window` seconds; reports the quota as headers."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        call = call_var.get()
        decision = self.limiter.hit(principal_var.get().key_id)
        quota = (
            ("x-ratelimit-limit", str(decision.limit)),
            ("x-ratelimit-remaining", str(decision.remaining)),
            ("x-ratelimit-reset", str(decision.reset)),
        )
        if not decision.allowed:
            RATE_LIMITED.inc()
            raise RateLimited(
                f"Rate limit exceeded: {decision.limit} requests per {decision.window} "
                f"seconds; retry in {decision.retry_after} s",
                trailers=(("retry-after", str(decision.retry_after)), *quota),
            )
        call.headers.extend(quota)
        # Initial metadata: Envoy drops the trailers of a successful unary call.
        context.send_initial_metadata((*call.headers, ("x-request-id", call.request_id)))
        return behavior(request, context)
