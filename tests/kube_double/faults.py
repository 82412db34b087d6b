"""Failure injection, RBAC-like denials and the request log: how tests make the double misbehave and
see what a client did.

* `fail_next(verb, path, code)`: the next `times` requests whose Kubernetes verb (`get`, `list`,
  `create`, `update`, `patch`, `delete`, `deletecollection`, or `*`) and URL path (a regex, searched)
  match are answered with that status instead of being served: 409 Conflict, 429 TooManyRequests
  with `Retry-After`, 500 InternalError, 503 ServiceUnavailable, or any other code.
* `hang_next(...)`: matching requests get no answer until `release_hangs()`, the server stops, or
  `hang_seconds` pass; then the connection is closed. Pair it with a client timeout.
* `drop_next(...)`: matching requests have their connection closed without an answer. urllib3
  retries a dropped GET/PUT/DELETE on its own (three times by default), so drop enough of them.
* `deny(verb, resource)`: 403 Forbidden, worded like the RBAC authorizer, for the configured user.
* `confine(namespace)`: 403 for every resource request outside that namespace (cluster-scoped
  objects and lists across all namespaces included), as for a user with only a Role there.

Every request is recorded (method, path, query, content type, field manager, verb, answer code).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from tests.kube_double.errors import (
    ApiError,
    GroupResource,
    forbidden,
    internal_error,
    service_unavailable,
    stale_resource_version,
    too_many_requests,
)


@dataclass
class Failure:
    """An injected failure, consumed by the next `remaining` matching requests."""

    verb: str
    path: re.Pattern[str]
    remaining: int
    action: str  # "status", "hang" or "drop"
    code: int = 500
    retry_after_seconds: int = 1

    def matches(self, verb: str, path: str) -> bool:
        return self.remaining > 0 and self.verb in ("*", verb) and self.path.search(path) is not None

    def error(self, resource: GroupResource | None, name: str) -> ApiError:
        """The Status answer of a "status" failure, shaped like the real one with that code."""
        if self.code == 409 and resource is not None:
            return stale_resource_version(resource, name)
        if self.code == 429:
            return too_many_requests(self.retry_after_seconds)
        if self.code == 500:
            return internal_error("injected failure")
        if self.code == 503:
            return service_unavailable("injected failure")
        return ApiError(self.code, "", f"injected failure with status {self.code}")


@dataclass(frozen=True)
class Denial:
    """Requests this rule matches are forbidden."""

    verb: str  # a Kubernetes verb or "*"
    resource: str  # "deployments", "deployments/status" or "*"
    group: str | None = None  # None: any group
    namespace: str | None = None  # None: any namespace (and cluster scope)
    #: Set: the rule matches everywhere but in this namespace (`namespace` is then ignored).
    outside: str | None = None

    def matches(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        where = namespace != self.outside if self.outside is not None else self.namespace in (None, namespace)
        return (
            self.verb in ("*", verb)
            and self.resource in ("*", resource)
            and self.group in (None, group)
            and where
        )


def denial_error(
    user: str, verb: str, group: str, resource: str, name: str, namespace: str | None
) -> ApiError:
    """The authorizer's 403: `deployments.apps "web" is forbidden: User "..." cannot patch resource ...`."""
    where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
    why = f'User "{user}" cannot {verb} resource "{resource}" in API group "{group}" {where}'
    return forbidden(GroupResource(group, resource.split("/", maxsplit=1)[0]), name, why)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the double saw it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    content_type: str
    field_manager: str
    verb: str
    status: int


class Faults:
    """The injected failures and denials in force, and the request log; shared by handler threads."""

    def __init__(self, hang_seconds: float = 30.0) -> None:
        #: The longest a hung request waits for `release_hangs()`.
        self.hang_seconds = hang_seconds
        self._lock = threading.Lock()
        self._failures: list[Failure] = []
        self._denials: list[Denial] = []
        self._log: list[RecordedRequest] = []
        self._released = threading.Event()

    def add(self, failure: Failure) -> None:
        with self._lock:
            self._failures.append(failure)

    def take(self, verb: str, path: str) -> Failure | None:
        """The first failure matching this request, with one of its uses consumed."""
        with self._lock:
            for failure in self._failures:
                if failure.matches(verb, path):
                    failure.remaining -= 1
                    return failure
        return None

    def deny(self, denial: Denial) -> None:
        with self._lock:
            self._denials.append(denial)

    def denied(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        with self._lock:
            return any(d.matches(verb, group, resource, namespace) for d in self._denials)

    def hang(self) -> None:
        """Block the calling handler until hangs are released (or `hang_seconds` pass)."""
        with self._lock:
            released = self._released
        released.wait(self.hang_seconds)

    def release_hangs(self, for_good: bool = False) -> None:
        """Let every hung request go; later hangs wait again, unless released `for_good` (at shutdown)."""
        with self._lock:
            released = self._released
            if not for_good:
                self._released = threading.Event()
        released.set()

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._log.append(request)

    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._log)

    def clear_requests(self) -> None:
        with self._lock:
            self._log.clear()
