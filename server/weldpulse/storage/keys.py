"""API-key and site-key formats: generation, checksum validation and hashing.

An API key is `ak_live_` + 22 base62 characters of randomness (131 bits) +
6 base62 characters of CRC32 over the random part, as GitHub tokens do: a
mistyped key fails the checksum without a database lookup, and secret
scanners can recognise the format. Only the SHA-256 of the whole key is
stored.

A site key is `sk_live_` + 24 base62 characters; it is public (it is in every
page's HTML), so it is only checked for its shape before it is looked up.
"""

import hashlib
import hmac
import secrets
import string
import zlib

API_KEY_PREFIX = "ak_live_"
SITE_KEY_PREFIX = "sk_live_"
ALPHABET = string.digits + string.ascii_letters
RANDOM_CHARS = 22  # 62**22 > 2**130
SITE_KEY_CHARS = 24
CHECKSUM_CHARS = 6  # 62**6 > 2**32


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, digit = divmod(number, 62)
        out.append(ALPHABET[digit])
    return "".join(reversed(out))


def _random(chars: int) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), CHECKSUM_CHARS)


def new_api_key() -> str:
    body = _random(RANDOM_CHARS)
    return f"{API_KEY_PREFIX}{body}{_checksum(body)}"


def new_site_key() -> str:
    return f"{SITE_KEY_PREFIX}{_random(SITE_KEY_CHARS)}"


def is_site_key_form(key: str) -> bool:
    """True when `key` has the site-key shape; anything else needs no lookup to be refused."""
    rest = key.removeprefix(SITE_KEY_PREFIX)
    return (
        len(key) == len(SITE_KEY_PREFIX) + SITE_KEY_CHARS
        and key.startswith(SITE_KEY_PREFIX)
        and all(c in ALPHABET for c in rest)
    )


def is_well_formed(key: str) -> bool:
    """True when `key` has the API-key shape and its checksum matches."""
    if not key.startswith(API_KEY_PREFIX):
        return False
    rest = key[len(API_KEY_PREFIX) :]
    if len(rest) != RANDOM_CHARS + CHECKSUM_CHARS or any(c not in ALPHABET for c in rest):
        return False
    body, check = rest[:RANDOM_CHARS], rest[RANDOM_CHARS:]
    return hmac.compare_digest(_checksum(body), check)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[: len(API_KEY_PREFIX) + 4]
