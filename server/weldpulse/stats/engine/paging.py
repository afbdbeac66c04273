"""Page tokens: the row offset, bound to the query by a hash so a foreign token is refused."""

import base64
import binascii
import hashlib

from weldpulse.errors import BadRequest

MAX_TOKEN = 200


def _mac(fingerprint: bytes, offset: int) -> bytes:
    return hashlib.sha256(fingerprint + offset.to_bytes(8, "big")).digest()[:12]


def token(fingerprint: bytes, offset: int) -> str:
    raw = offset.to_bytes(8, "big") + _mac(fingerprint, offset)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def offset_of(page_token: str, fingerprint: bytes) -> int:
    """0 for no token; the offset a token of this same query carries; else a 400."""
    if not page_token:
        return 0
    bad = BadRequest(
        "Invalid page_token: not a token of this query (use meta.next_page_token of the "
        "previous page, with the same request otherwise)"
    )
    if len(page_token) > MAX_TOKEN:
        raise bad
    try:
        raw = base64.urlsafe_b64decode(page_token + "=" * (-len(page_token) % 4))
    except (binascii.Error, ValueError):
        raise bad from None
    if len(raw) != 20:
        raise bad
    offset = int.from_bytes(raw[:8], "big")
    if raw[8:] != _mac(fingerprint, offset):
        raise bad
    return offset
