"""Failures of the Kubernetes API, sorted into the ones worth retrying and the ones that are not.

    ClusterError                   reason (UPPER_SNAKE_CASE) and message, for humans and the Nack
    ├── TemporaryError             may go away by itself: retry with backoff, at least `delay` s
    └── PermanentError             only a change of the object or of the cluster helps: nack now,
                                   naming the objects in `errors`

As in kopf, the class says what to do. `agent.kube` turns every failed request into one of these
with `classify` (the HTTP status, the `Status` body and the Retry-After header) or
`transport_error` (no answer at all), retries a TemporaryError up to its configured limit, and
nacks with `status_error()` as the Nack's status and `resource_error(key)` per object.

=========================================  =========  ===========================================
answer                                     class      reason
=========================================  =========  ===========================================
409 with FieldManagerConflict causes       permanent  FIELD_MANAGER_CONFLICT: another manager owns
                                                      the fields; only a forced apply takes them
409 Conflict, AlreadyExists                temporary  CONFLICT, ALREADY_EXISTS: lost a race
429                                        temporary  TOO_MANY_REQUESTS, after Retry-After
500, 502, 503, 504 and any other 5xx       temporary  from Status.reason, e.g. SERVICE_UNAVAILABLE
401, 408, 410                              temporary  UNAUTHORIZED (tokens rotate), TIMEOUT, GONE
403 NamespaceTerminating                   temporary  NAMESPACE_TERMINATING
403                                        permanent  FORBIDDEN
400, 422                                   permanent  INVALID_OBJECT
404 namespaces "x" not found               permanent  MISSING_NAMESPACE
404 the server could not find the ...      permanent  MISSING_KIND (no CRD or API version for it)
404 otherwise, any other 4xx               permanent  NOT_FOUND, or from Status.reason
no answer (connection refused, timeout)    temporary  UNREACHABLE
=========================================  =========  ===========================================

A 404 on a delete means the object is already gone; that is the caller's success, not an error.
"""

from __future__ import annotations

import abc
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from brokkr_common.errors import (
    BrokkrError,
    FailedPrecondition,
    InvalidArgument,
    PermissionDenied,
    Unavailable,
)
from brokkr_common.session.reports import ResourceError
from brokkr_common.session.resource_key import ResourceKey

#: The longest Retry-After honoured, in seconds: a confused proxy must not stall an agent for hours.
MAX_DELAY = 300.0

FIELD_MANAGER_CONFLICT = "FIELD_MANAGER_CONFLICT"
INVALID_OBJECT = "INVALID_OBJECT"
INVALID_MANIFEST = "INVALID_MANIFEST"
MISSING_KIND = "MISSING_KIND"
MISSING_NAMESPACE = "MISSING_NAMESPACE"
FORBIDDEN = "FORBIDDEN"
#: An object the agent confined to one namespace (`kubernetes.namespace`) may not apply.
OUTSIDE_NAMESPACE_SCOPE = "OUTSIDE_NAMESPACE_SCOPE"

_TEMPORARY_STATUSES = frozenset({401, 408, 409, 410, 429})
_INVALID_STATUSES = frozenset({400, 422})
_UNSERVED = "the server could not find the requested resource"
_WORD = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


class ClusterError(Exception, metaclass=abc.ABCMeta):
    """A request to the Kubernetes API failed; `reason` is UPPER_SNAKE_CASE."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.message = message
        self.reason = reason

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, reason={self.reason!r})"

    @property
    def temporary(self) -> bool:
        return isinstance(self, TemporaryError)

    def resource_error(self, key: ResourceKey) -> ResourceError:
        """This failure as the per-object error of an Ack or Nack."""
        return ResourceError(key, self.reason, self.message, self.temporary)

    @abc.abstractmethod
    def status_error(self) -> BrokkrError:
        """This failure as a Brokkr error, for the Nack's `google.rpc.Status`."""


class TemporaryError(ClusterError):
    """Retry with backoff; `delay` is the least wait in seconds the server asked for, if it did."""

    def __init__(self, message: str, *, reason: str, delay: float | None = None) -> None:
        super().__init__(message, reason=reason)
        self.delay = delay

    def status_error(self) -> BrokkrError:
        return Unavailable(self.message, reason=self.reason, retry_after_seconds=self.delay)


class PermanentError(ClusterError):
    """Do not retry; `errors` names the objects at fault, when the failure is about objects."""

    def __init__(self, message: str, *, reason: str, errors: Sequence[ResourceError] = ()) -> None:
        super().__init__(message, reason=reason)
        self.errors = tuple(errors)

    @classmethod
    def for_objects(cls, errors: Sequence[ResourceError]) -> PermanentError:
        """One error for a list of per-object problems; the first one sets the reason."""
        first = errors[0]
        others = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return cls(f"{first.key}: {first.message}{others}", reason=first.reason, errors=errors)

    def status_error(self) -> BrokkrError:
        if self.reason in (INVALID_OBJECT, INVALID_MANIFEST):
            return InvalidArgument(self.message, reason=self.reason)
        if self.reason == FORBIDDEN:
            return PermissionDenied(self.message, reason=self.reason)
        return FailedPrecondition(self.message, reason=self.reason)


def classify(status: int, body: object = None, retry_after: str | None = None) -> ClusterError:
    """The failure the API server answered with HTTP `status`, its body (a `Status`, as JSON text,
    bytes or a parsed dict; anything else is ignored) and its Retry-After header."""
    kube_status = _parse_status(body)
    details = kube_status.get("details") if isinstance(kube_status.get("details"), Mapping) else {}
    message = _text(kube_status.get("message")) or f"HTTP {status}"
    reason = _snake(_text(kube_status.get("reason"))) or f"HTTP_{status}"
    causes = {_text(c.get("reason")) for c in _list(details.get("causes")) if isinstance(c, Mapping)}
    if status == 409 and "FieldManagerConflict" in causes:
        return PermanentError(message, reason=FIELD_MANAGER_CONFLICT)
    if status == 403 and "NamespaceTerminating" in causes:
        return TemporaryError(message, reason="NAMESPACE_TERMINATING")
    if status in _TEMPORARY_STATUSES or status >= 500:
        return TemporaryError(message, reason=reason, delay=_delay(retry_after, details))
    if status in _INVALID_STATUSES:
        return PermanentError(message, reason=INVALID_OBJECT)
    if status == 403:
        return PermanentError(message, reason=FORBIDDEN)
    if status == 404:
        return PermanentError(message, reason=_missing(message, details))
    return PermanentError(message, reason=reason)


def transport_error(error: BaseException) -> TemporaryError:
    """The failure of a request that got no answer: refused, reset, timed out, name not resolved."""
    return TemporaryError(f"{type(error).__name__}: {error}", reason="UNREACHABLE")


def _missing(message: str, details: Mapping[str, Any]) -> str:
    if details.get("kind") == "namespaces" and not details.get("group"):
        return MISSING_NAMESPACE
    if message == _UNSERVED:
        return MISSING_KIND
    return "NOT_FOUND"


def _delay(retry_after: str | None, details: Mapping[str, Any]) -> float | None:
    """Seconds to wait from Retry-After (seconds form) or `details.retryAfterSeconds`, capped."""
    for candidate in (retry_after, details.get("retryAfterSeconds")):
        if isinstance(candidate, bool) or candidate is None:
            continue
        try:
            seconds = float(candidate)
        except (TypeError, ValueError):
            continue
        if math.isfinite(seconds) and seconds >= 0:
            return min(seconds, MAX_DELAY)
    return None


def _parse_status(body: object) -> Mapping[str, Any]:
    if isinstance(body, bytes | str):
        try:
            body = json.loads(body)
        except ValueError:
            return {}
    return body if isinstance(body, Mapping) else {}


def _snake(camel: str) -> str:
    """`ServiceUnavailable` -> `SERVICE_UNAVAILABLE`; "" for anything but a plain word."""
    return _WORD.sub("_", camel).upper() if camel.isalnum() and camel.isascii() else ""


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
