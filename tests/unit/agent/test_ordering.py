"""The order in which a stack's objects are applied and deleted."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.reconcile.ordering import Wave, install_position, uninstall_position, wave_of
from brokkr_common.session.resource_key import ResourceKey
from tests.unit.agent.builders import BUILT_IN_KINDS

GROUPS = {kind: group for group, kind in BUILT_IN_KINDS}
GROUPS.update(
    {
        "LimitRange": "",
        "ResourceQuota": "",
        "PersistentVolume": "",
        "ReplicationController": "",
        "ReplicaSet": "apps",
        "HorizontalPodAutoscaler": "autoscaling",
        "IngressClass": "networking.k8s.io",
        "PodSecurityPolicy": "policy",
    }
)
CLUSTER_SCOPED = {"Namespace", "PersistentVolume", "IngressClass", "PodSecurityPolicy"} | {
    kind for (_, kind), namespaced in BUILT_IN_KINDS.items() if not namespaced
}


def key(kind: str, name: str = "x", *, group: str | None = None, namespace: str | None = None) -> ResourceKey:
    group = GROUPS.get(kind, "example.com") if group is None else group
    if namespace is None:
        namespace = "" if kind in CLUSTER_SCOPED else "shop"
    return ResourceKey(group, "v1", kind, namespace, name)


def apply_order(keys: list[ResourceKey]) -> list[str]:
    ordered = sorted(keys, key=lambda k: install_position(k, namespaced=bool(k.namespace)))
    return [k.kind for k in ordered]


def delete_order(keys: list[ResourceKey]) -> list[str]:
    ordered = sorted(keys, key=lambda k: uninstall_position(k, namespaced=bool(k.namespace)))
    return [k.kind for k in ordered]


# Helm v4 pkg/release/v1/util/kind_sorter.go, InstallOrder and UninstallOrder, without the *List kinds
# (a stack never holds a List: the broker unpacks them).
HELM_INSTALL = [
    "PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange", "PodSecurityPolicy",
    "PodDisruptionBudget", "ServiceAccount", "Secret", "ConfigMap", "StorageClass", "PersistentVolume",
    "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "Role",
    "RoleBinding", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
    "HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
    "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
]  # fmt: skip
HELM_UNINSTALL = [
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "Ingress", "IngressClass",
    "Service", "CronJob", "Job", "StatefulSet", "HorizontalPodAutoscaler", "Deployment", "ReplicaSet",
    "ReplicationController", "Pod", "DaemonSet", "RoleBinding", "Role", "ClusterRoleBinding", "ClusterRole",
    "CustomResourceDefinition", "PersistentVolumeClaim", "PersistentVolume", "StorageClass", "ConfigMap",
    "Secret", "ServiceAccount", "PodDisruptionBudget", "PodSecurityPolicy", "LimitRange", "ResourceQuota",
    "NetworkPolicy", "Namespace", "PriorityClass",
]  # fmt: skip


def test_within_one_wave_kinds_follow_helms_install_order_exactly() -> None:
    # Treated as all namespaced and none of them a definition, every Helm kind lands in one wave.
    keys = [ResourceKey("example.com", "v1", kind, "shop", "x") for kind in reversed(HELM_INSTALL)]
    assert apply_order(keys) == HELM_INSTALL


def test_within_one_wave_deletion_follows_helms_uninstall_order_exactly() -> None:
    keys = [ResourceKey("example.com", "v1", kind, "shop", "x") for kind in HELM_INSTALL]
    assert delete_order(keys) == HELM_UNINSTALL


def test_definitions_then_cluster_scoped_then_namespaced_with_routing_kinds_last() -> None:
    keys = [key(kind) for kind in HELM_INSTALL]
    assert apply_order(keys) == [
        # wave 1: what later objects live in or are instances of
        "Namespace", "CustomResourceDefinition",
        # wave 2: other cluster-scoped kinds, Helm's order
        "PriorityClass", "PodSecurityPolicy", "StorageClass", "PersistentVolume", "ClusterRole",
        "ClusterRoleBinding", "IngressClass",
        # wave 3: namespaced kinds, Helm's order, then the kinds that route requests to workloads
        "NetworkPolicy", "ResourceQuota", "LimitRange", "PodDisruptionBudget", "ServiceAccount", "Secret",
        "ConfigMap", "PersistentVolumeClaim", "Role", "RoleBinding", "Service", "DaemonSet", "Pod",
        "ReplicationController", "ReplicaSet", "Deployment", "HorizontalPodAutoscaler", "StatefulSet", "Job",
        "CronJob", "Ingress", "APIService", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration",
    ]  # fmt: skip


def test_deletion_runs_the_waves_backwards() -> None:
    keys = [key(kind) for kind in HELM_INSTALL]
    assert delete_order(keys) == [
        "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "APIService", "Ingress", "Service",
        "CronJob", "Job", "StatefulSet", "HorizontalPodAutoscaler", "Deployment", "ReplicaSet",
        "ReplicationController", "Pod", "DaemonSet", "RoleBinding", "Role", "PersistentVolumeClaim",
        "ConfigMap", "Secret", "ServiceAccount", "PodDisruptionBudget", "LimitRange", "ResourceQuota",
        "NetworkPolicy",
        "IngressClass", "ClusterRoleBinding", "ClusterRole", "PersistentVolume", "StorageClass",
        "PodSecurityPolicy", "PriorityClass",
        "CustomResourceDefinition", "Namespace",
    ]  # fmt: skip


def test_unknown_kinds_come_last_when_applying_and_first_when_deleting_alphabetically() -> None:
    keys = [key("Widget"), key("Deployment"), key("Cart"), key("ConfigMap"), key("Widget", "a")]
    assert apply_order(keys) == ["ConfigMap", "Deployment", "Cart", "Widget", "Widget"]
    assert delete_order(keys) == ["Cart", "Widget", "Widget", "Deployment", "ConfigMap"]


def test_cluster_scoped_custom_resources_go_with_the_cluster_scoped_wave() -> None:
    issuer = key("ClusterIssuer", namespace="")
    assert wave_of(issuer, namespaced=False) == Wave.CLUSTER
    assert apply_order([key("ConfigMap"), issuer, key("ClusterRole")]) == [
        "ClusterRole",
        "ClusterIssuer",
        "ConfigMap",
    ]


def test_waves_go_by_group_and_kind_not_kind_alone() -> None:
    # A custom kind named like a built-in one is no CRD: it waits for the definitions to exist.
    assert wave_of(key("CustomResourceDefinition", group="example.com"), namespaced=False) == Wave.CLUSTER
    assert wave_of(key("Namespace", group="example.com", namespace=""), namespaced=False) == Wave.CLUSTER


def test_objects_of_one_kind_are_ordered_by_namespace_then_name() -> None:
    keys = [
        key("ConfigMap", "b", namespace="a"),
        key("ConfigMap", "a", namespace="b"),
        key("ConfigMap", "a", namespace="a"),
    ]
    ordered = sorted(keys, key=lambda k: install_position(k, namespaced=True))
    assert [(k.namespace, k.name) for k in ordered] == [("a", "a"), ("a", "b"), ("b", "a")]


@settings(max_examples=25, deadline=None)
@given(
    st.permutations(
        [key(kind, name) for kind in ("Widget", "Service", "Namespace", "ClusterRole") for name in "ab"]
    )
)
def test_the_order_does_not_depend_on_the_order_objects_arrive_in(keys: list[ResourceKey]) -> None:
    first = sorted(keys, key=lambda k: install_position(k, namespaced=bool(k.namespace)))
    assert first == sorted(reversed(keys), key=lambda k: install_position(k, namespaced=bool(k.namespace)))
