"""Kinds as the planner sees them: group-kinds, object keys, and which kinds are namespaced.

Whether a kind is namespaced decides its apply wave, whether its objects need a namespace, and
how pruning lists it, and only the cluster knows: discovery answers for the kinds it serves. A
stack may also bring the CustomResourceDefinition of a kind it uses, which discovery cannot know
before the CRD is applied, so `KindScopes` asks the stack's own CRDs (their `spec.scope`) first.

Objects are plain dicts (parsed Kubernetes JSON). `key_of` reads an object's key without
trusting its shape: it returns None rather than raising, since callers use it on objects listed
from a cluster, where anything may turn up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from brokkr_common.session.resource_key import ResourceKey

#: Discovery, as the runtime knows it: whether `kind` in API `group` is namespaced, or None
#: when the cluster does not serve it. Called as `discovery(group, kind)`.
Discovery = Callable[[str, str], bool | None]


class GroupKind(NamedTuple):
    """A kind in an API group, version-free; group is "" for the core group."""

    group: str
    kind: str

    def __str__(self) -> str:
        """`Kind.group` (just `Kind` for the core group), as kubectl's `schema.GroupKind` prints."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    @classmethod
    def parse(cls, text: str) -> GroupKind:
        """The inverse of `str`: everything after the first dot is the group."""
        kind, _, group = text.partition(".")
        return cls(group, kind)

    @classmethod
    def of(cls, key: ResourceKey) -> GroupKind:
        return cls(key.group, key.kind)


CRD = GroupKind("apiextensions.k8s.io", "CustomResourceDefinition")
NAMESPACE = GroupKind("", "Namespace")

#: An object's identity in a cluster: group, kind, namespace, name. The version is left out,
#: because `apps/v1` and `apps/v1beta1` Deployments named `web` are the same object.
Identity = tuple[str, str, str, str]


def identity(key: ResourceKey) -> Identity:
    return (key.group, key.kind, key.namespace, key.name)


def key_of(obj: Mapping[str, Any]) -> ResourceKey | None:
    """The key of `obj` from apiVersion, kind and metadata; None if they are missing or malformed."""
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if not (isinstance(api_version, str) and isinstance(kind, str) and isinstance(metadata, Mapping)):
        return None
    group, _, version = api_version.rpartition("/")
    name, namespace = metadata.get("name"), metadata.get("namespace") or ""
    if not (version and kind and isinstance(name, str) and name and isinstance(namespace, str)):
        return None
    return ResourceKey(group, version, kind, namespace, name)


def labels_of(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    """`metadata.labels` of `obj`, or an empty mapping when it has none or they are malformed."""
    metadata = obj.get("metadata")
    labels = metadata.get("labels") if isinstance(metadata, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


@dataclass(frozen=True)
class DefinedKind:
    """The kind a CustomResourceDefinition defines, and the CRD's name to wait for."""

    crd_name: str
    group_kind: GroupKind
    namespaced: bool


def defined_kind(crd: Mapping[str, Any]) -> DefinedKind | None:
    """What the CRD manifest `crd` defines; None when its spec does not say (the API server will
    then reject it, with a better message than ours)."""
    metadata, spec = crd.get("metadata"), crd.get("spec")
    if not (isinstance(metadata, Mapping) and isinstance(spec, Mapping)):
        return None
    names, group, scope = spec.get("names"), spec.get("group"), spec.get("scope")
    kind = names.get("kind") if isinstance(names, Mapping) else None
    name = metadata.get("name")
    if not (isinstance(name, str) and isinstance(group, str) and isinstance(kind, str)):
        return None
    if scope not in ("Namespaced", "Cluster"):
        return None
    return DefinedKind(name, GroupKind(group, kind), scope == "Namespaced")


class KindScopes:
    """Whether each kind is namespaced: the stack's own CRDs first, then discovery."""

    def __init__(self, discovery: Discovery, defined: Iterable[DefinedKind] = ()) -> None:
        self._discovery = discovery
        self._defined = {kind.group_kind: kind.namespaced for kind in defined}

    def namespaced(self, group_kind: GroupKind) -> bool | None:
        """True or False, or None when neither the stack nor the cluster defines the kind."""
        if group_kind in self._defined:
            return self._defined[group_kind]
        return self._discovery(group_kind.group, group_kind.kind)
