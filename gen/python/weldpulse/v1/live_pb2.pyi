from google.api import annotations_pb2 as _annotations_pb2
from weldpulse.v1 import analytics_pb2 as _analytics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StreamRealtimeRequest(_message.Message):
    __slots__ = ("site_id", "interval_seconds")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    interval_seconds: int
    def __init__(self, site_id: _Optional[str] = ..., interval_seconds: _Optional[int] = ...) -> None: ...

class StreamRealtimeResponse(_message.Message):
    __slots__ = ("t", "current_visitors", "data")
    T_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VISITORS_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    t: str
    current_visitors: int
    data: _containers.RepeatedCompositeFieldContainer[_analytics_pb2.RealtimeRow]
    def __init__(self, t: _Optional[str] = ..., current_visitors: _Optional[int] = ..., data: _Optional[_Iterable[_Union[_analytics_pb2.RealtimeRow, _Mapping]]] = ...) -> None: ...
