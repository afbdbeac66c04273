"""Server interceptor: call context, errors, API keys and limits, all before a call's message.

`Gate` wraps every method but those of the open services (health,
reflection) in the layers call → errors → auth → rate limit → concurrency.
The layers run in a pool thread *before* the request message is read: a
call without a valid key is refused at once even if its message never
comes, so keyless callers cannot hold the server's call slots. An async
unary handler whose layers never block (the public collect: no key to
look up) runs with them on the event loop instead, holding no thread. Unary and
server-streaming methods are served; a client-streaming shape is refused
(fail closed: nothing reaches a servicer without the layers). Per-call
state (the request id, the headers to send, the caller's Principal)
travels in contextvars (api.context) set for the duration of the call.
"""

import asyncio
import contextvars
import hmac
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import grpc
import structlog
from google.protobuf.message import DecodeError
from grpc import aio
from grpc_health.v1.health import SERVICE_NAME as HEALTH_SERVICE
from grpc_reflection.v1alpha.reflection import SERVICE_NAME as REFLECTION_SERVICE
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from weldpulse.api import serving
from weldpulse.api.context import Call, call_var, principal_var, text_headers
from weldpulse.api.ratelimit import Limiter
from weldpulse.errors import ApiError, BadRequest, Forbidden, RateLimited, Unauthorized
from weldpulse.observability import (
    CANCELLED_STATEMENTS,
    ERRORS,
    LATENCY,
    RATE_LIMITED,
    REQUESTS,
)
from weldpulse.storage import accounts, engines, keys

log = structlog.get_logger(__name__)

# Services served without any layer: a load balancer's health checks and reflection.
# Every other service, weldpulse's or not, needs a key unless its method is public.
OPEN_SERVICES = frozenset({HEALTH_SERVICE, REFLECTION_SERVICE})
# Methods anyone may call (the tracker's collect), and the scope the others need.
PUBLIC_METHODS = frozenset({"/weldpulse.v1.IngestService/Collect"})
SCOPES = {
    "/weldpulse.v1.IngestService/Import": "events:write",
    "/weldpulse.v1.FunnelService/CreateFunnel": "sites:write",
    "/weldpulse.v1.FunnelService/DeleteFunnel": "sites:write",
    **{
        f"/weldpulse.v1.SitesService/{m}": "sites:write"
        for m in ("CreateSite", "UpdateSite", "CreateGoal", "DeleteGoal")
    },
}
# Methods whose successful calls log no line (counted in the metrics all the same): a
# collect is a page view, and at thousands a second the access log would be the work.
QUIET_WHEN_OK = PUBLIC_METHODS
# Long-lived streams: not under the per-key cap of calls at once (api.live caps them).
STREAMS = frozenset({"/weldpulse.v1.LiveService/StreamRealtime"})
DEFAULT_SCOPE = "stats:read"
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at precision: one write per key a minute
WARN_EVERY = 10.0  # seconds between two "calls refused" warnings
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class NotServed(ApiError):
    """A method shape the layers cannot put before the request (client streaming)."""

    code = grpc.StatusCode.UNIMPLEMENTED


class Layer:
    """One concern around a gated call; `scope` is entered before the request is read."""

    # True if `scope` never blocks (no I/O), so it may run on the event loop.
    on_loop = False

    def applies_to(self, method: str) -> bool:
        return True

    def scope(self, method: str, context: grpc.ServicerContext) -> AbstractContextManager[None]:
        raise NotImplementedError


class Gate(aio.ServerInterceptor):
    """Puts `layers` around every gated method, or refuses it.

    grpc.aio calls `intercept_service` on its event loop with the call's
    headers, before the message. Sync handlers come back as handlers that
    run in `pool` (api.serving.bridge) and read the message only after the
    layers, so a refused call ends at once and holds nothing. At most
    `max_concurrent_rpcs` of them run at once: beyond, a call is refused at
    once with RESOURCE_EXHAUSTED. Async server-streaming handlers (the live
    stream) run on the loop and hold no thread: the layers run in the pool
    before the message and again when the stream ends, and they do not take
    one of those slots. Async unary handlers whose layers never block (the
    collect) run with their layers on the loop, and do take a slot.
    """

    def __init__(
        self,
        layers: Sequence[Layer],
        max_concurrent_rpcs: int | None = None,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self.layers = tuple(layers)
        self.saturation = _Saturation(max_concurrent_rpcs)
        self.pool = pool or ThreadPoolExecutor(max_workers=8, thread_name_prefix="rpc")
        self._built: dict[str, tuple[Any, Any, Any]] = {}  # method: (handler, served, refused)

    async def intercept_service(self, continuation: Any, handler_call_details: Any) -> Any:
        handler = await continuation(handler_call_details)
        return self.gated(handler, handler_call_details.method)

    def gated(self, handler: Any, method: str) -> Any:
        # No handler: grpc answers UNIMPLEMENTED at once, without a thread or a slot.
        if handler is None:
            return None
        # Built once per method (a collect is ~20 µs cheaper); admitted per call.
        built = self._built.get(method)
        if built is None or built[0] is not handler:
            built = self._built[method] = (handler, *self._build(handler, method))
        _, served, refused = built
        if refused is not None and not self.saturation.admit(method):
            return refused
        return served

    def _build(self, handler: Any, method: str) -> tuple[Any, Any]:
        """The handler serving `method`'s calls, and the one refusing a call past the
        slots (None: the call takes no slot)."""
        if _service(method) in OPEN_SERVICES:
            # No layers, but a sync call holds a pool thread: it takes a slot too.
            if serving.is_async(handler):
                return handler, None
            return self._slotted(handler)
        layers = [layer for layer in self.layers if layer.applies_to(method)]
        kind = {"request_deserializer": _lenient(handler.request_deserializer)}
        kind["response_serializer"] = handler.response_serializer
        if serving.is_async(handler) and handler.unary_stream is not None:
            serve = self._live(layers, method, handler.unary_stream)
            return grpc.stream_stream_rpc_method_handler(serve, **kind), None
        if (
            handler.unary_unary is not None
            and serving.is_async(handler)
            and all(layer.on_loop for layer in layers)
        ):
            serve = self._on_loop(layers, method, handler.unary_unary)
            gated = grpc.stream_unary_rpc_method_handler(serve, **kind)
            return gated, _refusal(gated)
        if handler.request_streaming or serving.is_async(handler):
            # Client streaming (and async unary handlers whose layers block) cannot be put
            # behind the layers.
            gated = grpc.stream_unary_rpc_method_handler(self._refuse(layers, method), **kind)
        elif handler.response_streaming:
            serve = self._stream(layers, method, handler.unary_stream)
            gated = grpc.stream_stream_rpc_method_handler(serve, **kind)
        else:
            serve = self._unary(layers, method, handler.unary_unary)
            gated = grpc.stream_unary_rpc_method_handler(serve, **kind)
        return self._slotted(gated)

    def _slotted(self, gated: Any) -> tuple[Any, Any]:
        """`gated` run in the pool, taking a slot, and its refusal when none is free."""
        return serving.bridge(gated, self.pool, self.saturation), _refusal(gated)

    def _on_loop(self, layers: list[Layer], method: str, inner: Callable[..., Any]) -> Any:
        """An async unary handler with its (non-blocking) layers, all on the event loop.

        No pool thread and no hop between threads per call: the layers see
        the sync context API (an abort becomes the call's status here), the
        handler the aio context, and the call holds one of the Gate's slots.
        """
        pool, saturation = self.pool, self.saturation

        async def serve(requests: Any, context: aio.ServicerContext) -> Any:
            sync = serving.SyncContext(context, asyncio.get_running_loop(), pool)
            with saturation:
                try:
                    return await _nested(layers, 0, method, sync, context, inner)
                except serving.Aborted as aborted:
                    status = aborted.code, aborted.details
                # Outside the except: the abort's exception then chains no traceback that
                # would keep this call's frames (and its message, up to 1 MB) until a GC.
                await context.abort(*status)

        return serve

    def _unary(self, layers: list[Layer], method: str, inner: Callable[..., Any]) -> Any:
        def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with _entered(layers, method, context):
                return inner(_one(requests, method), context)

        return serve

    def _stream(self, layers: list[Layer], method: str, inner: Callable[..., Any]) -> Any:
        def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
            with _entered(layers, method, context):
                yield from inner(_one(requests, method), context)

        return serve

    def _refuse(self, layers: list[Layer], method: str) -> Any:
        def serve(requests: Iterator[Any], context: grpc.ServicerContext) -> Any:
            with _entered(layers, method, context):
                raise NotServed("Client-streaming calls are not served")

        return serve

    def _live(self, layers: list[Layer], method: str, inner: Callable[..., Any]) -> Any:
        pool = self.pool

        async def serve(requests: Any, context: aio.ServicerContext) -> AsyncIterator[Any]:
            loop = asyncio.get_running_loop()
            # The layers' context variables live in `scope`, whichever pool thread runs them.
            scope = contextvars.Context()
            held = _held(layers, method, serving.SyncContext(context, loop, pool))

            def step(fn: Callable[..., Any], *args: Any) -> Awaitable[Any]:
                return serving.in_pool(pool, context, scope.run, fn, *args)

            call, principal = await step(next, held)
            call_var.set(call)  # this call's task has its own context: no reset needed
            principal_var.set(principal)
            try:
                request = await _first(requests, method)
                updates = inner(request, context)
                first = await anext(updates)
                # Headers only now: a stream refused before its first message (bad
                # parameter, too many streams) is then an error status alone, which
                # Envoy turns into the contract's JSON error rather than a 200.
                await context.send_initial_metadata(
                    (*call.headers, ("x-request-id", call.request_id))
                )
                yield first
                async for message in updates:
                    yield message
            except (asyncio.CancelledError, GeneratorExit):
                await step(held.close)  # the client left: the layers end and log it
                raise
            except Exception as err:
                await step(held.throw, err)  # the error layer answers it
                raise
            else:
                await step(next, held, None)

        return serve


def _refusal(gated: Any) -> Any:
    return serving.refusal(
        gated, grpc.StatusCode.RESOURCE_EXHAUSTED, "Concurrent RPC limit exceeded!"
    )


def _held(
    layers: list[Layer], method: str, context: Any
) -> Generator[tuple[Call, accounts.Principal | None]]:
    with _entered(layers, method, context):
        yield call_var.get(), principal_var.get(None)


async def _first(requests: Any, method: str) -> Any:
    async for request in requests:
        return _decoded(request)
    raise NotServed(f"{method} requires exactly one request message")


async def _nested(
    layers: list[Layer],
    index: int,
    method: str,
    sync: serving.SyncContext,
    context: aio.ServicerContext,
    inner: Callable[..., Any],
) -> Any:
    """`inner` inside the layers' scopes from `index` on, as nested `with` statements (what
    `_entered` does with an ExitStack and a generator: ~5-10 µs more a call)."""
    if index == len(layers):
        return await inner(await _read_one(context, method), context)
    with layers[index].scope(method, sync):
        return await _nested(layers, index + 1, method, sync, context, inner)


async def _read_one(context: aio.ServicerContext, method: str) -> Any:
    """The call's request message, read from the call itself: starting and finalizing grpc's
    request iterator (an async generator) cost a no-op call ~0.05 ms more (0.35 vs 0.30)."""
    request = await context.read()
    if request is aio.EOF:
        raise NotServed(f"{method} requires exactly one request message")
    return _decoded(request)


def _decoded(request: Any) -> Any:
    if isinstance(request, _Undecodable):
        raise BadRequest(
            "request: not valid protobuf, or nested too deeply (props: at most about 30 levels)"
        )
    return request


def _service(method: str) -> str:
    return method.strip("/").partition("/")[0]


@contextmanager
def _entered(layers: list[Layer], method: str, context: grpc.ServicerContext) -> Iterator[None]:
    with ExitStack() as stack:
        for layer in layers:
            stack.enter_context(layer.scope(method, context))
        yield


@dataclass(frozen=True)
class _Undecodable:
    """A request message protobuf could not decode, handed on so the layers refuse it as a 400.

    Envoy transcodes JSON nested up to ~100 levels, but protobuf's parser
    stops at 100 message levels (~33 JSON levels of `props`), and grpcio
    answers a deserializer's exception as INTERNAL (a 500). So do bytes that
    are not valid protobuf, which anyone can send to the native port.
    """

    error: str


def _lenient(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def lenient(data: bytes) -> Any:
        try:
            return deserialize(data)
        except DecodeError as err:
            return _Undecodable(str(err))

    return lenient


def _one(requests: Iterator[Any], method: str) -> Any:
    for request in requests:
        return _decoded(request)
    raise NotServed(f"{method} requires exactly one request message")  # as grpcio says


class _Saturation:
    """Bounds the gated sync calls running at once, and logs a warning when it refuses calls.

    Used on the event loop only: `admit` when a call arrives, then entered
    while it runs.
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.active = 0
        self.refused = 0
        self.warned_at = 0.0

    def __enter__(self) -> None:
        self.active += 1

    def __exit__(self, *exc: object) -> None:
        self.active -= 1

    def admit(self, method: str) -> bool:
        if self.limit is None or self.active < self.limit:
            return True
        self.refused += 1
        now = time.monotonic()
        if now - self.warned_at >= WARN_EVERY:
            refused, self.refused, self.warned_at = self.refused, 0, now
            log.warning(
                "concurrent call limit reached: calls refused",
                limit=self.limit,
                refused=refused,
                method=method,
            )
        return False


class CallLayer(Layer):
    """Request id, one JSON access-log line (none for a successful collect) and metrics per
    call; cancels its SQL when it ends.

    The request id is Envoy's `x-request-id` (or a new one for direct gRPC
    calls); it is bound to every log line of the call and sent back as the
    `x-request-id` response header, so a user can quote it.
    """

    on_loop = True

    @contextmanager
    def scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        metadata = text_headers(context.invocation_metadata())
        given = metadata.get("x-request-id")
        request_id = given if given and _REQUEST_ID.match(given) else uuid.uuid4().hex
        call = Call(method, request_id, metadata=metadata)
        call_token = call_var.set(call)
        guard = engines.StatementGuard()
        guard_token = engines.current_guard.set(guard)
        # gRPC runs callbacks when the call terminates: finished, cancelled or past its deadline.
        context.add_callback(guard.end)
        started = time.perf_counter()
        # As structlog's bound_contextvars, without reading every context variable first.
        bound = structlog.contextvars.bind_contextvars(request_id=request_id, method=method)
        try:
            yield
        finally:
            try:
                _log_call(call, guard, context, time.perf_counter() - started)
            finally:
                structlog.contextvars.reset_contextvars(**bound)
                engines.current_guard.reset(guard_token)
                call_var.reset(call_token)


def _log_call(
    call: Call, guard: engines.StatementGuard, context: grpc.ServicerContext, elapsed: float
) -> None:
    code = _status(context)
    requests, latency = _series(call.method, code)
    requests.inc()
    latency.observe(elapsed)
    if code != "OK":
        ERRORS.labels(call.method, code).inc()
    if guard.cancelled:
        CANCELLED_STATEMENTS.inc(guard.cancelled)
    if code == "OK" and call.method in QUIET_WHEN_OK:
        return
    log.info(
        "rpc",
        code=code,
        duration_ms=round(elapsed * 1000, 2),
        key_id=call.key_id,
        cancelled_statements=guard.cancelled,
    )


@lru_cache(maxsize=1024)  # the served methods times the status codes: unknown methods get no call
def _series(method: str, code: str) -> tuple[Any, Any]:
    """The call's request counter and latency histogram (`labels` takes a lock and checks each
    label: ~4 µs a call)."""
    return REQUESTS.labels(method, code), LATENCY.labels(method)


def _status(context: grpc.ServicerContext) -> str:
    code = context.code()  # set by abort(); None for a normal return
    if not context.is_active() and code is None:
        return "CANCELLED"
    return code.name if code is not None else "OK"


class ErrorLayer(Layer):
    """Turns ApiError into its status, and anything else into a logged, opaque INTERNAL."""

    on_loop = True

    @contextmanager
    def scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        trailers: tuple[tuple[str, str], ...] = (("x-request-id", call_var.get().request_id),)
        try:
            yield
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
            log.exception("unhandled error")
            context.abort(grpc.StatusCode.INTERNAL, "Internal server error")


class AuthLayer(Layer):
    """Resolves `authorization: Bearer ak_live_...` to the key's project, or refuses the call.

    Every call reads the key from the store (no cache), so a revocation or an
    expiry takes effect on the very next request, on every server process.
    """

    def __init__(self, metadata_engine: Engine) -> None:
        self.engine = metadata_engine

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    @contextmanager
    def scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        principal = self.authenticate(_bearer_token(context), SCOPES.get(method, DEFAULT_SCOPE))
        call_var.get().key_id = principal.key_id
        reset = principal_var.set(principal)
        try:
            yield
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
            sites = accounts.project_sites_stmt(row.project_id, only=row.site_id)
            site_ids = tuple(r.id for r in conn.execute(sites))
            if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
                conn.execute(accounts.touch_api_key_stmt(row.id, now))
                conn.commit()
        # A project's first site is made over the API: creating sites needs none.
        if not site_ids and scope != "sites:write":
            raise Forbidden("No sites configured for the project")
        return accounts.Principal(row.id, row.project_id, row.plan, scopes, site_ids, row.site_id)


def _bearer_token(context: grpc.ServicerContext) -> str | None:
    value = call_var.get().metadata.get("authorization")  # read by the call layer
    if value is not None:
        scheme, _, token = value.strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return None


class ConcurrencyLayer(Layer):
    """Bounds the calls in progress of one API key, and of all keyless (public) calls.

    A call counts from before its message is read until it ends, so calls
    that never send their message count too: neither one key nor keyless
    callers can hold all of the Gate's `max_concurrent_rpcs` slots. Live
    streams are capped by api.live instead.
    """

    on_loop = True

    def applies_to(self, method: str) -> bool:
        return method not in STREAMS

    def __init__(self, per_key: int, keyless: int) -> None:
        self.per_key = per_key
        self.keyless = keyless
        self._running: Counter[str] = Counter()
        self._lock = threading.Lock()

    @contextmanager
    def scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
        principal = principal_var.get(None)
        holder, limit = (
            ("", self.keyless) if principal is None else (principal.key_id, self.per_key)
        )
        with self._lock:
            if self._running[holder] >= limit:
                whose = "keyless calls" if principal is None else "calls with this API key"
                raise RateLimited(
                    f"Too many concurrent {whose}: at most {limit} at once; retry shortly",
                    trailers=(("retry-after", "1"),),
                )
            self._running[holder] += 1
        try:
            yield
        finally:
            with self._lock:
                self._running[holder] -= 1
                if not self._running[holder]:
                    del self._running[holder]


class RateLimitLayer(Layer):
    """Admits `limit` calls per key in any `window` seconds; reports the quota as headers."""

    def __init__(self, limiter: Limiter) -> None:
        self.limiter = limiter

    def applies_to(self, method: str) -> bool:
        return method not in PUBLIC_METHODS

    @contextmanager
    def scope(self, method: str, context: grpc.ServicerContext) -> Iterator[None]:
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
        # (A live stream sends them with its first update: Gate._live.)
        if method not in STREAMS:
            context.send_initial_metadata((*call.headers, ("x-request-id", call.request_id)))
        yield
