"""Clock values on the wire.

The session machines take time as an input (`now`, seconds since the Unix epoch as returned by
`time.time()`) so they never read a clock themselves; these helpers put such values into the
protobuf time types and back.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import duration_pb2, timestamp_pb2

from brokkr_common.errors import InvalidArgument

_NANOS = 1_000_000_000


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=int(seconds // 1), nanos=int(seconds % 1 * _NANOS))


def duration(seconds: float) -> duration_pb2.Duration:
    message = duration_pb2.Duration()
    message.FromNanoseconds(round(seconds * _NANOS))
    return message


def to_datetime(message: timestamp_pb2.Timestamp, field: str) -> datetime:
    """`message` as an aware UTC datetime; INVALID_ARGUMENT if it is out of range."""
    try:
        return message.ToDatetime(tzinfo=UTC)
    except ValueError as error:
        raise InvalidArgument.for_field(field, f"is not a valid timestamp: {error}") from None
