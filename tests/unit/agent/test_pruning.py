"""Which listed objects pruning deletes, and in which order."""

from __future__ import annotations

from agent.reconcile.kinds import GroupKind, identity
from agent.reconcile.pruning import PruneScope
from brokkr_common.session.resource_key import ResourceKey
from tests.unit.agent.builders import CONFIG, DEPLOYMENT, NAMESPACE, SERVICE, live

OURS = "applyset-ours-v1"
THEIRS = "applyset-theirs-v1"
SCOPE = PruneScope(
    applyset_id=OURS,
    group_kinds=frozenset(
        {
            GroupKind("", "ConfigMap"),
            GroupKind("apps", "Deployment"),
            GroupKind("", "Service"),
            GroupKind("", "Namespace"),
        }
    ),
    namespaces=frozenset({"shop", "brokkr-system"}),
    keep=frozenset({identity(SERVICE.key)}),
    deletable_namespaces=frozenset({"shop"}),
)


def namespace(name: str, applyset: str | None = OURS) -> dict[str, object]:
    return live({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}, applyset)


def test_the_listing_selects_by_the_member_label() -> None:
    assert SCOPE.label_selector == f"applyset.kubernetes.io/part-of={OURS}"


def test_members_no_longer_held_are_deleted_workloads_before_config_before_namespaces() -> None:
    found = [live(x, OURS) for x in (NAMESPACE, CONFIG, DEPLOYMENT, SERVICE)]
    assert SCOPE.select(found) == (DEPLOYMENT.key, CONFIG.key, NAMESPACE.key)


def test_objects_without_our_label_are_never_deleted_whatever_their_name() -> None:
    found = [live(CONFIG), live(DEPLOYMENT, THEIRS), namespace("shop", applyset=None)]
    assert SCOPE.select(found) == ()


def test_an_object_still_held_is_kept_even_when_listed_through_another_version() -> None:
    old_service = live(SERVICE, OURS) | {"apiVersion": "v1beta1"}
    assert SCOPE.select([old_service]) == ()


def test_an_object_listed_through_two_versions_is_deleted_once() -> None:
    found = [live(DEPLOYMENT, OURS), live(DEPLOYMENT, OURS) | {"apiVersion": "apps/v1beta2"}]
    assert SCOPE.select(found) == (DEPLOYMENT.key,)


def test_only_recorded_kinds_and_namespaces_are_in_scope() -> None:
    secret = live(
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "t", "namespace": "shop"}}, OURS
    )
    elsewhere = live(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "api"}}, OURS
    )
    assert SCOPE.select([secret, elsewhere]) == ()


def test_namespaces_brokkr_did_not_create_and_the_clusters_own_are_never_deleted() -> None:
    scope = PruneScope(
        OURS,
        frozenset({GroupKind("", "Namespace")}),
        frozenset(),
        frozenset(),
        deletable_namespaces=frozenset({"shop", "kube-system", "default"}),
    )
    found = [namespace("shop"), namespace("existing-before"), namespace("kube-system"), namespace("default")]
    assert scope.select(found) == (ResourceKey("", "v1", "Namespace", "", "shop"),)


def test_objects_that_are_not_kubernetes_objects_are_skipped() -> None:
    assert (
        SCOPE.select([{"kind": "ConfigMap"}, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": []}]) == ()
    )
