"""API errors: each carries the gRPC status that Envoy turns into the contract's HTTP code."""

import grpc


class ApiError(Exception):
    """An error whose message is safe to show to the caller."""

    code = grpc.StatusCode.INTERNAL

    def __init__(self, message: str, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.trailers = trailers


class BadRequest(ApiError):
    """HTTP 400 BAD_REQUEST."""

    code = grpc.StatusCode.INVALID_ARGUMENT


class Unauthorized(ApiError):
    """HTTP 401 UNAUTHORIZED."""

    code = grpc.StatusCode.UNAUTHENTICATED


class Forbidden(ApiError):
    """HTTP 403 FORBIDDEN."""

    code = grpc.StatusCode.PERMISSION_DENIED


class RateLimited(ApiError):
    """HTTP 429 RATE_LIMITED; `retry-after` goes out as a trailer (a header through Envoy)."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class TimedOut(ApiError):
    """HTTP 504 GATEWAY_TIMEOUT: the call ran past its time budget and was cancelled."""

    code = grpc.StatusCode.DEADLINE_EXCEEDED


class Unavailable(ApiError):
    """HTTP 503 SERVICE_UNAVAILABLE: nothing was stored; the caller may retry."""

    code = grpc.StatusCode.UNAVAILABLE


class NotFound(ApiError):
    """HTTP 404 NOT_FOUND: the named thing does not exist (in the caller's project)."""

    code = grpc.StatusCode.NOT_FOUND
