"""Server interceptors: error mapping, API-key authentication and rate limiting.

Each one wraps the unary handlers of the analytics service; order in the
server is errors → auth → rate limit → servicer. Per-call state (the caller's
Principal) travels in a contextvar set for the duration of the call.
"""

import contextvars
import hmac
import logging
from collections.abc import Callable
from typing import Any

import grpc
from sqlalchemy import Engine
from weldpulse import accounts, keys
from weldpulse.errors import ApiError, Forbidden, RateLimited, Unauthorized
from weldpulse.ratelimit import SlidingLogLimiter

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/weldpulse.v1."
# Methods anyone may call (the tracker's collect), and the scope the others need.
PUBLIC_METHODS = frozenset({"/weldpulse.v1.IngestService/Collect"})
SCOPES = {"/weldpulse.v1.IngestService/Import": "events:write"}
DEFAULT_SCOPE = "stats:read"
principal_var: contextvars.ContextVar[accounts.Principal] = contextvars.ContextVar("principal")

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


class ErrorInterceptor(_UnaryInterceptor):
    """Turns ApiError into its status, and anything else into a logged, opaque INTERNAL."""

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        try:
            return behavior(request, context)
        except ApiError as err:
            if err.trailers:
                context.set_trailing_metadata(err.trailers)
            context.abort(err.code, err.message)
        except Exception:
            log.exception("unhandled error in %s", type(request).__name__)
            context.abort(grpc.StatusCode.INTERNAL, "Internal server error")


class AuthInterceptor(_UnaryInterceptor):
    """Resolves `authorization: Bearer ak_live_...` to the key's project, or refuses the call."""

    def __init__(self, metadata_engine: Engine) -> None:
        self.engine = metadata_engine

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        principal = self.authenticate(_bearer_token(context), SCOPES.get(method, DEFAULT_SCOPE))
        reset = principal_var.set(principal)
        try:
            return behavior(request, context)
        finally:
            principal_var.reset(reset)

    def authenticate(self, token: str | None, scope: str = DEFAULT_SCOPE) -> accounts.Principal:
        if token is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer ak_live_...'")
        if not keys.is_well_formed(token):
            raise Unauthorized("Invalid API key")
        digest = keys.hash_key(token)
        with self.engine.connect() as conn:
            row = conn.execute(accounts.key_owner_stmt(digest)).first()
            if (
                row is None
                or not hmac.compare_digest(row.key_hash, digest)
                or row.revoked_at is not None
            ):
                raise Unauthorized("Invalid API key")
            if row.plan not in ("pro", "enterprise"):
                raise Forbidden("API access requires a Pro or Enterprise plan")
            scopes = frozenset(row.scopes.split())
            if scope not in scopes:
                raise Forbidden(f"This API key lacks the {scope} scope")
            site_ids = tuple(
                r.id for r in conn.execute(accounts.project_sites_stmt(row.project_id))
            )
        if not site_ids:
            raise Forbidden("No sites configured for the project")
        return accounts.Principal(row.id, row.project_id, row.plan, scopes, site_ids)


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    for name, value in context.invocation_metadata():
        if name == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


class RateLimitInterceptor(_UnaryInterceptor):
    """Admits `limit` calls per key in any `window` seconds; reports the quota as headers."""

    def __init__(self, limiter: SlidingLogLimiter) -> None:
        self.limiter = limiter

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    def around(
        self, method: str, behavior: Behavior, request: Any, context: grpc.ServicerContext
    ) -> Any:
        decision = self.limiter.hit(principal_var.get().key_id)
        quota = (
            ("x-ratelimit-limit", str(decision.limit)),
            ("x-ratelimit-remaining", str(decision.remaining)),
            ("x-ratelimit-reset", str(decision.reset)),
        )
        if not decision.allowed:
            raise RateLimited(
                f"Rate limit exceeded: {decision.limit} requests per {decision.window} seconds; "
                f"retry in {decision.retry_after} s",
                trailers=(("retry-after", str(decision.retry_after)), *quota),
            )
        # Initial metadata: Envoy drops the trailers of a successful unary call.
        context.send_initial_metadata(quota)
        return behavior(request, context)
