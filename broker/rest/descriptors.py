"""Questions about protobuf descriptors that request mapping, response rendering and the OpenAPI
document all ask the same way: is this field a map, does this message have its own JSON form, which
field does a JSON key name.
"""

from __future__ import annotations

from google.protobuf.descriptor import Descriptor, FieldDescriptor

#: Messages whose proto3 JSON form is not an object of their fields (a string, a number, any value).
WELL_KNOWN_TYPES = frozenset(
    {
        "google.protobuf.Any",
        "google.protobuf.Duration",
        "google.protobuf.FieldMask",
        "google.protobuf.ListValue",
        "google.protobuf.Struct",
        "google.protobuf.Timestamp",
        "google.protobuf.Value",
        "google.protobuf.BoolValue",
        "google.protobuf.BytesValue",
        "google.protobuf.DoubleValue",
        "google.protobuf.FloatValue",
        "google.protobuf.Int32Value",
        "google.protobuf.Int64Value",
        "google.protobuf.StringValue",
        "google.protobuf.UInt32Value",
        "google.protobuf.UInt64Value",
    }
)

#: Well-known types whose JSON form is one string or number, so one query parameter can set them.
SCALAR_WELL_KNOWN_TYPES = WELL_KNOWN_TYPES - {
    "google.protobuf.Any",
    "google.protobuf.ListValue",
    "google.protobuf.Struct",
    "google.protobuf.Value",
}


def is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def map_value(field: FieldDescriptor) -> FieldDescriptor:
    """The `value` field of a map field's entry type."""
    return field.message_type.fields_by_name["value"]


def plain_message(field: FieldDescriptor) -> Descriptor | None:
    """The field's message type if its JSON form is an object of its fields, else None."""
    message = field.message_type
    if message is None or message.full_name in WELL_KNOWN_TYPES or message.GetOptions().map_entry:
        return None
    return message


def field_named(message: Descriptor, name: str) -> FieldDescriptor | None:
    """The field a JSON key or query parameter names: by proto name or by lowerCamelCase JSON name."""
    field = message.fields_by_name.get(name)
    if field is not None:
        return field
    return next((candidate for candidate in message.fields if candidate.json_name == name), None)
