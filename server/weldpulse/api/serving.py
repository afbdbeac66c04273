"""Serves sync servicers on grpc.aio: a bounded pool runs their calls, the event loop holds streams.

grpc.aio holds an open stream as a coroutine (a few KiB) instead of a
thread, so one process holds hundreds of live streams. Sync servicers run
unchanged in a bounded pool: `bridge` turns each sync handler into an
async one that runs it there with `SyncContext`, the sync
`grpc.ServicerContext` API over the aio context. (grpc.aio's own sync
support lacks `is_active`/`code`, runs `add_callback` callbacks only after
a unary call returns normally, never when its deadline passes, and steps
a sync generator through the pool one message at a time, each in another
thread, which breaks context variables set around it.) `Server` is the
sync `grpc.Server` API over a grpc.aio server on its own event-loop thread.
"""

import asyncio
import inspect
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from typing import Any, TypeVar

import grpc
from grpc import aio

T = TypeVar("T")


class Ended(Exception):
    """Raised in a pool thread that aborts a call which has already ended (deadline, cancel)."""


class Aborted(Exception):
    """Raised by `SyncContext.abort`; the loop sends the status once the pool's work unwound.

    As with grpcio's sync server, the caller gets the status only after the
    handler's own cleanup ran (its access-log line is written first).
    """

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code, self.details = code, details


async def in_pool(
    pool: ThreadPoolExecutor, context: aio.ServicerContext, fn: Callable[..., T], *args: Any
) -> T:
    """`fn(*args)` in `pool`; an abort there becomes the call's status."""
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, partial(fn, *args))
    except Aborted as aborted:
        await context.abort(aborted.code, aborted.details)  # raises grpc.aio's AbortError
        raise


class Pool(ThreadPoolExecutor):
    """The bounded pool of sync calls, and the calls under way (ended when the server stops)."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="rpc")
        self.calls: set[SyncContext] = set()


class SyncContext:
    """The sync ServicerContext API for code in a pool thread; blocking calls go to the loop."""

    def __init__(
        self,
        context: aio.ServicerContext,
        loop: asyncio.AbstractEventLoop,
        pool: ThreadPoolExecutor | None = None,
    ) -> None:
        self._context = context
        self._loop = loop
        self._callbacks: list[Callable[[], None]] = []
        self._ended = False
        self._lock = threading.Lock()
        self._calls = pool.calls if isinstance(pool, Pool) else set()
        self._calls.add(self)
        # Runs when the call's task ends: returned, aborted, cancelled or past its deadline.
        context.add_done_callback(lambda _: self.end())

    def end(self) -> None:
        """Runs the callbacks (once): the call is over, its SQL is cancelled, a Watch ends."""
        with self._lock:
            self._ended = True
            callbacks, self._callbacks = self._callbacks, []
        self._calls.discard(self)
        for callback in callbacks:
            callback()

    def _await(self, coroutine: Awaitable[T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()  # type: ignore[arg-type]

    def add_callback(self, callback: Callable[[], None]) -> bool:
        with self._lock:
            if not self._ended:
                self._callbacks.append(callback)
                return True
        callback()
        return True

    def is_active(self) -> bool:
        return not self._ended and not self._context.done()

    def invocation_metadata(self) -> Any:
        return self._context.invocation_metadata()

    def send_initial_metadata(self, metadata: Any) -> None:
        self._await(self._context.send_initial_metadata(metadata))

    def set_trailing_metadata(self, metadata: Any) -> None:
        self._context.set_trailing_metadata(metadata)

    def abort(self, code: grpc.StatusCode, details: str = "") -> None:
        if not self.is_active():
            raise Ended(details)
        self._context.set_code(code)
        self._context.set_details(details)
        raise Aborted(code, details)

    def abort_with_status(self, status: Any) -> None:
        self._context.set_trailing_metadata(status.trailing_metadata)
        self.abort(status.code, status.details)

    def set_code(self, code: grpc.StatusCode) -> None:
        self._context.set_code(code)

    def set_details(self, details: str) -> None:
        self._context.set_details(details)

    def code(self) -> grpc.StatusCode | None:
        return self._context.code()

    def details(self) -> str:
        return self._context.details()

    def time_remaining(self) -> float | None:
        return self._context.time_remaining()

    def peer(self) -> str:
        return self._context.peer()

    def cancel(self) -> None:
        self._context.set_code(grpc.StatusCode.CANCELLED)


def is_async(handler: grpc.RpcMethodHandler) -> bool:
    fn = _behaviour(handler)
    return inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn)


def _behaviour(handler: grpc.RpcMethodHandler) -> Any:
    return (
        handler.unary_unary or handler.unary_stream or handler.stream_unary or handler.stream_stream
    )


def _requests(context: aio.ServicerContext, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """The request stream for a pool thread: each message read on the loop."""
    while True:
        message = asyncio.run_coroutine_threadsafe(context.read(), loop).result()
        if message is aio.EOF:
            return
        yield message


def bridge(
    handler: grpc.RpcMethodHandler,
    pool: ThreadPoolExecutor,
    slots: AbstractContextManager[Any] | None = None,
) -> grpc.RpcMethodHandler:
    """An async handler running the sync `handler` in `pool`; async handlers are returned as is.

    A streaming sync handler runs in one pool thread from its first to its
    last message (context variables set around it stay valid), each
    message written on the loop before the next is made. `slots` (entered
    and left on the loop) counts the call while it runs.
    """
    if is_async(handler):
        return handler
    fn = _behaviour(handler)
    streaming_in = handler.request_streaming

    async def run(target: Callable[[], T], context: aio.ServicerContext) -> T:
        if slots is None:
            return await in_pool(pool, context, target)
        with slots:
            return await in_pool(pool, context, target)

    def arguments(request: Any, context: aio.ServicerContext) -> tuple[Any, SyncContext]:
        loop = asyncio.get_running_loop()
        given = _requests(context, loop) if streaming_in else request
        return given, SyncContext(context, loop, pool)

    codecs = {
        "request_deserializer": handler.request_deserializer,
        "response_serializer": handler.response_serializer,
    }
    if not handler.response_streaming:

        async def unary(request: Any, context: aio.ServicerContext) -> Any:
            given, sync = arguments(request, context)
            return await run(lambda: fn(given, sync), context)

        make = (
            grpc.stream_unary_rpc_method_handler
            if streaming_in
            else grpc.unary_unary_rpc_method_handler
        )
        return make(unary, **codecs)

    async def stream(request: Any, context: aio.ServicerContext) -> None:
        loop = asyncio.get_running_loop()
        given, sync = arguments(request, context)

        def pump() -> None:
            responses = fn(given, sync)
            try:
                for response in responses:
                    asyncio.run_coroutine_threadsafe(context.write(response), loop).result()
            finally:
                close = getattr(responses, "close", None)
                if close is not None:
                    close()

        await run(pump, context)

    make = (
        grpc.stream_stream_rpc_method_handler
        if streaming_in
        else grpc.unary_stream_rpc_method_handler
    )
    return make(stream, **codecs)


def refusal(
    handler: grpc.RpcMethodHandler, code: grpc.StatusCode, details: str
) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s shape that answers `code` at once, without reading the message."""

    async def refuse(request: Any, context: aio.ServicerContext) -> None:
        await context.abort(code, details)

    make = (
        grpc.stream_stream_rpc_method_handler
        if handler.response_streaming
        else grpc.stream_unary_rpc_method_handler
    )
    return make(refuse, request_deserializer=handler.request_deserializer)


class Server(grpc.Server):
    """grpc.Server's sync API over a grpc.aio server running on its own event-loop thread."""

    def __init__(
        self,
        pool: Pool,
        interceptors: Sequence[aio.ServerInterceptor],
        options: Sequence[tuple[str, Any]],
    ) -> None:
        self.pool = pool
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="grpc-aio", daemon=True)
        self._thread.start()
        self._before_stop: list[Callable[[], Awaitable[None]]] = []
        self._stopping: threading.Event | None = None
        self._terminated = threading.Event()

        async def make() -> aio.Server:
            # Unary calls are bounded by the Gate (streams must not take their slots).
            return aio.server(
                migration_thread_pool=pool, interceptors=interceptors, options=options
            )

        self.aio = self.run(make())

    def run(self, coroutine: Awaitable[T]) -> T:
        """Runs `coroutine` on the server's loop and returns its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()  # type: ignore[arg-type]

    def _on_loop(self, fn: Callable[..., T], *args: Any) -> T:
        async def call() -> T:
            return fn(*args)

        return self.run(call())

    def before_stop(self, hook: Callable[[], Awaitable[None]]) -> None:
        """`hook` runs on the loop when a stop begins, before the grace (ends the live streams)."""
        self._before_stop.append(hook)

    def add_generic_rpc_handlers(self, generic_rpc_handlers: Any) -> None:
        self._on_loop(self.aio.add_generic_rpc_handlers, generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name: str, method_handlers: Any) -> None:
        self._on_loop(self.aio.add_registered_method_handlers, service_name, method_handlers)

    def add_insecure_port(self, address: str) -> int:
        return self._on_loop(self.aio.add_insecure_port, address)

    def add_secure_port(self, address: str, server_credentials: grpc.ServerCredentials) -> int:
        return self._on_loop(self.aio.add_secure_port, address, server_credentials)

    def start(self) -> None:
        self.run(self.aio.start())

    def stop(self, grace: float | None) -> threading.Event:
        if self._stopping is not None:
            return self._stopping
        self._stopping = stopped = threading.Event()

        async def stop() -> None:
            try:
                for hook in self._before_stop:
                    await hook()
                await self.aio.stop(grace)
            finally:
                # Calls grpc cancelled whose cancellation the loop has not seen yet: their
                # callbacks run now, so no pool thread waits forever (a health Watch).
                for call in list(self.pool.calls):
                    call.end()
                self.pool.shutdown(wait=False)
                stopped.set()
                self._terminated.set()
                self.loop.call_soon(self.loop.stop)

        asyncio.run_coroutine_threadsafe(stop(), self.loop)
        return stopped

    def wait_for_termination(self, timeout: float | None = None) -> bool:
        return self._terminated.wait(timeout)
