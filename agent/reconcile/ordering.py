"""The order in which a stack's objects are applied, and the order in which they are deleted.

Applying happens in three waves, because an object can only be created once what it lives in or
is an instance of exists:

1. `DEFINITIONS`: CustomResourceDefinitions and Namespaces. The planner then waits for the CRDs
   that later objects instantiate to be Established (until then their kinds are not served).
2. `CLUSTER`: every other cluster-scoped kind (ClusterRoles, StorageClasses, PriorityClasses ...).
3. `NAMESPACED`: namespaced kinds, and last the cluster-scoped kinds that route API requests to a
   workload: APIServices and admission webhook configurations. Registering those before the
   Service and Deployment behind them exist would make the API server fail every request they
   intercept, including the rest of this apply. (Helm puts them last for the same reason.)

Within a wave, kinds follow Helm's install order (`InstallOrder` in Helm v4's
pkg/release/v1/util/kind_sorter.go, formerly pkg/releaseutil), matched by kind name alone as Helm
does; kinds Helm does not list come after the listed ones, alphabetically. Objects of one kind are
ordered by group, namespace, name and version, so a plan is the same whatever order the broker
sent.

Deleting (pruning, removing a stack) runs the waves backwards, and within a wave follows Helm's
`UninstallOrder`, except that unlisted kinds go *first*: they are mostly custom resources, whose
controllers (often in the same stack) must still be running to process their finalizers.
"""

from __future__ import annotations

import enum

from agent.reconcile.kinds import CRD, NAMESPACE, GroupKind
from brokkr_common.session.resource_key import ResourceKey

INSTALL_ORDER: tuple[str, ...] = (
    "PriorityClass",
    "Namespace",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "CustomResourceDefinition",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "IngressClass",
    "Ingress",
    "APIService",
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
)

UNINSTALL_ORDER: tuple[str, ...] = (
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
    "APIService",
    "Ingress",
    "IngressClass",
    "Service",
    "CronJob",
    "Job",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Deployment",
    "ReplicaSet",
    "ReplicationController",
    "Pod",
    "DaemonSet",
    "RoleBindingList",
    "RoleBinding",
    "RoleList",
    "Role",
    "ClusterRoleBindingList",
    "ClusterRoleBinding",
    "ClusterRoleList",
    "ClusterRole",
    "CustomResourceDefinition",
    "PersistentVolumeClaim",
    "PersistentVolume",
    "StorageClass",
    "ConfigMap",
    "SecretList",
    "Secret",
    "ServiceAccount",
    "PodDisruptionBudget",
    "PodSecurityPolicy",
    "LimitRange",
    "ResourceQuota",
    "NetworkPolicy",
    "Namespace",
    "PriorityClass",
)

#: Cluster-scoped kinds that send API requests to a workload, applied with the namespaced wave.
ROUTING_KINDS = frozenset(
    {
        GroupKind("apiregistration.k8s.io", "APIService"),
        GroupKind("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
        GroupKind("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    }
)

_INSTALL_RANK = {kind: rank for rank, kind in enumerate(INSTALL_ORDER)}
_UNINSTALL_RANK = {kind: rank for rank, kind in enumerate(UNINSTALL_ORDER)}

#: A sort key: compare two of them to order two objects.
Position = tuple[int, int, str, str, str, str, str]


class Wave(enum.IntEnum):
    """The apply waves, in apply order."""

    DEFINITIONS = 1
    CLUSTER = 2
    NAMESPACED = 3


def wave_of(key: ResourceKey, *, namespaced: bool) -> Wave:
    """The wave `key` is applied in; `namespaced` is whether its kind is (see `KindScopes`)."""
    group_kind = GroupKind.of(key)
    if group_kind in (CRD, NAMESPACE):
        return Wave.DEFINITIONS
    if namespaced or group_kind in ROUTING_KINDS:
        return Wave.NAMESPACED
    return Wave.CLUSTER


def install_position(key: ResourceKey, *, namespaced: bool) -> Position:
    """Sort key of `key` in apply order: wave, Helm rank (unlisted kinds last, by kind), key."""
    rank = _INSTALL_RANK.get(key.kind, len(INSTALL_ORDER))
    unlisted = key.kind if key.kind not in _INSTALL_RANK else ""
    return (wave_of(key, namespaced=namespaced), rank, unlisted, *_tie_break(key))


def uninstall_position(key: ResourceKey, *, namespaced: bool) -> Position:
    """Sort key of `key` in delete order: waves backwards, unlisted kinds first, Helm's order."""
    rank = _UNINSTALL_RANK.get(key.kind, -1)
    unlisted = key.kind if key.kind not in _UNINSTALL_RANK else ""
    return (-wave_of(key, namespaced=namespaced), rank, unlisted, *_tie_break(key))


def _tie_break(key: ResourceKey) -> tuple[str, str, str, str]:
    return (key.group, key.namespace, key.name, key.version)
