from google.api import annotations_pb2 as _annotations_pb2
from weldpulse.v1 import analytics_pb2 as _analytics_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CreateSiteRequest(_message.Message):
    __slots__ = ("domain", "name", "timezone")
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    domain: str
    name: str
    timezone: str
    def __init__(self, domain: _Optional[str] = ..., name: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class UpdateSiteRequest(_message.Message):
    __slots__ = ("site_id", "name", "timezone")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    name: str
    timezone: str
    def __init__(self, site_id: _Optional[str] = ..., name: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class Goal(_message.Message):
    __slots__ = ("id", "site_id", "name", "event_name", "page_path", "created_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    site_id: str
    name: str
    event_name: str
    page_path: str
    created_at: str
    def __init__(self, id: _Optional[str] = ..., site_id: _Optional[str] = ..., name: _Optional[str] = ..., event_name: _Optional[str] = ..., page_path: _Optional[str] = ..., created_at: _Optional[str] = ...) -> None: ...

class CreateGoalRequest(_message.Message):
    __slots__ = ("site_id", "name", "event_name", "page_path")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    EVENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PAGE_PATH_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    name: str
    event_name: str
    page_path: str
    def __init__(self, site_id: _Optional[str] = ..., name: _Optional[str] = ..., event_name: _Optional[str] = ..., page_path: _Optional[str] = ...) -> None: ...

class ListGoalsRequest(_message.Message):
    __slots__ = ("site_id",)
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    def __init__(self, site_id: _Optional[str] = ...) -> None: ...

class ListGoalsResponse(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: _containers.RepeatedCompositeFieldContainer[Goal]
    def __init__(self, data: _Optional[_Iterable[_Union[Goal, _Mapping]]] = ...) -> None: ...

class DeleteGoalRequest(_message.Message):
    __slots__ = ("site_id", "goal_id")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    GOAL_ID_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    goal_id: str
    def __init__(self, site_id: _Optional[str] = ..., goal_id: _Optional[str] = ...) -> None: ...

class DeleteGoalResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
