"""Brokkr's one error tree, shared by the broker, the agent and the client.

    BrokkrError                      code, reason, message, field violations, metadata
    ├── InvalidArgument              INVALID_ARGUMENT   bad input; names the offending fields
    ├── NotFound                     NOT_FOUND
    ├── AlreadyExists                ALREADY_EXISTS
    ├── FailedPrecondition           FAILED_PRECONDITION the request is fine, the state is not
    ├── Aborted                      ABORTED            a concurrent change won; retry
    ├── Unauthenticated              UNAUTHENTICATED    no key, malformed key, unknown key
    ├── PermissionDenied             PERMISSION_DENIED  valid key, wrong role or not the owner
    ├── ResourceExhausted            RESOURCE_EXHAUSTED too big, too many
    ├── Unavailable                  UNAVAILABLE        try again later (database down, draining)
    └── Internal                     INTERNAL           a bug; carries a correlation id, no details

Errors carry a code from `google.rpc.Code` and a machine-readable `reason` (UPPER_SNAKE_CASE,
AIP-193), and are turned into a `google.rpc.Status` with `ErrorInfo` and `BadRequest` details
exactly once, at the edge (`brokkr_common.rpc_status`). Nothing below the edge knows gRPC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from google.rpc import code_pb2

#: The `ErrorInfo.domain` of every error Brokkr raises.
ERROR_DOMAIN = "brokkr.io"


@dataclass(frozen=True)
class FieldViolation:
    """One offending field of a request, as in `google.rpc.BadRequest.FieldViolation`.

    `field` is a path into the request in proto field names, e.g. `stack.labels` or
    `deployment_object.yaml_content`.
    """

    field: str
    description: str
    reason: str = ""


class BrokkrError(Exception):
    """Base class. `code` is a `google.rpc.Code` value; `reason` a stable UPPER_SNAKE_CASE token."""

    code: int = code_pb2.UNKNOWN
    default_reason: str = "UNKNOWN"

    def __init__(
        self,
        message: str,
        *,
        reason: str | None = None,
        field_violations: Iterable[FieldViolation] = (),
        metadata: Mapping[str, str] | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason or self.default_reason
        self.field_violations = tuple(field_violations)
        self.metadata = dict(metadata or {})
        self.retry_after_seconds = retry_after_seconds

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"


class InvalidArgument(BrokkrError):
    code = code_pb2.INVALID_ARGUMENT
    default_reason = "INVALID_ARGUMENT"

    @classmethod
    def for_field(cls, field: str, description: str, reason: str = "INVALID_FIELD") -> InvalidArgument:
        """An error about one field, with the field's violation attached."""
        return cls(
            f"{field}: {description}",
            reason=reason,
            field_violations=[FieldViolation(field, description, reason)],
        )


class NotFound(BrokkrError):
    code = code_pb2.NOT_FOUND
    default_reason = "NOT_FOUND"


class AlreadyExists(BrokkrError):
    code = code_pb2.ALREADY_EXISTS
    default_reason = "ALREADY_EXISTS"


class FailedPrecondition(BrokkrError):
    code = code_pb2.FAILED_PRECONDITION
    default_reason = "FAILED_PRECONDITION"


class Aborted(BrokkrError):
    code = code_pb2.ABORTED
    default_reason = "ABORTED"


class Unauthenticated(BrokkrError):
    code = code_pb2.UNAUTHENTICATED
    default_reason = "UNAUTHENTICATED"


class PermissionDenied(BrokkrError):
    code = code_pb2.PERMISSION_DENIED
    default_reason = "PERMISSION_DENIED"


class ResourceExhausted(BrokkrError):
    code = code_pb2.RESOURCE_EXHAUSTED
    default_reason = "RESOURCE_EXHAUSTED"


class Unavailable(BrokkrError):
    code = code_pb2.UNAVAILABLE
    default_reason = "UNAVAILABLE"


class Internal(BrokkrError):
    code = code_pb2.INTERNAL
    default_reason = "INTERNAL"


def not_found(kind: str, ident: str) -> NotFound:
    """The usual NOT_FOUND for a resource looked up by id or name."""
    return NotFound(
        f"{kind} {ident!r} not found",
        reason=f"{kind.upper().replace(' ', '_')}_NOT_FOUND",
        metadata={"kind": kind, "id": ident},
    )
