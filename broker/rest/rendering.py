"""gRPC responses as the JSON grpc-gateway v2 writes.

That is the proto3 JSON mapping (lowerCamelCase names, enums by name, 64-bit integers as strings,
well-known types in their own forms) with every field present even when unpopulated: "" and 0,
[] and {}, and null for an unset message field, so a client always sees a resource's full shape.
Fields inside a oneof stay absent unless set, as in grpc-gateway.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message

from broker.rest.descriptors import is_map, map_value, plain_message


def message_json(message: Message) -> dict[str, Any]:
    """The whole message as a JSON object."""
    rendered = json_format.MessageToDict(message, always_print_fields_with_no_presence=True)
    _complete(message.DESCRIPTOR, rendered)
    return rendered


def response_json(message: Message, response_body: str) -> Any:
    """What the HTTP body carries: the whole response, or only its `response_body` field."""
    rendered = message_json(message)
    if not response_body:
        return rendered
    return rendered[message.DESCRIPTOR.fields_by_name[response_body].json_name]


def _complete(descriptor: Descriptor, rendered: dict[str, Any]) -> None:
    """Add null for unset message fields, recursively, and put the fields in declaration order."""
    for field in descriptor.fields:
        if field.message_type is None:
            continue
        if field.json_name not in rendered:  # only singular messages can be missing: lists and maps print
            if field.containing_oneof is None:
                rendered[field.json_name] = None
            continue
        nested = plain_message(map_value(field) if is_map(field) else field)
        if nested is None:
            continue
        value = rendered[field.json_name]
        for item in value.values() if is_map(field) else value if field.is_repeated else [value]:
            _complete(nested, item)
    present = [field.json_name for field in descriptor.fields if field.json_name in rendered]
    ordered = {name: rendered[name] for name in present}
    rendered.clear()
    rendered.update(ordered)
