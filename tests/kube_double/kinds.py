"""The kinds the double serves: built-in ones, plus whatever established CRDs add.

A `ResourceType` is one row of discovery (`deployments` in `apps/v1`) together with the few facts
the double's semantics depend on: scope, whether `/status` is a separate subresource, whether
`metadata.generation` is maintained, and which top-level fields the kind declares (the only level at
which the double knows a built-in kind's schema). The `Registry` is the mutable set of served types;
discovery documents and URL routing both read it, so a CRD becomes discoverable and servable in one
step.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

from tests.kube_double.errors import GroupResource

#: Verbs of an ordinary resource, as discovery lists them.
ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
#: Verbs of a `/status` subresource.
STATUS_VERBS = ("get", "patch", "update")

#: Fields of `ObjectMeta`; anything else under `metadata` is unknown.
OBJECT_META_FIELDS = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)

_SPEC_STATUS = frozenset({"spec", "status"})


@dataclass(frozen=True)
class ResourceType:
    """One served resource: a discovery entry plus the semantics the double attaches to it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    singular: str = ""
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    #: `/status` is a subresource: main-resource writes ignore `.status`, status writes only touch it.
    has_status: bool = False
    #: `metadata.generation` is set to 1 on create and bumped when anything but metadata/status changes.
    has_generation: bool = False
    #: Declared top-level fields besides apiVersion/kind/metadata; None for schemaless custom resources.
    fields: frozenset[str] | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def builtin(self) -> bool:
        return self.fields is not None

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    def discovery_entries(self) -> list[dict[str, object]]:
        """This type's entries in an `APIResourceList`: the resource, then its subresources."""
        entry: dict[str, object] = {
            "name": self.plural,
            "singularName": self.singular_name(),
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": list(self.verbs),
        }
        if self.short_names:
            entry["shortNames"] = list(self.short_names)
        if self.categories:
            entry["categories"] = list(self.categories)
        entries = [entry]
        if self.has_status:
            entries.append(
                {
                    "name": f"{self.plural}/status",
                    "singularName": "",
                    "namespaced": self.namespaced,
                    "kind": self.kind,
                    "verbs": list(STATUS_VERBS),
                }
            )
        return entries


def _workload(group: str, version: str, kind: str, plural: str, short: tuple[str, ...] = ()) -> ResourceType:
    return ResourceType(
        group,
        version,
        kind,
        plural,
        namespaced=True,
        short_names=short,
        categories=("all",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    )


BUILTIN_TYPES: tuple[ResourceType, ...] = (
    ResourceType(
        "",
        "v1",
        "Namespace",
        "namespaces",
        namespaced=False,
        short_names=("ns",),
        verbs=("create", "delete", "get", "list", "patch", "update", "watch"),
        has_status=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "",
        "v1",
        "ConfigMap",
        "configmaps",
        namespaced=True,
        short_names=("cm",),
        fields=frozenset({"data", "binaryData", "immutable"}),
    ),
    ResourceType(
        "",
        "v1",
        "Secret",
        "secrets",
        namespaced=True,
        fields=frozenset({"data", "stringData", "type", "immutable"}),
    ),
    ResourceType(
        "",
        "v1",
        "Service",
        "services",
        namespaced=True,
        short_names=("svc",),
        categories=("all",),
        has_status=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "",
        "v1",
        "ServiceAccount",
        "serviceaccounts",
        namespaced=True,
        short_names=("sa",),
        fields=frozenset({"secrets", "imagePullSecrets", "automountServiceAccountToken"}),
    ),
    ResourceType(
        "",
        "v1",
        "Pod",
        "pods",
        namespaced=True,
        short_names=("po",),
        categories=("all",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "",
        "v1",
        "PersistentVolumeClaim",
        "persistentvolumeclaims",
        namespaced=True,
        short_names=("pvc",),
        has_status=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "",
        "v1",
        "Event",
        "events",
        namespaced=True,
        short_names=("ev",),
        fields=frozenset(
            {
                "involvedObject",
                "reason",
                "message",
                "source",
                "firstTimestamp",
                "lastTimestamp",
                "count",
                "type",
                "eventTime",
                "series",
                "action",
                "related",
                "reportingComponent",
                "reportingInstance",
            }
        ),
    ),
    _workload("apps", "v1", "Deployment", "deployments", ("deploy",)),
    _workload("apps", "v1", "StatefulSet", "statefulsets", ("sts",)),
    _workload("apps", "v1", "DaemonSet", "daemonsets", ("ds",)),
    _workload("apps", "v1", "ReplicaSet", "replicasets", ("rs",)),
    _workload("batch", "v1", "Job", "jobs"),
    _workload("batch", "v1", "CronJob", "cronjobs", ("cj",)),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "Ingress",
        "ingresses",
        namespaced=True,
        short_names=("ing",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "networking.k8s.io",
        "v1",
        "NetworkPolicy",
        "networkpolicies",
        namespaced=True,
        short_names=("netpol",),
        has_generation=True,
        fields=frozenset({"spec"}),
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "Role",
        "roles",
        namespaced=True,
        fields=frozenset({"rules"}),
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "RoleBinding",
        "rolebindings",
        namespaced=True,
        fields=frozenset({"subjects", "roleRef"}),
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRole",
        "clusterroles",
        namespaced=False,
        fields=frozenset({"rules", "aggregationRule"}),
    ),
    ResourceType(
        "rbac.authorization.k8s.io",
        "v1",
        "ClusterRoleBinding",
        "clusterrolebindings",
        namespaced=False,
        fields=frozenset({"subjects", "roleRef"}),
    ),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        namespaced=False,
        short_names=("crd", "crds"),
        categories=("api-extensions",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "autoscaling",
        "v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        namespaced=True,
        short_names=("hpa",),
        categories=("all",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    ),
    ResourceType(
        "policy",
        "v1",
        "PodDisruptionBudget",
        "poddisruptionbudgets",
        namespaced=True,
        short_names=("pdb",),
        has_status=True,
        has_generation=True,
        fields=_SPEC_STATUS,
    ),
)

NAMESPACES = BUILTIN_TYPES[0]
CRDS = next(t for t in BUILTIN_TYPES if t.kind == "CustomResourceDefinition")


class Registry:
    """The served resource types, keyed by group, version and plural; safe to share across threads."""

    def __init__(self, types: Iterable[ResourceType] = BUILTIN_TYPES) -> None:
        self._lock = threading.Lock()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        #: Preferred version of each group, for groups whose versions are not all equal (CRDs).
        self._preferred: dict[str, str] = {}
        for resource_type in types:
            self._types[(resource_type.group, resource_type.version, resource_type.plural)] = resource_type

    def add(self, types: Iterable[ResourceType], preferred_version: str) -> None:
        with self._lock:
            for resource_type in types:
                self._types[(resource_type.group, resource_type.version, resource_type.plural)] = (
                    resource_type
                )
                self._preferred[resource_type.group] = preferred_version

    def remove(self, group: str, plural: str) -> None:
        with self._lock:
            for key in [k for k in self._types if k[0] == group and k[2] == plural]:
                del self._types[key]
            if not any(k[0] == group for k in self._types):
                self._preferred.pop(group, None)

    def get(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._types.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        with self._lock:
            for resource_type in self._types.values():
                if (resource_type.group, resource_type.version, resource_type.kind) == (group, version, kind):
                    return resource_type
        return None

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        with self._lock:
            return [t for (g, v, _), t in self._types.items() if (g, v) == (group, version)]

    def groups(self) -> dict[str, list[str]]:
        """Every named group with its versions, preferred version first."""
        with self._lock:
            found: dict[str, list[str]] = {}
            for group, version, _ in self._types:
                if group and version not in found.setdefault(group, []):
                    found[group].append(version)
            for group, versions in found.items():
                preferred = self._preferred.get(group)
                if preferred in versions:
                    versions.remove(preferred)
                    versions.insert(0, preferred)
            return found
