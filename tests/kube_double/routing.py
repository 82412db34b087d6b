"""From an HTTP request to what it addresses: upstream's `RequestInfo`, then a served `Target`.

The URL shapes are upstream's: `/api/v1/...` for the core group, `/apis/{group}/{version}/...`
otherwise, then `[namespaces/{ns}/]{resource}[/{name}[/{subresource}]]`. The Kubernetes verb is
derived from the method and the shape (a GET without a name is a `list`, a DELETE without one a
`deletecollection`), exactly as the authorizer sees it, so failure injection and denials match on
the same verbs RBAC rules use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tests.kube_double.errors import ApiError, resource_not_found
from tests.kube_double.kinds import Registry, ResourceType

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass(frozen=True)
class RequestInfo:
    """The structural reading of a request, before knowing whether anything serves it."""

    verb: str
    resource_request: bool
    group: str = ""
    version: str = ""
    namespace: str | None = None
    resource: str = ""
    name: str = ""
    subresource: str = ""
    #: The path has segments past `{resource}/{name}/{subresource}`, which nothing serves.
    too_deep: bool = False

    @property
    def authorized_resource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


def request_info(method: str, path: str, query: Mapping[str, list[str]]) -> RequestInfo:
    verb = _METHOD_VERBS.get(method, method.lower())
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 3:
        group, version, rest = "", parts[1], parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 4:
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return RequestInfo(verb, resource_request=False)
    namespace = None
    if rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    name = rest[1] if len(rest) >= 2 else ""
    subresource = rest[2] if len(rest) >= 3 else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch", [""])[0] in ("true", "1") else "list"
    if not name and verb == "delete":
        verb = "deletecollection"
    if rest[0] == "namespaces" and not group:
        namespace = None  # a Namespace is cluster-scoped; its name is not a namespace to look in
    return RequestInfo(verb, True, group, version, namespace, rest[0], name, subresource, len(rest) > 3)


@dataclass(frozen=True)
class Target:
    """What a resource request addresses, once a served type is found for it."""

    resource_type: ResourceType
    namespace: str | None
    name: str
    subresource: str


def resolve(info: RequestInfo, registry: Registry) -> Target:
    """The served target of a resource request; 404 with upstream's generic body if nothing serves it."""
    resource_type = registry.get(info.group, info.version, info.resource)
    if resource_type is None or info.too_deep:
        raise resource_not_found()
    if info.namespace is not None and not resource_type.namespaced:
        raise resource_not_found()
    if info.namespace is None and resource_type.namespaced and info.name:
        raise resource_not_found()
    pod_log = info.subresource == "log" and resource_type.group == "" and resource_type.plural == "pods"
    if info.subresource and not pod_log and (info.subresource != "status" or not resource_type.has_status):
        raise resource_not_found()
    if pod_log and info.verb != "get":
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )
    # Upstream registers no create on a named path and nothing but list/watch across all namespaces.
    everywhere = resource_type.namespaced and info.namespace is None
    if (info.verb == "create" and info.name) or (everywhere and info.verb not in ("list", "watch")):
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )
    return Target(resource_type, info.namespace, info.name, info.subresource)
