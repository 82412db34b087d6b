"""Kubernetes `Status` failures, shaped the way `k8s.io/apimachinery/pkg/api/errors` shapes them.

Every non-2xx answer of the double is an `ApiError`, so a client gets the same `kind: Status` body
(`status`, `message`, `reason`, `details`, `code`) a real API server sends. The constructors below
mirror upstream's `NewNotFound`, `NewAlreadyExists`, `NewConflict`, `NewApplyConflict`,
`NewInvalid`, `NewForbidden`, ... and copy their message formats, because clients (and the agent's
error classification) read `reason`, `code` and `details.causes`, and people read `message`.

`FieldError` is upstream's `field.Error`: one offending field with a type such as
`FieldValueInvalid`, rendered as `spec.replicas: Invalid value: -1: must be greater than or equal
to 0`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

JSON = dict[str, Any]

#: Marks a `FieldError` whose bad value is not printed (upstream's `omitValue`).
OMIT: Any = object()

#: `field.ErrorType` -> the words upstream prints for it.
_ERROR_TYPE_WORDS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
}


def go_quote(text: str) -> str:
    """A string the way Go's `%q` prints it (close enough for the ASCII names the double sees)."""
    return json.dumps(text, ensure_ascii=False)


def go_value(value: Any) -> str:
    """A bad value the way `field.Error` prints it: numbers bare, strings quoted, maps as Go literals."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return go_quote(value)
    if isinstance(value, dict) and all(isinstance(v, str) for v in value.values()):
        pairs = ", ".join(f"{go_quote(k)}:{go_quote(v)}" for k, v in sorted(value.items()))
        return f"map[string]string{{{pairs}}}"
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True)
class GroupResource:
    """A resource in an API group, printed like upstream's `schema.GroupResource` (`deployments.apps`)."""

    group: str
    resource: str

    def __str__(self) -> str:
        return f"{self.resource}.{self.group}" if self.group else self.resource


@dataclass(frozen=True)
class FieldError:
    """One offending field, as upstream's `field.Error`."""

    type: str
    field: str
    bad_value: Any = OMIT
    detail: str = ""

    @classmethod
    def invalid(cls, field: str, value: Any, detail: str) -> FieldError:
        return cls("FieldValueInvalid", field, value, detail)

    @classmethod
    def required(cls, field: str, detail: str = "") -> FieldError:
        return cls("FieldValueRequired", field, OMIT, detail)

    @classmethod
    def duplicate(cls, field: str, value: Any) -> FieldError:
        return cls("FieldValueDuplicate", field, value)

    @classmethod
    def forbidden(cls, field: str, detail: str) -> FieldError:
        return cls("FieldValueForbidden", field, OMIT, detail)

    @classmethod
    def not_supported(cls, field: str, value: Any, supported: Sequence[str]) -> FieldError:
        detail = "supported values: " + ", ".join(go_quote(s) for s in supported)
        return cls("FieldValueNotSupported", field, value, detail)

    def body(self) -> str:
        words = _ERROR_TYPE_WORDS[self.type]
        text = words if self.bad_value is OMIT else f"{words}: {go_value(self.bad_value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"


class ApiError(Exception):
    """A failed request, answered with a `Status` body and the HTTP status in `code`."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: JSON | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> JSON:
        body: JSON = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(gr: GroupResource | None = None, name: str = "", **extra: Any) -> JSON:
    details: JSON = {}
    if name:
        details["name"] = name
    if gr is not None and gr.group:
        details["group"] = gr.group
    if gr is not None and gr.resource:
        details["kind"] = gr.resource
    details.update({k: v for k, v in extra.items() if v})
    return details


def not_found(gr: GroupResource, name: str) -> ApiError:
    return ApiError(404, "NotFound", f"{gr} {go_quote(name)} not found", _details(gr, name))


def resource_not_found() -> ApiError:
    """A path no served resource answers (unknown group, version or resource, unestablished CRD)."""
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def already_exists(gr: GroupResource, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f"{gr} {go_quote(name)} already exists", _details(gr, name))


def conflict(gr: GroupResource, name: str, why: str) -> ApiError:
    message = f"Operation cannot be fulfilled on {gr} {go_quote(name)}: {why}"
    return ApiError(409, "Conflict", message, _details(gr, name))


def stale_resource_version(gr: GroupResource, name: str) -> ApiError:
    why = "the object has been modified; please apply your changes to the latest version and try again"
    return conflict(gr, name, why)


def apply_conflict(causes: list[JSON], message: str) -> ApiError:
    """A server-side apply conflict: upstream's `NewApplyConflict` carries only the causes."""
    return ApiError(409, "Conflict", message, {"causes": causes})


def invalid(group: str, kind: str, name: str, errors: Sequence[FieldError]) -> ApiError:
    qualified = f"{kind}.{group}" if group else kind
    summary = str(errors[0]) if len(errors) == 1 else "[" + ", ".join(str(e) for e in errors) + "]"
    causes = [{"reason": e.type, "message": e.body(), "field": e.field} for e in errors]
    details: JSON = {"name": name, "group": group, "kind": kind, "causes": causes}
    details = {k: v for k, v in details.items() if v}
    return ApiError(422, "Invalid", f"{qualified} {go_quote(name)} is invalid: {summary}", details)


def options_invalid(kind: str, errors: Sequence[FieldError]) -> ApiError:
    """Bad query options (`PatchOptions`, `CreateOptions`, ...), rejected like upstream: 422 Invalid."""
    return invalid("meta.k8s.io", kind, "", errors)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(gr: GroupResource, name: str, why: str) -> ApiError:
    subject = f"{gr} {go_quote(name)}" if name else str(gr)
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(gr, name))


def method_not_supported(gr: GroupResource, action: str) -> ApiError:
    message = f"{action} is not supported on resources of kind {go_quote(str(gr))}"
    return ApiError(405, "MethodNotAllowed", message, _details(gr))


def unsupported_media_type(accepted: Sequence[str]) -> ApiError:
    message = (
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}"
    )
    return ApiError(415, "UnsupportedMediaType", message, {})


def too_many_requests(retry_after_seconds: int) -> ApiError:
    return ApiError(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.",
        {"retryAfterSeconds": retry_after_seconds},
        {"Retry-After": str(retry_after_seconds)},
    )


def internal_error(why: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {why}", {"causes": [{"message": why}]})


def untyped_server_error(message: str) -> ApiError:
    """A plain Go `error` reaching the response writer: code 500 and no reason (upstream does this)."""
    return ApiError(500, "", message)


def service_unavailable(why: str) -> ApiError:
    return ApiError(503, "ServiceUnavailable", why, {})
