"""The OpenAPI 3.1 document of the HTTP/JSON API, generated from the route table the shim serves.

Because the document and the routes come from the same descriptors, the document cannot drift
from what the shim accepts: every binding is an operation, path variables and the query
parameters the transcoder accepts are its parameters, and schemas describe the proto3 JSON the
shim writes (lowerCamelCase names, enums by name, 64-bit integers as strings, null for unset
messages, well-known types in their JSON forms). Descriptions are the proto comments.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor
from google.rpc import status_pb2

from broker.rest.descriptors import SCALAR_WELL_KNOWN_TYPES, is_map, map_value, plain_message
from broker.rest.forwarding import NDJSON
from broker.rest.routing import Binding, RouteTable
from broker.rest.templates import Variable

Schema = dict[str, Any]

_TYPE = FieldDescriptor
_SCALARS: Mapping[int, Schema] = {
    _TYPE.TYPE_DOUBLE: {"type": "number", "format": "double"},
    _TYPE.TYPE_FLOAT: {"type": "number", "format": "float"},
    _TYPE.TYPE_INT32: {"type": "integer", "format": "int32"},
    _TYPE.TYPE_SINT32: {"type": "integer", "format": "int32"},
    _TYPE.TYPE_SFIXED32: {"type": "integer", "format": "int32"},
    _TYPE.TYPE_UINT32: {"type": "integer", "format": "uint32"},
    _TYPE.TYPE_FIXED32: {"type": "integer", "format": "uint32"},
    # The proto3 JSON mapping writes 64-bit integers as strings: JavaScript numbers cannot hold them.
    _TYPE.TYPE_INT64: {"type": "string", "format": "int64"},
    _TYPE.TYPE_SINT64: {"type": "string", "format": "int64"},
    _TYPE.TYPE_SFIXED64: {"type": "string", "format": "int64"},
    _TYPE.TYPE_UINT64: {"type": "string", "format": "uint64"},
    _TYPE.TYPE_FIXED64: {"type": "string", "format": "uint64"},
    _TYPE.TYPE_BOOL: {"type": "boolean"},
    _TYPE.TYPE_STRING: {"type": "string"},
    _TYPE.TYPE_BYTES: {"type": "string", "contentEncoding": "base64"},
}
_WELL_KNOWN: Mapping[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?s$"},
    "google.protobuf.FieldMask": {
        "type": "string",
        "description": "Comma-separated lowerCamelCase field paths.",
    },
    "google.protobuf.Struct": {"type": "object"},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array"},
    "google.protobuf.Any": {
        "type": "object",
        "properties": {"@type": {"type": "string"}},
        "required": ["@type"],
    },
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.BytesValue": {"type": "string", "contentEncoding": "base64"},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "uint32"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.StringValue": {"type": "string"},
}
_FIRST_SENTENCE = re.compile(r"(?<=\.)\s")
_SECURITY_SCHEME = "bearerAuth"


def openapi_document(
    routes: RouteTable, comments: Mapping[str, str], *, title: str = "Brokkr API", version: str = "v1"
) -> dict[str, Any]:
    """The whole document for every binding in `routes`, described with `comments` by full name."""
    schemas = _Schemas(comments)
    paths: dict[str, dict[str, Any]] = {}
    operations_per_method: dict[str, int] = {}
    services: dict[str, str] = {}
    for binding in routes.bindings:
        service = binding.method.containing_service
        services[service.name] = comments.get(service.full_name, "")
        count = operations_per_method[binding.method.full_name] = (
            operations_per_method.get(binding.method.full_name, 0) + 1
        )
        operation = _operation(binding, schemas, suffix="" if count == 1 else str(count))
        paths.setdefault(_openapi_path(binding), {})[binding.verb.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "tags": [{"name": name, "description": text} for name, text in sorted(services.items())],
        "paths": paths,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                _SECURITY_SCHEME: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "A Brokkr key (PAK): `Authorization: Bearer brokkr_<short>_<long>`.",
                }
            },
        },
        "security": [{_SECURITY_SCHEME: []}],
    }


def _openapi_path(binding: Binding) -> str:
    template = binding.template
    path = "/" + "/".join(
        f"{{{segment.name}}}" if isinstance(segment, Variable) else segment for segment in template.segments
    )
    return f"{path}:{template.verb}" if template.verb else path


def _operation(binding: Binding, schemas: _Schemas, *, suffix: str) -> dict[str, Any]:
    method = binding.method
    description = schemas.comments.get(method.full_name, "")
    operation: dict[str, Any] = {
        "operationId": f"{method.containing_service.name}_{method.name}{suffix}",
        "tags": [method.containing_service.name],
        "summary": _FIRST_SENTENCE.split(description, maxsplit=1)[0],
        "description": description,
        "parameters": _path_parameters(binding, schemas) + _query_parameters(binding, schemas),
        "responses": {
            "200": _success(binding, schemas),
            "default": {
                "description": "The call failed; the body is its google.rpc.Status.",
                "content": {"application/json": {"schema": schemas.message(status_pb2.Status.DESCRIPTOR)}},
            },
        },
    }
    if binding.body:
        operation["requestBody"] = {
            "content": {"application/json": {"schema": _request_body(binding, schemas)}}
        }
    return operation


def _path_parameters(binding: Binding, schemas: _Schemas) -> list[dict[str, Any]]:
    parameters = []
    for variable in binding.template.variables:
        message: Descriptor = binding.method.input_type
        for name in variable.field_path:
            field = message.fields_by_name[name]
            message = field.message_type
        parameters.append(
            {
                "name": variable.name,
                "in": "path",
                "required": True,
                "description": schemas.comments.get(field.full_name, ""),
                "schema": schemas.value(field),
            }
        )
    return parameters


def _query_parameters(binding: Binding, schemas: _Schemas) -> list[dict[str, Any]]:
    """One parameter per field a query parameter can set, by dotted lowerCamelCase path."""
    if binding.body == "*":
        return []
    bound = {variable.name for variable in binding.template.variables}
    parameters: list[dict[str, Any]] = []

    def walk(message: Descriptor, proto_prefix: str, json_prefix: str, seen: frozenset[str]) -> None:
        for field in message.fields:
            proto_path = proto_prefix + field.name
            if proto_path in bound or proto_path == binding.body:
                continue
            nested = None if field.is_repeated else plain_message(field)
            if nested is not None:
                if nested.full_name not in seen:
                    walk(
                        nested,
                        f"{proto_path}.",
                        f"{json_prefix}{field.json_name}.",
                        seen | {nested.full_name},
                    )
            elif not is_map(field) and (
                field.message_type is None or field.message_type.full_name in SCALAR_WELL_KNOWN_TYPES
            ):
                parameters.append(
                    {
                        "name": json_prefix + field.json_name,
                        "in": "query",
                        "description": schemas.comments.get(field.full_name, ""),
                        "schema": schemas.value(field),
                    }
                )

    walk(binding.method.input_type, "", "", frozenset({binding.method.input_type.full_name}))
    return parameters


def _request_body(binding: Binding, schemas: _Schemas) -> Schema:
    request = binding.method.input_type
    if binding.body != "*":
        return schemas.value(request.fields_by_name[binding.body])
    bound = {
        variable.field_path[0] for variable in binding.template.variables if len(variable.field_path) == 1
    }
    if not bound:
        return schemas.message(request)
    return {
        "type": "object",
        "description": schemas.comments.get(request.full_name, ""),
        "properties": {
            field.json_name: schemas.field(field) for field in request.fields if field.name not in bound
        },
    }


def _success(binding: Binding, schemas: _Schemas) -> dict[str, Any]:
    response = binding.method.output_type
    if binding.response_body:
        schema = schemas.value(response.fields_by_name[binding.response_body])
    else:
        schema = schemas.message(response)
    if not binding.server_streaming:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}
    line = {
        "type": "object",
        "description": "One JSON object per line: a message of the stream, or the error that ended it.",
        "properties": {"result": schema, "error": schemas.message(status_pb2.Status.DESCRIPTOR)},
    }
    return {
        "description": "A stream of newline-delimited JSON objects.",
        "content": {NDJSON: {"schema": line}},
    }


class _Schemas:
    """JSON Schemas of fields, with each message and enum defined once under components/schemas."""

    def __init__(self, comments: Mapping[str, str]) -> None:
        self.comments = comments
        self.components: dict[str, Schema] = {}

    def message(self, message: Descriptor) -> Schema:
        """A reference to the message's schema (or, for a well-known type, its JSON form)."""
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name not in self.components:
            schema: Schema = {"type": "object", "description": self.comments.get(message.full_name, "")}
            self.components[message.full_name] = schema  # before the fields: messages may recurse
            schema["properties"] = {field.json_name: self.field(field) for field in message.fields}
        return {"$ref": f"#/components/schemas/{message.full_name}"}

    def field(self, field: FieldDescriptor) -> Schema:
        """A field as a property: its value, null when it is an unset message, and its description."""
        schema = self.value(field)
        if field.message_type is not None and not field.is_repeated and field.containing_oneof is None:
            schema = {"anyOf": [schema, {"type": "null"}]}
        description = self.comments.get(field.full_name)
        if description:
            schema["description"] = description
        if field_behavior_pb2.OUTPUT_ONLY in field.GetOptions().Extensions[field_behavior_pb2.field_behavior]:
            schema["readOnly"] = True
        return schema

    def value(self, field: FieldDescriptor) -> Schema:
        """The schema of the field's JSON value."""
        if is_map(field):
            return {"type": "object", "additionalProperties": self._single(map_value(field))}
        if field.is_repeated:
            return {"type": "array", "items": self._single(field)}
        return self._single(field)

    def _single(self, field: FieldDescriptor) -> Schema:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self._enum(field.enum_type)
        return dict(_SCALARS[field.type])

    def _enum(self, enum: EnumDescriptor) -> Schema:
        if enum.full_name not in self.components:
            lines = [self.comments.get(enum.full_name, "")]
            for value in enum.values:
                comment = self.comments.get(f"{enum.full_name}.{value.name}")
                lines.append(f"- {value.name}: {comment}" if comment else f"- {value.name}")
            self.components[enum.full_name] = {
                "type": "string",
                "enum": [value.name for value in enum.values],
                "description": "\n".join(lines).strip(),
            }
        return {"$ref": f"#/components/schemas/{enum.full_name}"}
