"""Update masks (AIP-134) to the `changes` mapping the services take.

An empty mask means "every mutable field that is populated in the request". A path naming an
unknown, output-only or immutable field is an INVALID_ARGUMENT on `update_mask`, and nothing is
written. Only top-level fields can be named: `labels` replaces the whole map.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from brokkr_common.errors import FieldViolation, InvalidArgument

#: field name -> how to read it from the message into the service's value.
Readers = Mapping[str, Callable[[Message], Any]]


def _is_populated(message: Message, name: str) -> bool:
    field = message.DESCRIPTOR.fields_by_name[name]
    value = getattr(message, name)
    if field.message_type is not None and not field.message_type.GetOptions().map_entry:
        return message.HasField(name)
    return bool(value)


def changes_from_mask(
    message: Message, mask: field_mask_pb2.FieldMask, readers: Readers, *, field: str
) -> dict[str, Any]:
    """The `{field: new value}` a mask selects from `message` (the resource in the request)."""
    if not mask.paths:
        return {name: read(message) for name, read in readers.items() if _is_populated(message, name)}
    violations = [
        FieldViolation(
            "update_mask",
            f"{path!r} is not an updatable field of {field}; updatable: {', '.join(sorted(readers))}",
            "INVALID_UPDATE_MASK",
        )
        for path in mask.paths
        if path not in readers
    ]
    if violations:
        raise InvalidArgument(
            "update_mask names fields that cannot be updated",
            reason="INVALID_UPDATE_MASK",
            field_violations=violations,
        )
    return {path: readers[path](message) for path in dict.fromkeys(mask.paths)}
