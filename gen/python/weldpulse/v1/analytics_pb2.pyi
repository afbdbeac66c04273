from google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetStatsRequest(_message.Message):
    __slots__ = ("start", "end", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., site_id: _Optional[str] = ...) -> None: ...

class GetStatsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[StatsRow]
    def __init__(self, data: _Optional[_Iterable[_Union[StatsRow, _Mapping]]] = ...) -> None: ...

class StatsRow(_message.Message):
    __slots__ = ("visitors", "pageviews", "sessions", "avg_duration", "bounce_rate")
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_FIELD_NUMBER: _ClassVar[int]
    BOUNCE_RATE_FIELD_NUMBER: _ClassVar[int]
    visitors: int
    pageviews: int
    sessions: int
    avg_duration: float
    bounce_rate: float
    def __init__(self, visitors: _Optional[int] = ..., pageviews: _Optional[int] = ..., sessions: _Optional[int] = ..., avg_duration: _Optional[float] = ..., bounce_rate: _Optional[float] = ...) -> None: ...

class ListPagesRequest(_message.Message):
    __slots__ = ("start", "end", "limit", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    limit: int
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., limit: _Optional[int] = ..., site_id: _Optional[str] = ...) -> None: ...

class ListPagesResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[PageRow]
    def __init__(self, data: _Optional[_Iterable[_Union[PageRow, _Mapping]]] = ...) -> None: ...

class PageRow(_message.Message):
    __slots__ = ("pathname", "visitors", "pageviews", "avg_duration", "bounce_rate")
    PATHNAME_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    AVG_DURATION_FIELD_NUMBER: _ClassVar[int]
    BOUNCE_RATE_FIELD_NUMBER: _ClassVar[int]
    pathname: str
    visitors: int
    pageviews: int
    avg_duration: float
    bounce_rate: float
    def __init__(self, pathname: _Optional[str] = ..., visitors: _Optional[int] = ..., pageviews: _Optional[int] = ..., avg_duration: _Optional[float] = ..., bounce_rate: _Optional[float] = ...) -> None: ...

class ListReferrersRequest(_message.Message):
    __slots__ = ("start", "end", "limit", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    limit: int
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., limit: _Optional[int] = ..., site_id: _Optional[str] = ...) -> None: ...

class ListReferrersResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[ReferrerRow]
    def __init__(self, data: _Optional[_Iterable[_Union[ReferrerRow, _Mapping]]] = ...) -> None: ...

class ReferrerRow(_message.Message):
    __slots__ = ("referrer_source", "visitors", "pageviews", "bounce_rate")
    REFERRER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    BOUNCE_RATE_FIELD_NUMBER: _ClassVar[int]
    referrer_source: str
    visitors: int
    pageviews: int
    bounce_rate: float
    def __init__(self, referrer_source: _Optional[str] = ..., visitors: _Optional[int] = ..., pageviews: _Optional[int] = ..., bounce_rate: _Optional[float] = ...) -> None: ...

class GetTimeseriesRequest(_message.Message):
    __slots__ = ("start", "end", "interval", "site_id", "timezone")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    interval: str
    site_id: str
    timezone: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., interval: _Optional[str] = ..., site_id: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class GetTimeseriesResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[TimeseriesRow]
    def __init__(self, data: _Optional[_Iterable[_Union[TimeseriesRow, _Mapping]]] = ...) -> None: ...

class TimeseriesRow(_message.Message):
    __slots__ = ("t", "visitors", "pageviews", "sessions")
    T_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    t: str
    visitors: int
    pageviews: int
    sessions: int
    def __init__(self, t: _Optional[str] = ..., visitors: _Optional[int] = ..., pageviews: _Optional[int] = ..., sessions: _Optional[int] = ...) -> None: ...

class GetRealtimeRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class GetRealtimeResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[RealtimeRow]
    def __init__(self, data: _Optional[_Iterable[_Union[RealtimeRow, _Mapping]]] = ...) -> None: ...

class RealtimeRow(_message.Message):
    __slots__ = ("pathname", "country", "device_type", "referrer_source", "current_visitors")
    PATHNAME_FIELD_NUMBER: _ClassVar[int]
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    REFERRER_SOURCE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VISITORS_FIELD_NUMBER: _ClassVar[int]
    pathname: str
    country: str
    device_type: str
    referrer_source: str
    current_visitors: int
    def __init__(self, pathname: _Optional[str] = ..., country: _Optional[str] = ..., device_type: _Optional[str] = ..., referrer_source: _Optional[str] = ..., current_visitors: _Optional[int] = ...) -> None: ...

class ListEventsRequest(_message.Message):
    __slots__ = ("start", "end", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., site_id: _Optional[str] = ...) -> None: ...

class ListEventsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[EventRow]
    def __init__(self, data: _Optional[_Iterable[_Union[EventRow, _Mapping]]] = ...) -> None: ...

class EventRow(_message.Message):
    __slots__ = ("event_name", "total", "unique_visitors")
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    UNIQUE_VISITORS_FIELD_NUMBER: _ClassVar[int]
    event_name: str
    total: int
    unique_visitors: int
    def __init__(self, event_name: _Optional[str] = ..., total: _Optional[int] = ..., unique_visitors: _Optional[int] = ...) -> None: ...

class ListGeoRequest(_message.Message):
    __slots__ = ("start", "end", "limit", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    limit: int
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., limit: _Optional[int] = ..., site_id: _Optional[str] = ...) -> None: ...

class ListGeoResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[GeoRow]
    def __init__(self, data: _Optional[_Iterable[_Union[GeoRow, _Mapping]]] = ...) -> None: ...

class GeoRow(_message.Message):
    __slots__ = ("country", "region", "visitors", "pageviews")
    COUNTRY_FIELD_NUMBER: _ClassVar[int]
    REGION_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    country: str
    region: str
    visitors: int
    pageviews: int
    def __init__(self, country: _Optional[str] = ..., region: _Optional[str] = ..., visitors: _Optional[int] = ..., pageviews: _Optional[int] = ...) -> None: ...

class ListDevicesRequest(_message.Message):
    __slots__ = ("start", "end", "limit", "site_id")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    limit: int
    site_id: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ..., limit: _Optional[int] = ..., site_id: _Optional[str] = ...) -> None: ...

class ListDevicesResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[DeviceRow]
    def __init__(self, data: _Optional[_Iterable[_Union[DeviceRow, _Mapping]]] = ...) -> None: ...

class DeviceRow(_message.Message):
    __slots__ = ("device_type", "browser", "os", "visitors", "pageviews")
    DEVICE_TYPE_FIELD_NUMBER: _ClassVar[int]
    BROWSER_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    PAGEVIEWS_FIELD_NUMBER: _ClassVar[int]
    device_type: str
    browser: str
    os: str
    visitors: int
    pageviews: int
    def __init__(self, device_type: _Optional[str] = ..., browser: _Optional[str] = ..., os: _Optional[str] = ..., visitors: _Optional[int] = ..., pageviews: _Optional[int] = ...) -> None: ...

class ListSitesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListSitesResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[Site]
    def __init__(self, data: _Optional[_Iterable[_Union[Site, _Mapping]]] = ...) -> None: ...

class Site(_message.Message):
    __slots__ = ("id", "domain", "name", "site_key", "is_active", "created_at", "timezone")
    ID_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SITE_KEY_FIELD_NUMBER: _ClassVar[int]
    IS_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    id: str
    domain: str
    name: str
    site_key: str
    is_active: bool
    created_at: str
    timezone: str
    def __init__(self, id: _Optional[str] = ..., domain: _Optional[str] = ..., name: _Optional[str] = ..., site_key: _Optional[str] = ..., is_active: _Optional[bool] = ..., created_at: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class QueryRequest(_message.Message):
    __slots__ = ("site_id", "date_range", "timezone", "metrics", "dimensions", "filters", "order_by", "limit", "page_token", "compare", "include_totals")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    ORDER_BY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COMPARE_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_TOTALS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    date_range: QueryDateRange
    timezone: str
    metrics: _containers.RepeatedScalarFieldContainer[str]
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    filters: QueryFilter
    order_by: _containers.RepeatedCompositeFieldContainer[QueryOrderBy]
    limit: int
    page_token: str
    compare: QueryCompare
    include_totals: bool
    def __init__(self, site_id: _Optional[str] = ..., date_range: _Optional[_Union[QueryDateRange, _Mapping]] = ..., timezone: _Optional[str] = ..., metrics: _Optional[_Iterable[str]] = ..., dimensions: _Optional[_Iterable[str]] = ..., filters: _Optional[_Union[QueryFilter, _Mapping]] = ..., order_by: _Optional[_Iterable[_Union[QueryOrderBy, _Mapping]]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., compare: _Optional[_Union[QueryCompare, _Mapping]] = ..., include_totals: _Optional[bool] = ...) -> None: ...

class QueryDateRange(_message.Message):
    __slots__ = ("start", "end")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    start: str
    end: str
    def __init__(self, start: _Optional[str] = ..., end: _Optional[str] = ...) -> None: ...

class QueryFilter(_message.Message):
    __slots__ = ("dimension", "op", "values", "case_sensitive")
    AND_FIELD_NUMBER: _ClassVar[int]
    OR_FIELD_NUMBER: _ClassVar[int]
    NOT_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    OP_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    CASE_SENSITIVE_FIELD_NUMBER: _ClassVar[int]
    dimension: str
    op: str
    values: _containers.RepeatedScalarFieldContainer[str]
    case_sensitive: bool
    def __init__(self, dimension: _Optional[str] = ..., op: _Optional[str] = ..., values: _Optional[_Iterable[str]] = ..., case_sensitive: _Optional[bool] = ..., **kwargs) -> None: ...

class QueryOrderBy(_message.Message):
    __slots__ = ("field", "desc")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    DESC_FIELD_NUMBER: _ClassVar[int]
    field: str
    desc: bool
    def __init__(self, field: _Optional[str] = ..., desc: _Optional[bool] = ...) -> None: ...

class QueryCompare(_message.Message):
    __slots__ = ("mode", "date_range")
    MODE_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    date_range: QueryDateRange
    def __init__(self, mode: _Optional[str] = ..., date_range: _Optional[_Union[QueryDateRange, _Mapping]] = ...) -> None: ...

class QueryResponse(_message.Message):
    __slots__ = ("results", "totals", "meta")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[QueryRow]
    totals: QueryTotals
    meta: QueryMeta
    def __init__(self, results: _Optional[_Iterable[_Union[QueryRow, _Mapping]]] = ..., totals: _Optional[_Union[QueryTotals, _Mapping]] = ..., meta: _Optional[_Union[QueryMeta, _Mapping]] = ...) -> None: ...

class QueryRow(_message.Message):
    __slots__ = ("dimensions", "metrics", "comparison")
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedScalarFieldContainer[float]
    comparison: QueryComparison
    def __init__(self, dimensions: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[float]] = ..., comparison: _Optional[_Union[QueryComparison, _Mapping]] = ...) -> None: ...

class QueryComparison(_message.Message):
    __slots__ = ("dimensions", "metrics", "change")
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    CHANGE_FIELD_NUMBER: _ClassVar[int]
    dimensions: _containers.RepeatedScalarFieldContainer[str]
    metrics: _containers.RepeatedScalarFieldContainer[float]
    change: _struct_pb2.ListValue
    def __init__(self, dimensions: _Optional[_Iterable[str]] = ..., metrics: _Optional[_Iterable[float]] = ..., change: _Optional[_Union[_struct_pb2.ListValue, _Mapping]] = ...) -> None: ...

class QueryTotals(_message.Message):
    __slots__ = ("metrics", "comparison")
    METRICS_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_FIELD_NUMBER: _ClassVar[int]
    metrics: _containers.RepeatedScalarFieldContainer[float]
    comparison: QueryComparison
    def __init__(self, metrics: _Optional[_Iterable[float]] = ..., comparison: _Optional[_Union[QueryComparison, _Mapping]] = ...) -> None: ...

class QueryMeta(_message.Message):
    __slots__ = ("timezone", "date_range", "comparison_date_range", "total_rows", "next_page_token", "warnings")
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    COMPARISON_DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_ROWS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    timezone: str
    date_range: QueryDateRange
    comparison_date_range: QueryDateRange
    total_rows: int
    next_page_token: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, timezone: _Optional[str] = ..., date_range: _Optional[_Union[QueryDateRange, _Mapping]] = ..., comparison_date_range: _Optional[_Union[QueryDateRange, _Mapping]] = ..., total_rows: _Optional[int] = ..., next_page_token: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...
