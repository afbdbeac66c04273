"""IngestService: the public collect endpoint and the authenticated import."""

import asyncio
import operator
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

import grpc
from cachetools import TTLCache
from google.protobuf import struct_pb2
from sqlalchemy import Engine
from weldpulse.api.context import authorize_site, call_var, principal_var, text_headers
from weldpulse.api.params import iso_instant
from weldpulse.domain import Columns, transposed
from weldpulse.errors import BadRequest, Unavailable
from weldpulse.ingest import enrich
from weldpulse.ingest.collector import Collector, Overloaded, count
from weldpulse.ingest.hits import Enriched, Hit, Site, check, enrich_hit, import_rows
from weldpulse.ingest.visitors import Salts
from weldpulse.observability import DROPPED
from weldpulse.storage import accounts, keys
from weldpulse.v1 import ingest_pb2 as pb
from weldpulse.v1 import ingest_pb2_grpc

Ctx: TypeAlias = grpc.ServicerContext
AioCtx: TypeAlias = grpc.aio.ServicerContext
MAX_IMPORT = 1000
COMMIT_TIMEOUT = 30.0  # read at each call, so tests may shorten it
SITE_CACHE_SECONDS = 5.0  # a deactivated site stops collecting within this
# Both caches are keyed by well-formed site keys only (32 characters), so
# they hold at most about 1 MiB and 100 KiB; misses (unknown keys, which
# anyone can make up) have their own small cache and cannot evict a site.
SITE_CACHE_SIZE = 10_000
MISS_CACHE_SIZE = 1_000
RETRY_AFTER = (("retry-after", "1"),)  # seconds: a full backlog drains at ~10k+ events/s
ECHO_CHARS = 40  # how much of a bad value an error message repeats
ROW_FIELDS = ("timestamp", "name", "url", "referrer", "user_agent", "ip", "visitor_id")
_row = operator.attrgetter(*ROW_FIELDS)


def _props(message: struct_pb2.Struct) -> dict[str, Any]:
    """The props' scalars; objects, lists and nulls become None, which check() refuses by name.

    Not json_format.MessageToDict: it raises ValueError on inf and NaN (which
    native gRPC can send) and recurses into whatever nesting came in.
    """
    return {key: _scalar(value) for key, value in message.fields.items()}


def _scalar(value: struct_pb2.Value) -> Any:
    kind = value.WhichOneof("kind")
    if kind in ("string_value", "number_value", "bool_value"):
        return getattr(value, kind)
    return None


def _headers(context: AioCtx) -> dict[str, str]:
    """The call's text headers, as the call layer read them (grpc rebuilds them at each read)."""
    call = call_var.get(None)
    return call.metadata if call is not None else text_headers(context.invocation_metadata())


def client_ip(headers: dict[str, str], context: AioCtx, trusted_hops: int) -> str:
    """The visitor's IP: the X-Forwarded-For entry just before the trusted proxies.

    Envoy appends the address it saw, so with no trusted hop in front of it
    the last entry is the peer itself and nothing a client sends can spoof it.
    """
    forwarded = headers.get("x-forwarded-for", "")
    hops = [h.strip() for h in forwarded.split(",") if h.strip()]
    if hops:
        return hops[max(0, len(hops) - 1 - trusted_hops)]
    peer = context.peer()  # "ipv4:127.0.0.1:5000" or "ipv6:[::1]:5000"
    address = peer.split(":", 1)[1] if ":" in peer else peer
    return address.rsplit(":", 1)[0].strip("[]")


def _parse_timestamp(value: str) -> datetime:
    try:
        return iso_instant(value)
    except ValueError:
        raise BadRequest(f"timestamp: {value[:ECHO_CHARS]!r} is not ISO 8601") from None
    except OverflowError:
        raise BadRequest(f"timestamp: {value[:ECHO_CHARS]!r} is out of range") from None


def _country(headers: dict[str, str], header: str) -> str:
    """The trusted CDN's country code, if it is an ISO 3166-1 alpha-2 code (not XX, T1, junk)."""
    return enrich.country_code(headers.get(header, "")) if header else ""


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(
        self,
        metadata: Engine,
        collector: Collector,
        salts: Salts,
        geo: enrich.GeoIP,
        trusted_hops: int = 0,
        country_header: str = "",
    ) -> None:
        self.metadata = metadata
        self.collector = collector
        self.salts = salts
        self.geo = geo
        self.trusted_hops = trusted_hops
        self.country_header = country_header.lower()
        # Site key: (site, until when it stands). A plain dict: the loop reads it with one
        # get and no lock (a TTLCache read mutates it); only `_site_for_key` writes, locked.
        self._sites: dict[str, tuple[Site, float]] = {}
        self._misses: TTLCache[str, bool] = TTLCache(MISS_CACHE_SIZE, SITE_CACHE_SECONDS)
        self._cache_lock = threading.Lock()  # cachetools caches are not thread-safe
        self._salted_day: date | None = None  # collects of this day find its salt cached

    def _cached_site(self, site_key: str) -> tuple[Site | None, bool]:
        """The cached site of a well-formed key, and whether the key is a cached miss."""
        if not site_key:
            raise BadRequest("site_key: required")
        if not keys.is_site_key_form(site_key):
            raise BadRequest("site_key: not a site key (sk_live_ and 24 letters or digits)")
        with self._cache_lock:
            return self._known_site(site_key), site_key in self._misses

    def _known_site(self, site_key: str) -> Site | None:
        """The site of a key looked up less than SITE_CACHE_SECONDS ago (a well-formed key)."""
        known = self._sites.get(site_key)
        return known[0] if known is not None and known[1] > time.monotonic() else None

    def _remember(self, site_key: str, site: Site) -> None:
        """Caches a site (under the lock): past SITE_CACHE_SIZE, the expired and then the
        oldest entries go."""
        if len(self._sites) >= SITE_CACHE_SIZE:
            now = time.monotonic()
            self._sites = {k: known for k, known in self._sites.items() if known[1] > now}
            while len(self._sites) >= SITE_CACHE_SIZE:
                del self._sites[next(iter(self._sites))]
        self._sites.pop(site_key, None)
        self._sites[site_key] = (site, time.monotonic() + SITE_CACHE_SECONDS)

    async def _site_on_loop(self, site_key: str) -> Site:
        """The key's site; only a cache miss leaves the event loop (a metadata query)."""
        site, missed = self._cached_site(site_key)
        if site is None and not missed:
            return await asyncio.to_thread(self._site_for_key, site_key)
        if site is None:
            raise BadRequest("site_key: unknown or inactive site")
        return site

    def _site_for_key(self, site_key: str) -> Site:
        site, missed = self._cached_site(site_key)
        if site is None and not missed:
            with self.metadata.connect() as conn:
                row = conn.execute(accounts.site_by_key_stmt(site_key)).first()
            site = Site(row.id, row.domain) if row is not None and row.is_active else None
            with self._cache_lock:
                if site is None:
                    self._misses[site_key] = True
                else:
                    self._remember(site_key, site)
        if site is None:
            raise BadRequest("site_key: unknown or inactive site")
        return site

    def _store(self, items: Columns) -> None:
        """Returns once the events are acknowledged; raises Unavailable only if they never will be.

        After COMMIT_TIMEOUT the events are withdrawn if the writer has not
        taken them yet; if it has, its commit is what happened, so we wait
        for it rather than answer "nothing was recorded" for a write that
        may still succeed (a retry would then store it twice).
        """
        try:
            future = self.collector.submit(items)
        except Overloaded as err:
            DROPPED.labels(reason="overloaded").inc(count(items))
            raise Unavailable(f"{err}; nothing was recorded, retry", RETRY_AFTER) from None
        try:
            future.result(timeout=COMMIT_TIMEOUT)
            return
        except FutureTimeout as timeout:
            error: BaseException = timeout
            if not future.cancel() and self._committed(future):
                return
        except Overloaded as err:  # the log is full: nothing of it was logged
            DROPPED.labels(reason="overloaded").inc(count(items))
            raise Unavailable(f"{err}; nothing was recorded, retry", RETRY_AFTER) from None
        except Exception as err:  # the write failed and was rolled back
            error = err
        DROPPED.labels(reason="unavailable").inc(count(items))
        raise Unavailable("Events could not be stored; nothing was recorded, retry") from error

    async def _acknowledged(self, items: list[Enriched]) -> None:
        """`_store` on the event loop: the appender wakes the loop once per log commit."""
        signal: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            future = self.collector.submit(items, signal)
        except Overloaded as err:
            DROPPED.labels(reason="overloaded").inc(len(items))
            raise Unavailable(f"{err}; nothing was recorded, retry", RETRY_AFTER) from None
        try:
            async with asyncio.timeout(COMMIT_TIMEOUT):
                await signal
        except TimeoutError:
            if future.cancel():  # withdrawn before the appender took it: never stored
                DROPPED.labels(reason="unavailable").inc(len(items))
                raise Unavailable(
                    "Events could not be stored; nothing was recorded, retry"
                ) from None
            await asyncio.wait([asyncio.wrap_future(future)])  # taken: its commit decides
        error = future.exception()
        if error is None:
            return
        DROPPED.labels(reason="overloaded" if isinstance(error, Overloaded) else "unavailable").inc(
            len(items)
        )
        if isinstance(error, Overloaded):  # the log is full: nothing of it was logged
            raise Unavailable(f"{error}; nothing was recorded, retry", RETRY_AFTER) from None
        raise Unavailable("Events could not be stored; nothing was recorded, retry") from error

    @staticmethod
    def _committed(future: "Future[int]") -> bool:
        try:
            future.result()
        except Exception:
            return False
        return True

    async def Collect(self, request: pb.CollectRequest, context: AioCtx) -> pb.CollectResponse:
        """Runs on the event loop (api.interceptors.Gate): ~0.1 ms of CPU, then awaits the log."""
        site = self._known_site(request.site_key) or await self._site_on_loop(request.site_key)
        headers = _headers(context)
        user_agent = headers.get("user-agent", "")
        hit = Hit(
            site=site,
            ts=datetime.now(UTC).replace(tzinfo=None),
            name=request.name,
            url=request.url,
            referrer=request.referrer,
            user_agent=user_agent,
            ip=client_ip(headers, context, self.trusted_hops),
            props=_props(request.props),
        )
        props = check(hit)
        if enrich.is_bot(user_agent):
            DROPPED.labels(reason="bot").inc()
            await context.send_initial_metadata((("x-weldpulse-dropped", "bot"),))
            return pb.CollectResponse()
        country = _country(headers, self.country_header)
        if hit.ts.date() == self._salted_day:
            item = enrich_hit(hit, props, self.salts, self.geo, country)
        else:  # a new day's first hits may load or make its salt: a query, off the loop
            item = await asyncio.to_thread(enrich_hit, hit, props, self.salts, self.geo, country)
            self._salted_day = hit.ts.date()
        await self._acknowledged([item])
        return pb.CollectResponse()

    def Import(self, request: pb.ImportRequest, context: Ctx) -> pb.ImportResponse:
        authorize_site(request.site_id)
        principal = principal_var.get()
        if request.site_id not in principal.site_ids:
            site_id = request.site_id[:ECHO_CHARS]
            raise BadRequest(f"site_id: no site {site_id!r} in this project")
        if not 1 <= len(request.events) <= MAX_IMPORT:
            raise BadRequest(f"events: between 1 and {MAX_IMPORT} per call")
        with self.metadata.connect() as conn:
            row = conn.execute(accounts.site_by_id_stmt(request.site_id)).one()
        site = Site(row.id, row.domain)
        # The rows' fields as columns: attrgetter and zip read and transpose them in C.
        raw = transposed(ROW_FIELDS, map(_row, request.events))
        raw["props"] = [_props(ev.props) if ev.HasField("props") else {} for ev in request.events]
        # Checked and enriched a column at a time, each distinct value once; logged as one record.
        accepted, errors = import_rows(site, raw, self.salts, self.geo, _parse_timestamp)
        rejected = [pb.ImportRejection(index=i, error=errors[i]) for i in sorted(errors)]
        if rejected:
            DROPPED.labels(reason="rejected").inc(len(rejected))
        if accepted["ts"]:
            self._store(accepted)
        return pb.ImportResponse(accepted=len(accepted["ts"]), rejected=rejected)
