from weldpulse_client._pb.google.api import annotations_pb2 as _annotations_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CollectRequest(_message.Message):
    __slots__ = ("site_key", "name", "url", "referrer", "props")
    SITE_KEY_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    PROPS_FIELD_NUMBER: _ClassVar[int]
    site_key: str
    name: str
    url: str
    referrer: str
    props: _struct_pb2.Struct
    def __init__(self, site_key: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., referrer: _Optional[str] = ..., props: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class CollectResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ImportRequest(_message.Message):
    __slots__ = ("site_id", "events")
    SITE_ID_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    site_id: str
    events: _containers.RepeatedCompositeFieldContainer[ImportEvent]
    def __init__(self, site_id: _Optional[str] = ..., events: _Optional[_Iterable[_Union[ImportEvent, _Mapping]]] = ...) -> None: ...

class ImportEvent(_message.Message):
    __slots__ = ("timestamp", "name", "url", "referrer", "user_agent", "ip", "visitor_id", "props")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    REFERRER_FIELD_NUMBER: _ClassVar[int]
    USER_AGENT_FIELD_NUMBER: _ClassVar[int]
    IP_FIELD_NUMBER: _ClassVar[int]
    VISITOR_ID_FIELD_NUMBER: _ClassVar[int]
    PROPS_FIELD_NUMBER: _ClassVar[int]
    timestamp: str
    name: str
    url: str
    referrer: str
    user_agent: str
    ip: str
    visitor_id: str
    props: _struct_pb2.Struct
    def __init__(self, timestamp: _Optional[str] = ..., name: _Optional[str] = ..., url: _Optional[str] = ..., referrer: _Optional[str] = ..., user_agent: _Optional[str] = ..., ip: _Optional[str] = ..., visitor_id: _Optional[str] = ..., props: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class ImportResponse(_message.Message):
    __slots__ = ("accepted", "rejected")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    rejected: _containers.RepeatedCompositeFieldContainer[ImportRejection]
    def __init__(self, accepted: _Optional[int] = ..., rejected: _Optional[_Iterable[_Union[ImportRejection, _Mapping]]] = ...) -> None: ...

class ImportRejection(_message.Message):
    __slots__ = ("index", "error")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    index: int
    error: str
    def __init__(self, index: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...
