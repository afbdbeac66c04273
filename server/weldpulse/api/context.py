"""Per-call state the interceptors set and the servicers read: the call and its caller."""

import contextvars
from dataclasses import dataclass, field

from weldpulse.storage.accounts import Principal


@dataclass
class Call:
    """One RPC: its request id, and the headers (initial metadata) it will answer with."""

    method: str
    request_id: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    key_id: str | None = None  # the API key's id (never the key), once authenticated


# Set by the interceptors' layers for the duration of one call (api.interceptors).
call_var: contextvars.ContextVar[Call] = contextvars.ContextVar("call")
principal_var: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")
