"""Which kinds the cluster serves: under which resource name, in which versions, namespaced or not.

A manifest names a kind (`apps/v1 Deployment`), a URL names a resource (`/apis/apps/v1/.../
deployments`), and only the cluster's discovery documents map one to the other; they also say
whether a kind is namespaced, which the planner needs for waves and keys. Reading them costs a
request per API group version, so the answer is cached, and refreshed when someone asks for a
kind the cache does not know: a CRD established since, or an API group installed since. Kinds
that went away are found out by the request that addresses them (404, MISSING_KIND).

The legacy discovery documents are read (`/api`, `/apis`, `/apis/{group}/{version}`), which every
API server serves. A group version whose document cannot be read (an aggregated API whose backend
is down, typically `metrics.k8s.io`) does not stop discovery of the rest: the kinds known of it
before are kept, and asking for another kind of that group fails temporarily rather than reading
as a kind the cluster does not serve.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from agent.kube.client import KubeClient
from agent.reconcile.errors import ClusterError, TemporaryError
from agent.reconcile.kinds import NAMESPACE, GroupKind
from brokkr_common.log import get_logger
from brokkr_common.session.resource_key import ResourceKey

log = get_logger("brokkr.agent.kube")


@dataclass(frozen=True)
class Resource:
    """A served kind at one version: the resource name in its URLs and its scope."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool

    @property
    def group_kind(self) -> GroupKind:
        return GroupKind(self.group, self.kind)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str = "", name: str = "") -> str:
        """The collection (no name) or the object's URL path, in `namespace` if the kind has one."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        where = f"/namespaces/{quote(namespace, safe='')}" if self.namespaced and namespace else ""
        return f"{root}{where}/{self.plural}" + (f"/{quote(name, safe='')}" if name else "")

    def object_path(self, key: ResourceKey) -> str:
        """The URL path of the object `key`, at the key's own version."""
        return dataclasses.replace(self, version=key.version).path(key.namespace, key.name)


#: Namespaces, which every cluster serves: looked up before applying and created for the records.
NAMESPACES = Resource(NAMESPACE.group, "v1", NAMESPACE.kind, "namespaces", namespaced=False)


class Discovery:
    """The cluster's served kinds, cached; `namespaced` is the planner's `Discovery` callable."""

    def __init__(self, api: KubeClient) -> None:
        self._api = api
        #: Served versions of each kind, the preferred one first.
        self._kinds: dict[GroupKind, dict[str, Resource]] = {}
        #: Why the last refresh could not read a group's documents, by group.
        self._failed: dict[str, ClusterError] = {}
        self._refreshes = 0
        self._lock = asyncio.Lock()

    def namespaced(self, group: str, kind: str) -> bool | None:
        """Whether `kind` in `group` is namespaced; None if the cache does not know it."""
        resource = self.cached(GroupKind(group, kind))
        return resource.namespaced if resource is not None else None

    def cached(self, group_kind: GroupKind) -> Resource | None:
        """The kind at its preferred version, as last discovered."""
        versions = self._kinds.get(group_kind)
        return next(iter(versions.values())) if versions else None

    async def find(self, group_kind: GroupKind) -> Resource | None:
        """The kind at its preferred version, rediscovering once if unknown; None if not served."""
        await self.know((group_kind,))
        return self.cached(group_kind)

    async def know(self, group_kinds: Iterable[GroupKind]) -> None:
        """Rediscover if any of `group_kinds` is unknown (once, however many callers ask at the same
        time). TemporaryError if one is still unknown because its group could not be read."""
        wanted = tuple(group_kinds)
        seen = self._refreshes
        if all(kind in self._kinds for kind in wanted):
            return
        async with self._lock:
            if self._refreshes == seen:
                await self._refresh()
        for kind in wanted:
            if kind not in self._kinds and kind.group in self._failed:
                error = self._failed[kind.group]
                raise TemporaryError(
                    f"discovery of API group {kind.group!r} failed: {error.message}",
                    reason="DISCOVERY_FAILED",
                )

    async def _refresh(self) -> None:
        core = (await self._api.request("GET", "/api")).body
        groups = (await self._api.request("GET", "/apis")).body
        group_versions = [("", version) for version in _strings(core.get("versions"))]
        group_versions += _group_versions(groups)
        paths = [
            f"/apis/{group}/{version}" if group else f"/api/{version}" for group, version in group_versions
        ]
        answers = await asyncio.gather(
            *(self._api.request("GET", path) for path in paths), return_exceptions=True
        )
        kinds: dict[GroupKind, dict[str, Resource]] = {}
        failed: dict[str, ClusterError] = {}
        for (group, version), path, answer in zip(group_versions, paths, answers, strict=True):
            if isinstance(answer, ClusterError):
                log.warning("discovery_failed", path=path, reason=answer.reason, error=answer.message)
                failed[group] = answer
            elif isinstance(answer, BaseException):
                raise answer
            else:
                for resource in _resources(group, version, answer.body):
                    kinds.setdefault(resource.group_kind, {}).setdefault(resource.version, resource)
        # What was known of a group that could not be read this time is still the best guess.
        kinds |= {
            kind: known for kind, known in self._kinds.items() if kind.group in failed and kind not in kinds
        }
        self._kinds, self._failed = kinds, failed
        self._refreshes += 1


def _resources(group: str, version: str, document: Mapping[str, Any]) -> list[Resource]:
    """The resources an `APIResourceList` lists, subresources left out."""
    entries = document.get("resources")
    return [
        Resource(group, version, entry["kind"], entry["name"], entry.get("namespaced") is True)
        for entry in (entries if isinstance(entries, list) else [])
        if _is_resource(entry)
    ]


def _is_resource(entry: object) -> bool:
    """A resource entry, not a subresource (`deployments/status`)."""
    if not isinstance(entry, Mapping):
        return False
    name, kind = entry.get("name"), entry.get("kind")
    return isinstance(name, str) and "/" not in name and bool(name) and isinstance(kind, str) and bool(kind)


def _group_versions(groups: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(group, version) of every served group version, each group's preferred version first."""
    found = []
    for group in groups.get("groups") or []:
        if not isinstance(group, Mapping) or not isinstance(group.get("name"), str):
            continue
        versions = [v.get("version") for v in group.get("versions") or [] if isinstance(v, Mapping)]
        preferred = group.get("preferredVersion")
        first = preferred.get("version") if isinstance(preferred, Mapping) else None
        ordered = [first] + [v for v in versions if v != first] if first in versions else versions
        found += [(group["name"], version) for version in ordered if isinstance(version, str)]
    return found


def _strings(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []
