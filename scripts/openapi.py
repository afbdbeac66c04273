"""Generates the OpenAPI 3 document of the public JSON API from the protos' http annotations."""

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import grpc_tools
from google.api import annotations_pb2
from google.protobuf import descriptor_pb2
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
SITE = Path(grpc_tools.__file__).resolve().parent.parent  # googleapis-common-protos
WKT = Path(grpc_tools.__file__).resolve().parent / "_proto"
FDP = descriptor_pb2.FieldDescriptorProto

# Proto3 JSON mapping as Envoy's transcoder prints it: 64-bit integers are strings.
SCALARS: dict[int, dict[str, Any]] = {
    FDP.TYPE_DOUBLE: {"type": "number", "format": "double"},
    FDP.TYPE_FLOAT: {"type": "number", "format": "float"},
    FDP.TYPE_INT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_SINT32: {"type": "integer", "format": "int32"},
    FDP.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    FDP.TYPE_UINT32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    FDP.TYPE_FIXED32: {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1},
    FDP.TYPE_INT64: {"type": "string", "format": "int64"},
    FDP.TYPE_SINT64: {"type": "string", "format": "int64"},
    FDP.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    FDP.TYPE_UINT64: {"type": "string", "format": "uint64"},
    FDP.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    FDP.TYPE_BOOL: {"type": "boolean"},
    FDP.TYPE_STRING: {"type": "string"},
    FDP.TYPE_BYTES: {"type": "string", "format": "byte"},
}
WELL_KNOWN = {
    ".google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    ".google.protobuf.Duration": {"type": "string"},
    ".google.protobuf.Struct": {"type": "object"},
    ".google.protobuf.Value": {},
}
# Envoy rewrites these successes (a Lua filter): 202 Accepted for the tracker's collect.
SUCCESS_STATUS = {"/weldpulse.v1.IngestService/Collect": "202"}
ERROR_CODES = [
    "BAD_REQUEST", "UNAUTHORIZED", "FORBIDDEN", "NOT_FOUND", "PAYLOAD_TOO_LARGE", "RATE_LIMITED",
    "INTERNAL_ERROR", "SERVICE_UNAVAILABLE", "GATEWAY_TIMEOUT", "CANCELLED",
]  # fmt: skip


def descriptor_set() -> descriptor_pb2.FileDescriptorSet:
    protos = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "set.pb"
        args = ["protoc", f"-I{ROOT / 'protos'}", f"-I{SITE}", f"-I{WKT}", "--include_imports",
                "--include_source_info", f"--descriptor_set_out={out}", *protos]  # fmt: skip
        if protoc.main(args) != 0:
            sys.exit("protoc failed")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _comment(text: str) -> str:
    text = re.sub(r"(?m)^\s*buf:lint:ignore .*$", "", text)  # buf's directives, not docs
    return re.sub(r"\s*\n\s*", " ", text.strip())


class Builder:
    """Walks the public files' services and messages into paths and component schemas."""

    def __init__(self, files: descriptor_pb2.FileDescriptorSet) -> None:
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.paths: dict[str, tuple[str, list[int]]] = {}  # message → (file, source path)
        self.enums: dict[str, descriptor_pb2.EnumDescriptorProto] = {}
        self.docs: dict[str, str] = {}
        self.public = [f for f in files.file if f.name.startswith("weldpulse/")]
        for f in files.file:
            for i, msg in enumerate(f.message_type):
                self._index(f, f".{f.package}", msg, [4, i])
            for enum in f.enum_type:
                self.enums[f".{f.package}.{enum.name}"] = enum
        for f in self.public:
            for loc in f.source_code_info.location:
                self.docs.setdefault(f"{f.name}:{list(loc.path)}", _comment(loc.leading_comments))
        self.schemas: dict[str, Any] = {}

    def _index(self, f: Any, scope: str, msg: Any, path: list[int]) -> None:
        name = f"{scope}.{msg.name}"
        self.messages[name] = msg
        self.paths[name] = (f.name, path)
        for i, nested in enumerate(msg.nested_type):
            self._index(f, name, nested, [*path, 3, i])
        for enum in msg.enum_type:
            self.enums[f"{name}.{enum.name}"] = enum

    def doc(self, type_name: str, *field: int) -> str:
        file, path = self.paths[type_name]
        return self.docs.get(f"{file}:{[*path, *field]}", "")

    def field_schema(self, field: Any) -> dict[str, Any]:
        if field.type == FDP.TYPE_MESSAGE:
            msg = self.messages.get(field.type_name)
            if msg is not None and msg.options.map_entry:
                value = self.field_schema(msg.field[1])
                return {"type": "object", "additionalProperties": value}
            schema = WELL_KNOWN.get(field.type_name) or self.ref(field.type_name)
        elif field.type == FDP.TYPE_ENUM:
            schema = {"type": "string", "enum": [v.name for v in self.enums[field.type_name].value]}
        else:
            schema = dict(SCALARS[field.type])
        if field.label == FDP.LABEL_REPEATED and not (
            field.type == FDP.TYPE_MESSAGE and self.messages[field.type_name].options.map_entry
        ):
            return {"type": "array", "items": schema}
        return schema

    def success_content(self, method: Any) -> dict[str, Any]:
        """A stream is Server-Sent Events, one `data:` line of the message's JSON per update."""
        if method.server_streaming:
            return {"text/event-stream": {"schema": {"type": "string", "description": (
                "One `data: <JSON>` line per update; each JSON is a "
                + method.output_type.rsplit(".", 1)[-1] + ".")}}}  # fmt: skip
        return {"application/json": {"schema": self.ref(method.output_type)}}

    def ref(self, type_name: str) -> dict[str, Any]:
        short = type_name.rsplit(".", 1)[-1]
        if short not in self.schemas:
            self.schemas[short] = {}  # placeholder against recursion
            msg = self.messages[type_name]
            properties, required = {}, []
            for i, field in enumerate(msg.field):
                prop = self.field_schema(field)
                text = self.doc(type_name, 2, i)
                if text:
                    prop = {**prop, "description": text} if "$ref" not in prop else prop
                properties[field.name] = prop
                # Envoy prints every non-optional scalar, enum and repeated field.
                scalar = not field.proto3_optional and field.type != FDP.TYPE_MESSAGE
                if scalar or field.label == FDP.LABEL_REPEATED:
                    required.append(field.name)
            schema: dict[str, Any] = {"type": "object", "properties": properties}
            if required:
                schema["required"] = required
            schema["additionalProperties"] = False
            if self.doc(type_name):
                schema["description"] = self.doc(type_name)
            self.schemas[short] = schema
        return {"$ref": f"#/components/schemas/{short}"}

    def operation(
        self, package: str, service: Any, method: Any, rule: Any, path: str, doc: str
    ) -> dict:
        request = self.messages[method.input_type]
        success = SUCCESS_STATUS.get(f"/{package}.{service.name}/{method.name}", "200")
        in_path = set(re.findall(r"{([^}=]+)", path))
        params = []
        for i, field in enumerate(request.field):
            if field.name not in in_path and (rule.body == "*" or field.name == rule.body):
                continue
            if field.type == FDP.TYPE_MESSAGE and field.type_name not in WELL_KNOWN:
                continue  # nested messages are not query parameters here
            params.append(
                {
                    "name": field.name,
                    "in": "path" if field.name in in_path else "query",
                    "required": field.name in in_path,
                    "description": self.doc(method.input_type, 2, i),
                    "schema": self.field_schema(field),
                }
            )
        op: dict[str, Any] = {
            "operationId": method.name,
            "tags": [service.name],
            "summary": doc.split(". ")[0].rstrip("."),
            "description": doc,
            "parameters": params,
            "responses": {
                success: {
                    "description": "OK" if success == "200" else "Accepted",
                    "content": self.success_content(method),
                },
                "default": {
                    "description": "Error: the HTTP status and `code` name what went wrong",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
        if rule.body:
            body_schema = (
                self.ref(method.input_type)
                if rule.body == "*"
                else self.field_schema(next(f for f in request.field if f.name == rule.body))
            )
            if rule.body == "*" and in_path:  # the body is the fields the path does not bind
                short = body_schema["$ref"].rsplit("/", 1)[1]
                body_schema = json.loads(json.dumps(self.schemas[short]))
                for name in in_path:
                    body_schema["properties"].pop(name, None)
                    if name in body_schema.get("required", []):
                        body_schema["required"].remove(name)
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": body_schema}},
            }
        return op

    def document(self) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for f in self.public:
            for si, service in enumerate(f.service):
                for mi, method in enumerate(service.method):
                    rule = method.options.Extensions[annotations_pb2.http]
                    verb = rule.WhichOneof("pattern")
                    if verb is None or verb == "custom":
                        continue
                    path = getattr(rule, verb)
                    doc = self.docs.get(f"{f.name}:{[6, si, 2, mi]}", "")
                    paths.setdefault(re.sub(r"{([^}=]+)=[^}]*}", r"{\1}", path), {})[verb] = (
                        self.operation(f.package, service, method, rule, path, doc)
                    )
        self.schemas["Error"] = {
            "type": "object",
            "properties": {
                "error": {"type": "string", "description": "What went wrong, for humans"},
                "code": {"type": "string", "enum": ERROR_CODES},
            },
            "required": ["error", "code"],
            "additionalProperties": False,
        }
        return {
            "openapi": "3.0.3",
            "info": {
                "title": "weldpulse API",
                "version": "v1",
                "description": "Generated by scripts/openapi.py from protos/ (do not edit).",
            },
            "servers": [{"url": "http://127.0.0.1:8080"}],
            "security": [{"bearerAuth": []}],
            "paths": dict(sorted(paths.items())),
            "components": {
                "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
                "schemas": dict(sorted(self.schemas.items())),
            },
        }


def main(out: Path) -> None:
    """Writes `weldpulse.v1.json` under `out` (default: the repository's gen/openapi/)."""
    out.mkdir(parents=True, exist_ok=True)
    document = Builder(descriptor_set()).document()
    (out / "weldpulse.v1.json").write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "gen" / "openapi")
