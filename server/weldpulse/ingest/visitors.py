"""Visitor ids: keyed hashes of (site, IP, user agent) with a daily salt that is deleted after use.

A salt belongs to one UTC day and lives in the metadata store only while it
can still be needed: the current day's and the previous day's (so a session
crossing midnight keeps its visitor). Salts of older days that a backfill
asks for are made on demand and deleted 24 hours after they were made. Once
a salt is gone, nobody (us included) can link its visitor ids to IPs.
"""

import hashlib
import secrets
import threading
from datetime import UTC, date, datetime, timedelta

import structlog
from sqlalchemy import Delete, Engine, Select, delete, select
from sqlalchemy.exc import IntegrityError
from weldpulse.storage.schema import salts

log = structlog.get_logger(__name__)

SALT_LIFETIME = timedelta(hours=24)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _hash63(key: bytes, *parts: str) -> int:
    digest = hashlib.blake2b("\x1f".join(parts).encode(), key=key, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits a signed BIGINT


def salt_stmt(day: date) -> Select:
    return select(salts.c.salt).where(salts.c.day == day)


def expired_salts_stmt(now: datetime) -> Delete:
    """Salts older than yesterday, once they are 24 h old."""
    yesterday = now.date() - timedelta(days=1)
    return delete(salts).where(salts.c.day < yesterday, salts.c.created_at < now - SALT_LIFETIME)


class Salts:
    """The daily salts, cached in memory and shared through the metadata store."""

    def __init__(self, metadata: Engine) -> None:
        self.engine = metadata
        self._cache: dict[date, bytes] = {}
        self._lock = threading.Lock()

    def for_day(self, day: date) -> bytes:
        with self._lock:
            if day not in self._cache:
                self._cache[day] = self._load_or_create(day)
                self._forget_expired()
            return self._cache[day]

    def _load_or_create(self, day: date) -> bytes:
        with self.engine.begin() as conn:
            existing = conn.execute(salt_stmt(day)).scalar()
            if existing is None:
                try:
                    with conn.begin_nested():
                        existing = secrets.token_hex(32)
                        conn.execute(
                            salts.insert().values(day=day, salt=existing, created_at=_now())
                        )
                except IntegrityError:  # another process made it first
                    existing = conn.execute(salt_stmt(day)).scalar_one()
        return bytes.fromhex(existing)

    def expire(self) -> None:
        """Deletes the salts that can no longer be needed (also done when a new day starts)."""
        with self._lock:
            self._forget_expired()

    def _forget_expired(self) -> None:
        now = _now()
        with self.engine.begin() as conn:
            conn.execute(expired_salts_stmt(now))
            kept = {row.day for row in conn.execute(select(salts.c.day))}
        for day in list(self._cache):
            if day not in kept:
                del self._cache[day]

    def visitor_id(self, site_id: str, ip: str, user_agent: str, day: date) -> int:
        """The id of this visitor under `day`'s salt."""
        return _hash63(self.for_day(day), site_id, ip, user_agent)


class SaltSweeper:
    """Deletes expired salts every `interval` seconds, so an idle server does not keep them.

    Without it a salt would go only when a later day's salt is first made,
    which an idle server never does: the 48-hour promise needs a clock.
    """

    def __init__(self, store: Salts, interval: float) -> None:
        self.store = store
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="salt-sweeper", daemon=True)

    def start(self) -> "SaltSweeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.store.expire()
            except Exception:  # e.g. the store is briefly unreachable: try again next time
                log.warning("could not delete expired salts", exc_info=True)


def supplied_visitor_id(site_id: str, opaque_id: str) -> int:
    """The id of a visitor whose identifier the importer supplied: stable, hashed with the site."""
    return _hash63(site_id.encode(), "import", opaque_id)
