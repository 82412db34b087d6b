"""HTTP requests as gRPC request messages, mapped the way grpc-gateway maps them.

A request message is filled from three places, in this order, later ones winning:

1. the JSON body, into the whole message (`body: "*"`) or into one field (`body: "stack"`);
   proto names and lowerCamelCase names are both accepted, unknown fields are refused;
2. the path variables (`/api/v1/stacks/{stack.id}`), nested field paths included;
3. the query parameters, for every field neither the body nor the path sets:
   `?pageSize=10&labelSelector=env%3Dprod&filter.kind=a&filter.kind=b&updateMask=name,description`.

Anything the mapping cannot place is a 400 naming the parameter or field, so a typo never silently
becomes a default value. The servicer behind the method still validates the message itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from google.protobuf import json_format, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import code_pb2
from multidict import MultiMapping

from broker.rest.descriptors import SCALAR_WELL_KNOWN_TYPES, field_named, is_map, map_value, plain_message
from broker.rest.routing import Binding
from broker.rest.statuses import HttpRefusal
from brokkr_common import errors

_TRUE = frozenset({"true", "t", "1"})
_FALSE = frozenset({"false", "f", "0"})
_SNAKE_PART = re.compile(r"_([a-z0-9])")


def build_request(
    binding: Binding,
    path_params: Mapping[str, str],
    query: MultiMapping[str],
    body: bytes,
    content_type: str,
) -> Message:
    """The gRPC request for an HTTP request, or an InvalidArgument / HttpRefusal naming what is wrong."""
    request = message_factory.GetMessageClass(binding.method.input_type)()
    if body.strip():
        _merge_body(request, binding, body, content_type)
    for name, value in path_params.items():
        _merge_parameter(request, name, _fields_on_path(request.DESCRIPTOR, name), [value])
    spelled: dict[str, str] = {}  # field path -> the parameter name that set it
    for name in dict.fromkeys(query.keys()):
        fields = _fields_on_path(request.DESCRIPTOR, name)
        _refuse_if_bound(binding, fields, name)
        field_path = ".".join(field.name for field in fields)
        if field_path in spelled:
            raise errors.InvalidArgument.for_field(name, f"sets the same field as {spelled[field_path]}")
        spelled[field_path] = name
        _merge_parameter(request, name, fields, query.getall(name))
    return request


def is_json(content_type: str) -> bool:
    """Whether a body with this Content-Type header is read as JSON.

    Besides JSON types, no type at all and `application/x-www-form-urlencoded` are accepted:
    the latter is what `curl -d '{...}'` sends unless told otherwise, and grpc-gateway reads it
    as JSON too, so the curl examples in Brokkr's documentation work as written.
    """
    mime = content_type.partition(";")[0].strip().lower()
    return mime in ("", "application/json", "application/x-www-form-urlencoded") or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _merge_body(request: Message, binding: Binding, body: bytes, content_type: str) -> None:
    if not binding.body:
        raise errors.InvalidArgument(
            f"{binding.verb} {binding.template.text} takes no request body; use query parameters",
            reason="UNEXPECTED_BODY",
        )
    if not is_json(content_type):
        raise HttpRefusal(
            415,
            code_pb2.INVALID_ARGUMENT,
            f"request bodies must be JSON (application/json), not {content_type!r}",
            reason="UNSUPPORTED_MEDIA_TYPE",
        )
    try:
        data = json.loads(body)
    except ValueError as error:  # JSONDecodeError and UnicodeDecodeError alike
        raise errors.InvalidArgument(
            f"request body is not valid JSON: {error}", reason="MALFORMED_JSON"
        ) from error
    except RecursionError:  # `[[[[...` nested deeper than the parser's stack
        raise errors.InvalidArgument(
            "request body is not valid JSON: nested too deeply", reason="MALFORMED_JSON"
        ) from None
    document = data if binding.body == "*" else {binding.body: data}
    _check_object(request.DESCRIPTOR, document, "")
    try:
        json_format.ParseDict(document, request)
    except json_format.ParseError as error:  # also values nested deeper than its limit of 100
        raise errors.InvalidArgument(f"invalid request body: {error}", reason="INVALID_BODY") from error


def _check_object(message: Descriptor, value: Any, path: str) -> None:
    """Refuse unknown fields and wrongly shaped or typed values, naming their path in the request.

    `json_format` refuses unknown fields and values of the wrong JSON type too, but without a field
    path, and it quietly accepts some shapes (an array where an object belongs) that a client would
    never mean.
    """
    if not isinstance(value, dict):
        raise _shape_error(path, "must be a JSON object")
    for key, item in value.items():
        if _SURROGATE.search(key):  # a path naming it could not be encoded in the error
            raise _shape_error(path, "has a field name that is not valid Unicode")
        where = f"{path}.{key}" if path else key
        field = field_named(message, key)
        if field is None:
            raise errors.InvalidArgument.for_field(where, "unknown field", reason="UNKNOWN_FIELD")
        if item is not None:
            _check_value(field, item, where)


def _check_value(field: FieldDescriptor, value: Any, path: str) -> None:
    element = field
    if is_map(field):
        if not isinstance(value, dict):
            raise _shape_error(path, "must be a JSON object")
        for key in value:
            _check_text(key, path, "a key")
        element = map_value(field)
        items: Sequence[tuple[str, Any]] = [(f"{path}.{key}", item) for key, item in value.items()]
    elif field.is_repeated:
        if not isinstance(value, list):
            raise _shape_error(path, "must be a JSON array")
        items = [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    else:
        items = [(path, value)]
    nested = plain_message(element)
    for where, item in items:
        if item is None:
            continue
        if nested is not None:
            _check_object(nested, item, where)
        elif element.message_type is None:
            _check_scalar(element, item, where)


#: The JSON types proto3 JSON accepts for each scalar field type (grpc-gateway's too), and how to
#: say so. Numbers may come as strings ("7", "NaN"); bool is not a number here, although Python says so.
_NUMBER = ((int, float, str), "must be a number (or a string holding one)")
_SCALAR_JSON_TYPES: dict[int, tuple[tuple[type, ...], str]] = {
    FieldDescriptor.TYPE_STRING: ((str,), "must be a JSON string"),
    FieldDescriptor.TYPE_BYTES: ((str,), "must be a JSON string (base64)"),
    FieldDescriptor.TYPE_BOOL: ((bool,), "must be true or false"),
    FieldDescriptor.TYPE_ENUM: ((str, int), "must be an enum value name (a string) or number"),
    **dict.fromkeys(
        (
            FieldDescriptor.TYPE_INT32,
            FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_UINT32,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_SINT32,
            FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_FIXED32,
            FieldDescriptor.TYPE_FIXED64,
            FieldDescriptor.TYPE_SFIXED32,
            FieldDescriptor.TYPE_SFIXED64,
            FieldDescriptor.TYPE_DOUBLE,
            FieldDescriptor.TYPE_FLOAT,
        ),
        _NUMBER,
    ),
}
_SURROGATE = re.compile("[\ud800-\udfff]")


def _check_scalar(field: FieldDescriptor, value: Any, path: str) -> None:
    """A scalar of the JSON type its field takes, as text that is valid Unicode."""
    accepted, description = _SCALAR_JSON_TYPES.get(field.type, ((object,), ""))
    if isinstance(value, bool) is not (field.type == FieldDescriptor.TYPE_BOOL) or not isinstance(
        value, accepted
    ):
        raise errors.InvalidArgument.for_field(path, description)
    if isinstance(value, str):
        _check_text(value, path, "the value")
        enum = field.enum_type
        if enum is not None and value not in enum.values_by_name:
            raise errors.InvalidArgument.for_field(path, f"must be one of {', '.join(enum.values_by_name)}")


def _check_text(value: str, path: str, what: str) -> None:
    """JSON escapes can spell lone surrogates (`"\\ud800"`), which are not Unicode text and
    which protobuf refuses. Only `path` names the place: it must stay encodable itself."""
    if found := _SURROGATE.search(value):
        raise errors.InvalidArgument.for_field(
            path,
            f"must be valid Unicode: {what} holds the unpaired surrogate U+{ord(found.group()):04X} "
            f"at character {found.start()}",
        )


def _shape_error(path: str, description: str) -> errors.InvalidArgument:
    if path:
        return errors.InvalidArgument.for_field(path, description)
    return errors.InvalidArgument(f"request body {description}", reason="INVALID_BODY")


def _fields_on_path(message: Descriptor, name: str) -> list[FieldDescriptor]:
    """The fields a dotted parameter name walks through, each by proto or JSON name."""
    fields: list[FieldDescriptor] = []
    current: Descriptor | None = message
    for part in name.split("."):
        field = field_named(current, part) if current is not None else None
        if field is None:
            raise errors.InvalidArgument.for_field(
                name, f"names no field of {message.full_name}", reason="UNKNOWN_FIELD"
            )
        fields.append(field)
        current = None if field.is_repeated else plain_message(field)
    return fields


def _refuse_if_bound(binding: Binding, fields: list[FieldDescriptor], name: str) -> None:
    if binding.body == "*" or fields[0].name == binding.body:
        raise errors.InvalidArgument.for_field(name, "is part of the request body; set it there")
    if any(
        variable.field_path == tuple(field.name for field in fields)
        for variable in binding.template.variables
    ):
        raise errors.InvalidArgument.for_field(name, "is part of the path; set it there")


def _merge_parameter(
    request: Message, name: str, fields: list[FieldDescriptor], values: Sequence[str]
) -> None:
    document: Any = _parameter_value(fields[-1], values, name)
    for field in reversed(fields):
        document = {field.name: document}
    part = type(request)()
    try:
        json_format.ParseDict(document, part)
    except json_format.ParseError as error:
        raise errors.InvalidArgument.for_field(name, f"invalid value: {error}") from error
    request.MergeFrom(part)


def _parameter_value(field: FieldDescriptor, values: Sequence[str], name: str) -> Any:
    """The JSON value of a parameter: the text as is, but booleans and field masks made readable."""
    if field.message_type is not None and (
        is_map(field) or field.message_type.full_name not in SCALAR_WELL_KNOWN_TYPES
    ):
        raise errors.InvalidArgument.for_field(name, "cannot be set from a query parameter; set its fields")
    converted = [_scalar(field, value, name) for value in values]
    if field.is_repeated:
        return converted
    if len(converted) > 1:
        raise errors.InvalidArgument.for_field(name, "is not repeated but was given more than once")
    return converted[0]


def _scalar(field: FieldDescriptor, value: str, name: str) -> Any:
    kind = field.message_type.full_name if field.message_type is not None else ""
    if field.type == field.TYPE_BOOL or kind == "google.protobuf.BoolValue":
        lowered = value.lower()
        if lowered not in _TRUE | _FALSE:
            raise errors.InvalidArgument.for_field(name, f"{value!r} is not a boolean (true or false)")
        return lowered in _TRUE
    if kind == "google.protobuf.FieldMask":
        # grpc-gateway passes mask paths through as written; the JSON form wants lowerCamelCase.
        return ",".join(_SNAKE_PART.sub(lambda part: part[1].upper(), path) for path in value.split(","))
    return value
