from weldpulse_client._pb.google.api import annotations_pb2 as _annotations_pb2
from weldpulse_client._pb.weldpulse.v1 import analytics_pb2 as _analytics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FunnelStep(_message.Message):
    __slots__ = ("goal", "event_name", "page_path")
    GOAL_FIELD_NUMBER: _ClassVar[int]
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    goal: str
    event_name: str
    page_path: str
    def __init__(self, goal: _Optional[str] = ..., event_name: _Optional[str] = ..., page_path: _Optional[str] = ...) -> None: ...

class FunnelWindow(_message.Message):
    __slots__ = ("mode", "minutes")
    MODE_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    mode: str
    minutes: int
    def __init__(self, mode: _Optional[str] = ..., minutes: _Optional[int] = ...) -> None: ...

class RunFunnelRequest(_message.Message):
    __slots__ = ("site_id", "date_range", "timezone", "steps", "window", "filters", "funnel_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    FILTERS_FIELD_NUMBER: _ClassVar[int]
    FUNNEL_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    date_range: _analytics_pb2.QueryDateRange
    timezone: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    window: FunnelWindow
    filters: _analytics_pb2.QueryFilter
    funnel_id: str
    def __init__(self, site_id: _Optional[str] = ..., date_range: _Optional[_Union[_analytics_pb2.QueryDateRange, _Mapping]] = ..., timezone: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., window: _Optional[_Union[FunnelWindow, _Mapping]] = ..., filters: _Optional[_Union[_analytics_pb2.QueryFilter, _Mapping]] = ..., funnel_id: _Optional[str] = ...) -> None: ...

class FunnelStepResult(_message.Message):
    __slots__ = ("label", "visitors", "conversion_rate", "step_conversion_rate", "dropoff")
    LABEL_FIELD_NUMBER: _ClassVar[int]
    VISITORS_FIELD_NUMBER: _ClassVar[int]
    CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    STEP_CONVERSION_RATE_FIELD_NUMBER: _ClassVar[int]
    DROPOFF_FIELD_NUMBER: _ClassVar[int]
    label: str
    visitors: int
    conversion_rate: float
    step_conversion_rate: float
    dropoff: int
    def __init__(self, label: _Optional[str] = ..., visitors: _Optional[int] = ..., conversion_rate: _Optional[float] = ..., step_conversion_rate: _Optional[float] = ..., dropoff: _Optional[int] = ...) -> None: ...

class FunnelMeta(_message.Message):
    __slots__ = ("timezone", "date_range")
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    DATE_RANGE_FIELD_NUMBER: _ClassVar[int]
    timezone: str
    date_range: _analytics_pb2.QueryDateRange
    def __init__(self, timezone: _Optional[str] = ..., date_range: _Optional[_Union[_analytics_pb2.QueryDateRange, _Mapping]] = ...) -> None: ...

class RunFunnelResponse(_message.Message):
    __slots__ = ("steps", "meta")
    STEPS_FIELD_NUMBER: _ClassVar[int]
    META_FIELD_NUMBER: _ClassVar[int]
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStepResult]
    meta: FunnelMeta
    def __init__(self, steps: _Optional[_Iterable[_Union[FunnelStepResult, _Mapping]]] = ..., meta: _Optional[_Union[FunnelMeta, _Mapping]] = ...) -> None: ...

class CreateFunnelRequest(_message.Message):
    __slots__ = ("site_id", "name", "steps", "window")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    name: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    window: FunnelWindow
    def __init__(self, site_id: _Optional[str] = ..., name: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., window: _Optional[_Union[FunnelWindow, _Mapping]] = ...) -> None: ...

class Funnel(_message.Message):
    __slots__ = ("id", "site_id", "name", "steps", "window", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    site_id: str
    name: str
    steps: _containers.RepeatedCompositeFieldContainer[FunnelStep]
    window: FunnelWindow
    created_at: str
    def __init__(self, id: _Optional[str] = ..., site_id: _Optional[str] = ..., name: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[FunnelStep, _Mapping]]] = ..., window: _Optional[_Union[FunnelWindow, _Mapping]] = ..., created_at: _Optional[str] = ...) -> None: ...

class ListFunnelsRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class ListFunnelsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[Funnel]
    def __init__(self, data: _Optional[_Iterable[_Union[Funnel, _Mapping]]] = ...) -> None: ...

class DeleteFunnelRequest(_message.Message):
    __slots__ = ("site_id", "funnel_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    FUNNEL_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    funnel_id: str
    def __init__(self, site_id: _Optional[str] = ..., funnel_id: _Optional[str] = ...) -> None: ...

class DeleteFunnelResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
