"""IngestService: the public collect endpoint and the authenticated import."""

import time
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import UTC, datetime
from typing import Any, TypeAlias

import grpc
from google.protobuf import json_format
from sqlalchemy import Engine
from weldpulse import accounts, enrich
from weldpulse.collector import Collector
from weldpulse.errors import BadRequest, Unavailable
from weldpulse.interceptors import principal_var
from weldpulse.observability import DROPPED
from weldpulse.pipeline import Enriched, Hit, Site, check, check_text, enrich_hit
from weldpulse.v1 import ingest_pb2 as pb
from weldpulse.v1 import ingest_pb2_grpc
from weldpulse.visitors import Salts

Ctx: TypeAlias = grpc.ServicerContext
MAX_IMPORT = 1000
COMMIT_TIMEOUT = 30.0
SITE_CACHE_SECONDS = 5.0  # a deactivated site stops collecting within this


def _props(message: Any) -> dict[str, Any]:
    return json_format.MessageToDict(message) if message.ListFields() else {}


def _metadata(context: Ctx, name: str) -> str:
    for key, value in context.invocation_metadata():
        if key == name and isinstance(value, str):
            return value
    return ""


def client_ip(context: Ctx, trusted_hops: int) -> str:
    """The visitor's IP: the X-Forwarded-For entry just before the trusted proxies.

    Envoy appends the address it saw, so with no trusted hop in front of it
    the last entry is the peer itself and nothing a client sends can spoof it.
    """
    hops = [h.strip() for h in _metadata(context, "x-forwarded-for").split(",") if h.strip()]
    if hops:
        return hops[max(0, len(hops) - 1 - trusted_hops)]
    peer = context.peer()  # "ipv4:127.0.0.1:5000" or "ipv6:[::1]:5000"
    address = peer.split(":", 1)[1] if ":" in peer else peer
    return address.rsplit(":", 1)[0].strip("[]")


def _parse_timestamp(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadRequest(f"timestamp: {value!r} is not ISO 8601") from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


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
        self._sites: dict[str, tuple[float, Site | None]] = {}

    def _site_for_key(self, site_key: str) -> Site:
        cached = self._sites.get(site_key)
        if cached is None or time.monotonic() - cached[0] > SITE_CACHE_SECONDS:
            with self.metadata.connect() as conn:
                row = conn.execute(accounts.site_by_key_stmt(site_key)).first()
            site = Site(row.id, row.domain) if row is not None and row.is_active else None
            cached = self._sites[site_key] = (time.monotonic(), site)
        if cached[1] is None:
            raise BadRequest("site_key: unknown or inactive site")
        return cached[1]

    def _store(self, items: list[Enriched]) -> None:
        try:
            self.collector.submit(items).result(timeout=COMMIT_TIMEOUT)
        except (FutureTimeout, Exception) as err:
            DROPPED.labels(reason="unavailable").inc(len(items))
            raise Unavailable("Events could not be stored; nothing was recorded, retry") from err

    def Collect(self, request: pb.CollectRequest, context: Ctx) -> pb.CollectResponse:
        if not request.site_key:
            raise BadRequest("site_key: required")
        check_text("site_key", request.site_key)
        site = self._site_for_key(request.site_key)
        user_agent = _metadata(context, "user-agent")
        hit = Hit(
            site=site,
            ts=datetime.now(UTC).replace(tzinfo=None),
            name=request.name,
            url=request.url,
            referrer=request.referrer,
            user_agent=user_agent,
            ip=client_ip(context, self.trusted_hops),
            props=_props(request.props),
        )
        props = check(hit)
        if enrich.is_bot(user_agent):
            DROPPED.labels(reason="bot").inc()
            context.send_initial_metadata((("x-weldpulse-dropped", "bot"),))
            return pb.CollectResponse()
        country = _metadata(context, self.country_header) if self.country_header else ""
        self._store([enrich_hit(hit, props, self.salts, self.geo, country)])
        return pb.CollectResponse()

    def Import(self, request: pb.ImportRequest, context: Ctx) -> pb.ImportResponse:
        principal = principal_var.get()
        if request.site_id not in principal.site_ids:
            raise BadRequest(f"site_id: no site {request.site_id!r} in this project")
        if not 1 <= len(request.events) <= MAX_IMPORT:
            raise BadRequest(f"events: between 1 and {MAX_IMPORT} per call")
        with self.metadata.connect() as conn:
            row = conn.execute(accounts.site_by_id_stmt(request.site_id)).one()
        site = Site(row.id, row.domain)
        accepted: list[Enriched] = []
        rejected = []
        for index, ev in enumerate(request.events):
            try:
                hit = Hit(
                    site=site,
                    ts=_parse_timestamp(ev.timestamp),
                    name=ev.name,
                    url=ev.url,
                    referrer=ev.referrer,
                    user_agent=ev.user_agent,
                    ip=ev.ip,
                    props=_props(ev.props),
                    opaque_visitor=ev.visitor_id,
                )
                props = check(hit)
                if not ev.ip and not ev.visitor_id:
                    raise BadRequest("ip or visitor_id: one is required")
                if ev.user_agent and enrich.is_bot(ev.user_agent):
                    raise BadRequest("user_agent: a known bot; not stored")
                accepted.append(enrich_hit(hit, props, self.salts, self.geo))
            except BadRequest as err:
                rejected.append(pb.ImportRejection(index=index, error=err.message))
        if rejected:
            DROPPED.labels(reason="rejected").inc(len(rejected))
        if accepted:
            self._store(accepted)
        return pb.ImportResponse(accepted=len(accepted), rejected=rejected)
