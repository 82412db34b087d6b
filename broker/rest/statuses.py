"""How a failed call becomes an HTTP response: the status line as grpc-gateway's `HTTPStatusFromCode`
picks it, the body the `google.rpc.Status` itself, as JSON.

The servicers already put the whole story in the status (reason, offending fields, retry delay),
so the shim only translates it: from the `grpc-status-details-bin` trailer when the server sent
one, else from the plain code and message. Requests the shim refuses before any call (unknown path,
wrong verb, unreadable body) get a status of the same shape, built from Brokkr's error tree.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Mapping
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import any_pb2, json_format
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status as grpc_rpc_status

from brokkr_common import errors, rpc_status

#: google.rpc.Code -> HTTP status, exactly as grpc-gateway's runtime.HTTPStatusFromCode.
HTTP_STATUS_BY_CODE: Mapping[int, int] = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    # Deliberately not 412: that status is about HTTP conditional requests (grpc-gateway agrees).
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}

#: The codes whose RetryInfo detail also becomes a Retry-After header.
_RETRYABLE = frozenset({code_pb2.UNAVAILABLE, code_pb2.RESOURCE_EXHAUSTED})


class HttpRefusal(errors.BrokkrError):
    """A request the shim refuses itself, with an HTTP status no gRPC code maps to (405, 413, 415)."""

    def __init__(
        self,
        http_status: int,
        code: int,
        message: str,
        *,
        reason: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, reason=reason)
        self.code = code
        self.http_status = http_status
        self.headers = dict(headers or {})


def http_status(code: int) -> int:
    """The HTTP status for a `google.rpc.Code` value; 500 for codes gRPC does not define."""
    return HTTP_STATUS_BY_CODE.get(code, 500)


def status_of_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The full status of a failed call: the rich one from the trailer if the server sent it."""
    try:
        rich = grpc_rpc_status.from_call(error)
    except ValueError:  # a trailer that contradicts the call's own code or message: trust the call
        rich = None
    if rich is not None:
        return rich
    return status_pb2.Status(code=error.code().value[0], message=error.details() or "")


def status_json(status: status_pb2.Status) -> dict[str, Any]:
    """`{"code", "message", "details": [{"@type": ...}]}`, tolerating detail types this process lacks."""
    return {
        "code": status.code,
        "message": status.message,
        "details": [_detail_json(detail) for detail in status.details],
    }


def retry_after(status: status_pb2.Status) -> str | None:
    """The Retry-After value (whole seconds, rounded up) a retryable status asks for, if any."""
    if status.code not in _RETRYABLE:
        return None
    retry = error_details_pb2.RetryInfo()
    for detail in status.details:
        if detail.Unpack(retry):
            return str(math.ceil(retry.retry_delay.ToNanoseconds() / 1e9))
    return None


def status_response(
    status: status_pb2.Status,
    *,
    http_status_override: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """The JSON error response for `status`."""
    return web.Response(
        status=http_status_override or http_status(status.code),
        text=json.dumps(status_json(status)),
        content_type="application/json",
        headers={**(headers or {}), **status_headers(status)},
    )


def status_headers(status: status_pb2.Status) -> dict[str, str]:
    """Headers every response carrying `status` gets: Retry-After when it asks for a delay."""
    delay = retry_after(status)
    return {} if delay is None else {"Retry-After": delay}


def error_response(error: errors.BrokkrError) -> web.Response:
    """The JSON error response for an error raised in the shim itself."""
    if isinstance(error, HttpRefusal):
        return status_response(
            rpc_status.to_status(error), http_status_override=error.http_status, headers=error.headers
        )
    return status_response(rpc_status.to_status(error))


def _detail_json(detail: any_pb2.Any) -> dict[str, Any]:
    try:
        return json_format.MessageToDict(detail, always_print_fields_with_no_presence=True)
    except TypeError:  # the detail's type is not in this process's descriptor pool
        return {"@type": detail.type_url, "value": base64.b64encode(detail.value).decode()}
