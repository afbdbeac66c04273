"""A gRPC client for every weldpulse RPC: API-key metadata, deadlines and retries."""

import importlib
import pkgutil
import random
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import grpc
from google.protobuf import descriptor, json_format, message, message_factory

import weldpulse_client._pb.weldpulse as _generated
from weldpulse_client._pb.weldpulse.v1 import analytics_pb2 as pb
from weldpulse_client._pb.weldpulse.v1 import funnels_pb2 as funnel_pb
from weldpulse_client._pb.weldpulse.v1 import ingest_pb2 as ingest_pb
from weldpulse_client._pb.weldpulse.v1 import live_pb2 as live_pb
from weldpulse_client._pb.weldpulse.v1 import sites_pb2 as sites_pb


@dataclass(frozen=True)
class Retry:
    """Which failures are retried, and how long the client waits before each new attempt.

    UNAVAILABLE (server down or restarting) waits an exponential backoff with
    jitter; RESOURCE_EXHAUSTED (rate limited) waits the server's `retry-after`.
    Every other status is returned to the caller at once.
    """

    attempts: int = 4  # attempts in all, the first one included; 1 disables retries
    backoff: float = 0.25  # seconds before the first retry after UNAVAILABLE, doubled each time
    max_backoff: float = 5.0
    max_retry_after: float = 60.0  # a longer `retry-after` is not waited for: the error is raised


NO_RETRY = Retry(attempts=1)


def rpc_methods() -> dict[str, descriptor.MethodDescriptor]:
    """Every RPC of every service in the generated protos, by "package.Service/Method"."""
    methods = {}
    for info in pkgutil.walk_packages(_generated.__path__, f"{_generated.__name__}."):
        if info.name.endswith("_pb2"):
            module = importlib.import_module(info.name)
            for service in module.DESCRIPTOR.services_by_name.values():
                for method in service.methods:
                    methods[f"{service.full_name}/{method.name}"] = method
    return methods


def retry_after(err: grpc.RpcError) -> float | None:
    """The server's `retry-after` (seconds) on a RESOURCE_EXHAUSTED error, if it sent one."""
    for key, value in cast(grpc.Call, err).trailing_metadata() or ():
        if key == "retry-after":
            try:
                return float(value)
            except ValueError:
                return None
    return None


class Client:
    """Calls the weldpulse API over gRPC with an API key.

    `timeout` is each call's whole budget in seconds, retries and waits
    included (None: no deadline); a method's `timeout` overrides it. Failed
    calls raise `grpc.RpcError`, whose `code()` is the gRPC status
    (`INVALID_ARGUMENT`, `UNAUTHENTICATED`, ...).
    """

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        timeout: float | None = 10.0,
        retry: Retry = Retry(),  # frozen, so one shared default is safe
        credentials: grpc.ChannelCredentials | None = None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        if credentials is None:
            self._channel = grpc.insecure_channel(target)
        else:
            self._channel = grpc.secure_channel(target, credentials)
        self._methods = rpc_methods()
        self._callables: dict[str, grpc.UnaryUnaryMultiCallable] = {}

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(
        self,
        method: str,
        request: message.Message | Mapping[str, Any],
        timeout: float | None = None,
    ) -> Any:
        """Calls one RPC by name ("GetStats" or "weldpulse.v1.AnalyticsService/GetStats").

        `request` is the request message or its JSON form as a dict (field
        names as in the protos). `timeout` overrides the client's for this
        call (None: the client's).
        """
        rpc, desc = self._callable(method)
        if isinstance(request, Mapping):
            request = json_format.ParseDict(
                dict(request), message_factory.GetMessageClass(desc.input_type)()
            )
        budget = self.timeout if timeout is None else timeout
        deadline = None if budget is None else time.monotonic() + budget
        attempt = 1
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return rpc(request, metadata=self._metadata, timeout=remaining)
            except grpc.RpcError as err:
                wait = self._wait_before_retry(err, attempt)
                if wait is None or (deadline is not None and time.monotonic() + wait >= deadline):
                    raise
            time.sleep(wait)
            attempt += 1

    def _wait_before_retry(self, err: grpc.RpcError, attempt: int) -> float | None:
        if attempt >= self.retry.attempts:
            return None
        code = cast(grpc.Call, err).code()
        if code == grpc.StatusCode.UNAVAILABLE:
            ceiling = min(self.retry.max_backoff, self.retry.backoff * 2 ** (attempt - 1))
            return random.uniform(ceiling / 2, ceiling)  # jitter spreads reconnecting clients
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
            after = retry_after(err)
            if after is not None and after <= self.retry.max_retry_after:
                return after
        return None

    def _callable(
        self, method: str
    ) -> tuple[grpc.UnaryUnaryMultiCallable, descriptor.MethodDescriptor]:
        matches = [name for name in self._methods if name == method or name.endswith(f"/{method}")]
        if len(matches) != 1:
            raise ValueError(f"unknown or ambiguous RPC {method!r}: {sorted(self._methods)}")
        desc = self._methods[matches[0]]
        if matches[0] not in self._callables:
            self._callables[matches[0]] = self._channel.unary_unary(
                f"/{matches[0]}",
                request_serializer=lambda m: m.SerializeToString(),
                response_deserializer=message_factory.GetMessageClass(desc.output_type).FromString,
            )
        return self._callables[matches[0]], desc

    # One typed method per RPC of AnalyticsService. Dates and times are the
    # strings the API documents (`2024-01-15`, `2024-01-15T10:00:00Z`); "" and
    # None mean the server's default.

    def get_stats(
        self, start: str, end: str, *, site_id: str = "", timeout: float | None = None
    ) -> pb.StatsRow:
        req = pb.GetStatsRequest(start=start, end=end, site_id=site_id)
        return cast(pb.GetStatsResponse, self.call("GetStats", req, timeout)).data[0]

    def list_pages(
        self, start: str, end: str, *, limit: int | None = None, site_id: str = "",
        timeout: float | None = None,
    ) -> list[pb.PageRow]:  # fmt: skip
        req = pb.ListPagesRequest(start=start, end=end, limit=limit, site_id=site_id)
        return list(cast(pb.ListPagesResponse, self.call("ListPages", req, timeout)).data)

    def list_referrers(
        self, start: str, end: str, *, limit: int | None = None, site_id: str = "",
        timeout: float | None = None,
    ) -> list[pb.ReferrerRow]:  # fmt: skip
        req = pb.ListReferrersRequest(start=start, end=end, limit=limit, site_id=site_id)
        return list(cast(pb.ListReferrersResponse, self.call("ListReferrers", req, timeout)).data)

    def get_timeseries(
        self, start: str, end: str, *, interval: str = "", site_id: str = "", timezone: str = "",
        timeout: float | None = None,
    ) -> list[pb.TimeseriesRow]:  # fmt: skip
        """`timezone`: IANA name of the buckets' wall clock, e.g. "Europe/Berlin"; "" is UTC."""
        req = pb.GetTimeseriesRequest(
            start=start, end=end, interval=interval, site_id=site_id, timezone=timezone
        )
        return list(cast(pb.GetTimeseriesResponse, self.call("GetTimeseries", req, timeout)).data)

    def get_realtime(
        self, *, site_id: str = "", timeout: float | None = None
    ) -> list[pb.RealtimeRow]:
        req = pb.GetRealtimeRequest(site_id=site_id)
        return list(cast(pb.GetRealtimeResponse, self.call("GetRealtime", req, timeout)).data)

    def stream_realtime(
        self, *, site_id: str = "", interval_seconds: int = 0, timeout: float | None = None
    ) -> "LiveStream":
        """Live visitors: an iterator of updates, the first at once, then one per interval.

        `interval_seconds` 1-60 (0: the server's default, 5). The stream has
        no deadline unless `timeout` is given (the client's default does not
        apply) and is not retried: iterate it for as long as you want
        updates, then `close()` it (or use it in a `with` block). A revoked
        key ends it with UNAUTHENTICATED, a server shutting down with
        UNAVAILABLE (open a new one).
        """
        stream = self._channel.unary_stream(
            "/weldpulse.v1.LiveService/StreamRealtime",
            request_serializer=live_pb.StreamRealtimeRequest.SerializeToString,
            response_deserializer=live_pb.StreamRealtimeResponse.FromString,
        )
        req = live_pb.StreamRealtimeRequest(site_id=site_id, interval_seconds=interval_seconds)
        return LiveStream(stream(req, metadata=self._metadata, timeout=timeout))

    def list_events(
        self, start: str, end: str, *, site_id: str = "", timeout: float | None = None
    ) -> list[pb.EventRow]:
        req = pb.ListEventsRequest(start=start, end=end, site_id=site_id)
        return list(cast(pb.ListEventsResponse, self.call("ListEvents", req, timeout)).data)

    def list_geo(
        self, start: str, end: str, *, limit: int | None = None, site_id: str = "",
        timeout: float | None = None,
    ) -> list[pb.GeoRow]:  # fmt: skip
        req = pb.ListGeoRequest(start=start, end=end, limit=limit, site_id=site_id)
        return list(cast(pb.ListGeoResponse, self.call("ListGeo", req, timeout)).data)

    def list_devices(
        self, start: str, end: str, *, limit: int | None = None, site_id: str = "",
        timeout: float | None = None,
    ) -> list[pb.DeviceRow]:  # fmt: skip
        req = pb.ListDevicesRequest(start=start, end=end, limit=limit, site_id=site_id)
        return list(cast(pb.ListDevicesResponse, self.call("ListDevices", req, timeout)).data)

    def list_sites(self, *, timeout: float | None = None) -> list[pb.Site]:
        return list(
            cast(pb.ListSitesResponse, self.call("ListSites", pb.ListSitesRequest(), timeout)).data
        )

    def query(
        self, metrics: Iterable[str], start: str, end: str, *,
        dimensions: Iterable[str] = (), filters: pb.QueryFilter | None = None,
        order_by: Iterable[str] = (), limit: int | None = None, page_token: str = "",
        timezone: str = "", site_id: str = "", compare: str | tuple[str, str] | None = None,
        include_totals: bool = False, timeout: float | None = None,
    ) -> pb.QueryResponse:  # fmt: skip
        """One page of `POST /v1/query` (see query-api in docs/api.md).

        `filters` is built with `weldpulse_client.filters`; `order_by` names
        fields, `-visitors` for descending; `compare` is `"previous_period"`,
        `"year_over_year"` or a custom `(start, end)`.
        """
        req = pb.QueryRequest(
            metrics=metrics,
            date_range=pb.QueryDateRange(start=start, end=end),
            dimensions=dimensions,
            filters=filters,
            order_by=[
                pb.QueryOrderBy(field=f.removeprefix("-"), desc=f.startswith("-")) for f in order_by
            ],
            limit=limit,
            page_token=page_token,
            timezone=timezone,
            site_id=site_id,
            include_totals=include_totals,
        )
        if isinstance(compare, tuple):
            custom = pb.QueryDateRange(start=compare[0], end=compare[1])
            req.compare.CopyFrom(pb.QueryCompare(mode="custom", date_range=custom))
        elif compare:
            req.compare.CopyFrom(pb.QueryCompare(mode=compare))
        return cast(pb.QueryResponse, self.call("Query", req, timeout))

    def query_rows(
        self, metrics: Iterable[str], start: str, end: str, **options: Any
    ) -> Iterator[pb.QueryRow]:
        """Every row of a query, page after page (`options` as for `query`)."""
        token = ""
        while True:
            page = self.query(metrics, start, end, page_token=token, **options)
            yield from page.results
            if not page.meta.HasField("next_page_token"):
                return
            token = page.meta.next_page_token

    # One typed method per RPC of IngestService.

    def collect(
        self, site_key: str, name: str, url: str, *, referrer: str = "",
        props: Mapping[str, Any] | None = None, timeout: float | None = None,
    ) -> None:  # fmt: skip
        """Records one event as the tracker does; public, so the API key is not needed."""
        req = ingest_pb.CollectRequest(site_key=site_key, name=name, url=url, referrer=referrer)
        if props:
            req.props.update(props)
        self.call("Collect", req, timeout)

    def import_(
        self, site_id: str, events: Iterable[ingest_pb.ImportEvent], *, timeout: float | None = None
    ) -> ingest_pb.ImportResponse:
        """Imports up to 1,000 events (scope `events:write`); `rejected` lists invalid ones."""
        req = ingest_pb.ImportRequest(site_id=site_id, events=events)
        return cast(ingest_pb.ImportResponse, self.call("Import", req, timeout))

    # One typed method per RPC of SitesService. Changes need scope `sites:write`.
    def create_site(
        self, domain: str, *, name: str = "", timezone: str = "", timeout: float | None = None
    ) -> pb.Site:
        """Adds a site to the key's project; `name` defaults to the domain, `timezone` to UTC."""
        req = sites_pb.CreateSiteRequest(domain=domain, name=name, timezone=timezone)
        return cast(pb.Site, self.call("CreateSite", req, timeout))

    def update_site(
        self, site_id: str, *, name: str | None = None, timezone: str | None = None,
        timeout: float | None = None,
    ) -> pb.Site:  # fmt: skip
        """Changes what is given of the site's name and time zone; returns the site."""
        req = sites_pb.UpdateSiteRequest(site_id=site_id, name=name, timezone=timezone)
        return cast(pb.Site, self.call("UpdateSite", req, timeout))

    def create_goal(
        self, site_id: str, name: str, *, event_name: str = "", page_path: str = "",
        timeout: float | None = None,
    ) -> sites_pb.Goal:  # fmt: skip
        """Adds a goal: exactly one of `event_name` and `page_path` (`*`, `**` patterns)."""
        req = sites_pb.CreateGoalRequest(
            site_id=site_id, name=name, event_name=event_name, page_path=page_path
        )
        return cast(sites_pb.Goal, self.call("CreateGoal", req, timeout))

    def list_goals(self, site_id: str, *, timeout: float | None = None) -> list[sites_pb.Goal]:
        """The site's goals, oldest first."""
        req = sites_pb.ListGoalsRequest(site_id=site_id)
        return list(cast(sites_pb.ListGoalsResponse, self.call("ListGoals", req, timeout)).data)

    def delete_goal(self, site_id: str, goal_id: str, *, timeout: float | None = None) -> None:
        self.call("DeleteGoal", sites_pb.DeleteGoalRequest(site_id=site_id, goal_id=goal_id),
                  timeout)  # fmt: skip

    # One typed method per RPC of FunnelService. A step is a dict with exactly one
    # of "goal", "event_name", "page_path" (or a funnel_pb.FunnelStep); `window` is
    # "session" or a number of minutes (1-10,080).

    def run_funnel(
        self, site_id: str, start: str, end: str, *,
        steps: Iterable[Mapping[str, str] | funnel_pb.FunnelStep] = (),
        window: str | int = "session", funnel_id: str = "", filters: pb.QueryFilter | None = None,
        timezone: str = "", timeout: float | None = None,
    ) -> funnel_pb.RunFunnelResponse:  # fmt: skip
        """Visitors per step of `steps`, or of the saved funnel `funnel_id` (its window)."""
        req = funnel_pb.RunFunnelRequest(
            site_id=site_id,
            date_range=pb.QueryDateRange(start=start, end=end),
            steps=_steps(steps),
            filters=filters,
            timezone=timezone,
            funnel_id=funnel_id,
        )
        if not funnel_id:
            req.window.CopyFrom(_window(window))
        return cast(funnel_pb.RunFunnelResponse, self.call("RunFunnel", req, timeout))

    def create_funnel(
        self, site_id: str, name: str, steps: Iterable[Mapping[str, str] | funnel_pb.FunnelStep],
        *, window: str | int = "session", timeout: float | None = None,
    ) -> funnel_pb.Funnel:  # fmt: skip
        """Saves a funnel (scope `sites:write`); at most 50 per site."""
        req = funnel_pb.CreateFunnelRequest(
            site_id=site_id, name=name, steps=_steps(steps), window=_window(window)
        )
        return cast(funnel_pb.Funnel, self.call("CreateFunnel", req, timeout))

    def list_funnels(self, site_id: str, *, timeout: float | None = None) -> list[funnel_pb.Funnel]:
        req = funnel_pb.ListFunnelsRequest(site_id=site_id)
        reply = cast(funnel_pb.ListFunnelsResponse, self.call("ListFunnels", req, timeout))
        return list(reply.data)

    def delete_funnel(self, site_id: str, funnel_id: str, *, timeout: float | None = None) -> None:
        """Deletes a saved funnel (scope `sites:write`); NOT_FOUND when there is none."""
        req = funnel_pb.DeleteFunnelRequest(site_id=site_id, funnel_id=funnel_id)
        self.call("DeleteFunnel", req, timeout)


def _steps(
    steps: Iterable[Mapping[str, str] | funnel_pb.FunnelStep],
) -> list[funnel_pb.FunnelStep]:
    return [s if isinstance(s, funnel_pb.FunnelStep) else funnel_pb.FunnelStep(**s) for s in steps]


def _window(window: str | int) -> funnel_pb.FunnelWindow:
    if isinstance(window, int):
        return funnel_pb.FunnelWindow(mode="minutes", minutes=window)
    return funnel_pb.FunnelWindow(mode=window)


class LiveStream:
    """The updates of one live stream (`live_pb.StreamRealtimeResponse`); `close()` ends it."""

    def __init__(self, call: Any) -> None:
        self._call = call

    def __iter__(self) -> Iterator[live_pb.StreamRealtimeResponse]:
        return cast(Iterator[live_pb.StreamRealtimeResponse], self._call)

    def __next__(self) -> live_pb.StreamRealtimeResponse:
        return cast(live_pb.StreamRealtimeResponse, next(self._call))

    def close(self) -> None:
        self._call.cancel()

    def __enter__(self) -> "LiveStream":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
