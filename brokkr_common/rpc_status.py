"""The one place where Brokkr errors become `google.rpc.Status` and back (AIP-193).

The broker's API edge calls `to_status` for every `BrokkrError`; clients (brokkrctl, the agent, the
REST shim's tests) call `from_rpc_error` to get the same typed error back, with its reason and field
violations, from any `grpc.RpcError`.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from brokkr_common import errors

_ERROR_TYPES: dict[int, type[errors.BrokkrError]] = {
    cls.code: cls
    for cls in (
        errors.InvalidArgument,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.Aborted,
        errors.Unauthenticated,
        errors.PermissionDenied,
        errors.ResourceExhausted,
        errors.Unavailable,
        errors.Internal,
    )
}


def _pack(message: object) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(message)
    return packed


def to_status(error: errors.BrokkrError) -> status_pb2.Status:
    """`google.rpc.Status` with ErrorInfo, and BadRequest / RetryInfo where they apply."""
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=error.reason, domain=errors.ERROR_DOMAIN, metadata=error.metadata
            )
        )
    ]
    if error.field_violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=v.field, description=v.description, reason=v.reason
                        )
                        for v in error.field_violations
                    ]
                )
            )
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(int(error.retry_after_seconds * 1e9))
        details.append(_pack(error_details_pb2.RetryInfo(retry_delay=delay)))
    return status_pb2.Status(code=error.code, message=error.message, details=details)


def to_grpc_status(error: errors.BrokkrError) -> grpc.Status:
    """What `context.abort_with_status` takes: code, message and the binary details trailer."""
    return rpc_status.to_status(to_status(error))


def from_status(status: status_pb2.Status) -> errors.BrokkrError:
    """Rebuild the typed error from a `google.rpc.Status`."""
    reason = None
    metadata: dict[str, str] = {}
    violations: list[errors.FieldViolation] = []
    retry_after = None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        bad_request = error_details_pb2.BadRequest()
        retry = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(bad_request):
            violations.extend(
                errors.FieldViolation(v.field, v.description, v.reason) for v in bad_request.field_violations
            )
        elif detail.Unpack(retry):
            retry_after = retry.retry_delay.ToNanoseconds() / 1e9
    error_type = _ERROR_TYPES.get(status.code, errors.BrokkrError)
    error = error_type(
        status.message,
        reason=reason,
        field_violations=violations,
        metadata=metadata,
        retry_after_seconds=retry_after,
    )
    if error_type is errors.BrokkrError:
        error.code = status.code
    return error


def from_rpc_error(error: grpc.RpcError) -> errors.BrokkrError:
    """The typed error behind a failed call, rich details included when the server sent them."""
    # Sync calls are `grpc.Call`s; `grpc.aio.AioRpcError` only quacks like one.
    is_call = all(hasattr(error, name) for name in ("code", "details", "trailing_metadata"))
    status = rpc_status.from_call(error) if is_call else None  # type: ignore[arg-type]
    if status is None:
        code = error.code() if is_call else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
        message = error.details() if is_call else str(error)  # type: ignore[attr-defined]
        status = status_pb2.Status(code=code.value[0], message=message or "")
    return from_status(status)


def grpc_code(code: int) -> grpc.StatusCode:
    """The `grpc.StatusCode` for a `google.rpc.Code` value."""
    for status_code in grpc.StatusCode:
        if status_code.value[0] == code:
            return status_code
    return grpc.StatusCode.UNKNOWN


__all__ = ["code_pb2", "from_rpc_error", "from_status", "grpc_code", "to_grpc_status", "to_status"]
