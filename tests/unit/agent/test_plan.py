"""Planning one change of a stack: apply order, dry run, CRD waits, pruning and the record."""

from __future__ import annotations

import json
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

import pytest

from agent.reconcile.applyset import (
    PART_OF_LABEL,
    RecordedState,
    parent_manifest,
    parse_parent,
)
from agent.reconcile.errors import PermanentError
from agent.reconcile.kinds import GroupKind
from agent.reconcile.ordering import Wave
from agent.reconcile.plan import ApplyPlan, ClusterFacts, Step, plan_apply, plan_removal
from brokkr_common.session.stacks import UNKNOWN, DesiredResource, HeldStack
from tests.unit.agent.builders import (
    CART,
    CLUSTER_ROLE,
    CONFIG,
    CONFIG_DEBUG,
    CRD,
    DEPLOYMENT,
    NAMESPACE,
    SERVICE,
    STACK,
    cluster,
    desired,
    discovery,
    live,
    ref,
    update,
)

SHOP = (NAMESPACE, CONFIG, DEPLOYMENT, SERVICE, CLUSTER_ROLE)


def kinds(steps: Iterable[Step]) -> list[str]:
    return [step.key.kind for step in steps]


def holding(sequence: int, *resources: DesiredResource) -> HeldStack:
    return HeldStack(ref(sequence), MappingProxyType({r.key: r.content_hash for r in resources}))


def record(parent: dict[str, Any]) -> RecordedState:
    recorded = parse_parent(parent)
    assert recorded is not None
    return recorded


def members(plan: ApplyPlan, *resources: DesiredResource) -> list[dict[str, Any]]:
    """The objects as the cluster lists them after `plan` applied (labelled as its members)."""
    return [live(r, plan.prune.applyset_id) for r in resources]


@pytest.fixture
def created() -> ApplyPlan:
    """The shop stack applied for the first time, into a cluster without the shop namespace."""
    return plan_apply(update(1, *SHOP, full_state=True), UNKNOWN, None, cluster())


# -- creating ------------------------------------------------------------------------------------


def test_a_new_stack_is_applied_in_waves_definitions_cluster_scoped_namespaced(created: ApplyPlan) -> None:
    assert [(wave.wave, kinds(wave.steps)) for wave in created.waves] == [
        (Wave.DEFINITIONS, ["Namespace"]),
        (Wave.CLUSTER, ["ClusterRole"]),
        (Wave.NAMESPACED, ["ConfigMap", "Service", "Deployment"]),
    ]


def test_objects_in_a_namespace_the_plan_creates_are_not_dry_run(created: ApplyPlan) -> None:
    assert kinds(created.dry_run) == ["Namespace", "ClusterRole"]


def test_the_only_change_to_a_manifest_is_the_member_label(created: ApplyPlan) -> None:
    steps = {step.key: step for wave in created.waves for step in wave.steps}
    deployment = steps[DEPLOYMENT.key]
    assert deployment.content_hash == DEPLOYMENT.content_hash
    assert deployment.manifest["metadata"]["labels"] == {
        "app": "web",
        PART_OF_LABEL: created.prune.applyset_id,
    }
    for resource in SHOP:
        manifest = json.loads(json.dumps(steps[resource.key].manifest))
        labels = manifest["metadata"].pop("labels")
        assert labels.pop(PART_OF_LABEL) == created.prune.applyset_id
        if labels:
            manifest["metadata"]["labels"] = labels
        assert manifest == json.loads(resource.manifest)


def test_the_record_names_the_deployment_object_every_hash_and_the_namespace_brokkr_created(
    created: ApplyPlan,
) -> None:
    assert record(created.parent_after) == RecordedState(
        STACK,
        "brokkr-system",
        ref(1),
        {r.key: r.content_hash for r in SHOP},
        group_kinds=frozenset(GroupKind.of(r.key) for r in SHOP),
        namespaces=frozenset({"shop"}),
        created_namespaces=frozenset({"shop"}),
        stack_name="shop",
    )


def test_until_the_apply_completes_the_record_says_unknown(created: ApplyPlan) -> None:
    before = record(created.parent_before)
    assert before.held() is UNKNOWN
    assert before.group_kinds == record(created.parent_after).group_kinds
    assert before.created_namespaces == {"shop"}  # so an interrupted apply can still clean up


# -- updating ------------------------------------------------------------------------------------


def test_an_update_applies_the_delta_and_records_the_whole_stack(created: ApplyPlan) -> None:
    plan = plan_apply(update(2, CONFIG_DEBUG), holding(1, *SHOP), created.parent_after, cluster("shop"))
    assert [(w.wave, kinds(w.steps)) for w in plan.waves] == [(Wave.NAMESPACED, ["ConfigMap"])]
    assert kinds(plan.dry_run) == ["ConfigMap"]
    after = record(plan.parent_after)
    assert after.deployment_object == ref(2)
    assert after.resources == {
        r.key: r.content_hash for r in (NAMESPACE, CONFIG_DEBUG, DEPLOYMENT, SERVICE, CLUSTER_ROLE)
    }
    assert after.created_namespaces == {"shop"}
    assert plan.prune.select(members(plan, *SHOP)) == ()


def test_a_new_version_with_no_changes_applies_nothing_and_prunes_nothing(created: ApplyPlan) -> None:
    plan = plan_apply(update(2), holding(1, *SHOP), created.parent_after, cluster("shop"))
    assert (plan.waves, plan.dry_run) == ((), ())
    assert plan.prune.select(members(plan, *SHOP)) == ()
    assert record(plan.parent_after).held() == holding(2, *SHOP)


def test_objects_the_broker_removes_are_pruned(created: ApplyPlan) -> None:
    plan = plan_apply(
        update(2, remove=(SERVICE.key,)), holding(1, *SHOP), created.parent_after, cluster("shop")
    )
    assert plan.prune.select(members(plan, *SHOP)) == (SERVICE.key,)
    assert SERVICE.key not in record(plan.parent_after).resources


def test_a_kind_the_stack_drops_is_listed_for_pruning_and_then_forgotten(created: ApplyPlan) -> None:
    plan = plan_apply(
        update(2, remove=(CLUSTER_ROLE.key,)), holding(1, *SHOP), created.parent_after, cluster("shop")
    )
    role = GroupKind("rbac.authorization.k8s.io", "ClusterRole")
    assert role in plan.prune.group_kinds
    assert role in record(plan.parent_before).group_kinds
    assert role not in record(plan.parent_after).group_kinds
    assert plan.prune.select(members(plan, *SHOP)) == (CLUSTER_ROLE.key,)


def test_a_full_state_prunes_every_other_member_even_of_kinds_no_longer_recorded_as_held() -> None:
    interrupted = RecordedState(
        STACK,
        group_kinds=frozenset(GroupKind.of(r.key) for r in SHOP),
        created_namespaces=frozenset({"shop"}),
    )
    plan = plan_apply(
        update(3, CONFIG, full_state=True), UNKNOWN, parent_manifest(interrupted), cluster("shop")
    )
    # The namespace still holds the ConfigMap, so it stays, though Brokkr created it.
    assert plan.prune.select(members(plan, *SHOP)) == (SERVICE.key, DEPLOYMENT.key, CLUSTER_ROLE.key)


def test_a_delta_on_top_of_an_unknown_holding_prunes_nothing(created: ApplyPlan) -> None:
    plan = plan_apply(update(2, CONFIG_DEBUG), UNKNOWN, created.parent_after, cluster("shop"))
    assert plan.prune.select(members(plan, *SHOP)) == ()


def test_members_of_other_stacks_and_unlabelled_objects_are_never_pruned(created: ApplyPlan) -> None:
    plan = plan_apply(
        update(2, remove=(SERVICE.key,)), holding(1, *SHOP), created.parent_after, cluster("shop")
    )
    found = [live(SERVICE), live(SERVICE, "applyset-someone-else-v1")]
    assert plan.prune.select(found) == ()


# -- namespaces ----------------------------------------------------------------------------------


def test_a_namespace_that_existed_before_is_applied_but_never_recorded_as_created() -> None:
    plan = plan_apply(update(1, *SHOP, full_state=True), UNKNOWN, None, cluster("shop"))
    assert kinds(plan.dry_run) == ["Namespace", "ClusterRole", "ConfigMap", "Service", "Deployment"]
    assert record(plan.parent_after).created_namespaces == frozenset()
    removal = plan_removal(STACK, holding(1, *SHOP), plan.parent_after)
    assert NAMESPACE.key not in removal.prune.select(members(plan, *SHOP))


def test_a_namespace_brokkr_created_is_pruned_once_the_stack_no_longer_uses_it(created: ApplyPlan) -> None:
    other = desired("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: default}
""")
    remove = (NAMESPACE.key, CONFIG.key, DEPLOYMENT.key, SERVICE.key)
    plan = plan_apply(
        update(2, other, remove=remove), holding(1, *SHOP), created.parent_after, cluster("shop")
    )
    assert plan.prune.select(members(plan, *SHOP)) == (SERVICE.key, DEPLOYMENT.key, CONFIG.key, NAMESPACE.key)
    assert record(plan.parent_after).created_namespaces == frozenset()


def test_objects_in_a_namespace_that_neither_exists_nor_is_in_the_stack_are_dry_run_to_fail_there() -> None:
    plan = plan_apply(update(1, CONFIG, full_state=True), UNKNOWN, None, cluster())
    assert [kinds(w.steps) for w in plan.waves] == [["ConfigMap"]]
    assert kinds(plan.dry_run) == ["ConfigMap"]
    assert record(plan.parent_after).created_namespaces == frozenset()


def test_a_tampered_record_cannot_make_brokkr_delete_the_clusters_or_its_own_namespace() -> None:
    system = [
        desired(f"apiVersion: v1\nkind: Namespace\nmetadata: {{name: {name}}}")
        for name in ("kube-system", "brokkr-system")
    ]
    tampered = RecordedState(
        STACK,
        group_kinds=frozenset({GroupKind("", "Namespace")}),
        created_namespaces=frozenset({"kube-system", "brokkr-system"}),
    )
    removal = plan_removal(STACK, UNKNOWN, parent_manifest(tampered))
    assert removal.prune.select(live(ns, removal.prune.applyset_id) for ns in system) == ()


# -- custom resources ----------------------------------------------------------------------------


def test_a_crd_in_the_stack_is_established_before_its_custom_resources_are_applied() -> None:
    plan = plan_apply(update(1, CART, CRD, NAMESPACE, full_state=True), UNKNOWN, None, cluster("shop"))
    assert [(w.wave, kinds(w.steps), w.establish) for w in plan.waves] == [
        (Wave.DEFINITIONS, ["Namespace", "CustomResourceDefinition"], ("carts.shop.example.com",)),
        (Wave.NAMESPACED, ["Cart"], ()),
    ]
    # Its kind is not served until the CRD is applied, so the custom resource cannot be dry-run.
    assert kinds(plan.dry_run) == ["Namespace", "CustomResourceDefinition"]
    assert GroupKind("shop.example.com", "Cart") in record(plan.parent_after).group_kinds


def test_a_crd_whose_kind_nothing_in_the_update_uses_is_not_waited_for() -> None:
    plan = plan_apply(update(1, CRD, full_state=True), UNKNOWN, None, cluster())
    assert [w.establish for w in plan.waves] == [()]


def test_the_scope_of_a_kind_defined_in_the_stack_comes_from_its_crd() -> None:
    cluster_crd = desired(CRD_YAML.replace("scope: Namespaced", "scope: Cluster"))
    cluster_cart = desired(CART_YAML.replace("namespace: shop", "namespace: ''"))
    plan = plan_apply(update(1, cluster_cart, cluster_crd, full_state=True), UNKNOWN, None, cluster())
    assert [(w.wave, kinds(w.steps)) for w in plan.waves] == [
        (Wave.DEFINITIONS, ["CustomResourceDefinition"]),
        (Wave.CLUSTER, ["Cart"]),
    ]
    with pytest.raises(PermanentError) as error:
        plan_apply(update(1, CART, cluster_crd, full_state=True), UNKNOWN, None, cluster("shop"))
    assert [(e.key, e.reason) for e in error.value.errors] == [(CART.key, "INVALID_MANIFEST")]


def test_a_kind_served_by_the_cluster_needs_no_crd_in_the_stack() -> None:
    served = ClusterFacts(
        lambda group, kind: True if (group, kind) == ("shop.example.com", "Cart") else discovery(group, kind),
        frozenset({"shop"}),
    )
    plan = plan_apply(update(1, CART, full_state=True), UNKNOWN, None, served)
    assert kinds(plan.dry_run) == ["Cart"]


CRD_YAML = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: carts.shop.example.com}
spec:
  group: shop.example.com
  scope: Namespaced
  names: {kind: Cart, plural: carts}
  versions: [{name: v1, served: true, storage: true}]
"""
CART_YAML = """
apiVersion: shop.example.com/v1
kind: Cart
metadata: {name: default-cart, namespace: shop}
"""


# -- refusals ------------------------------------------------------------------------------------


def refusal(*resources: DesiredResource, parent: dict[str, Any] | None = None) -> PermanentError:
    with pytest.raises(PermanentError) as error:
        plan_apply(update(1, *resources, full_state=True), UNKNOWN, parent, cluster("shop"))
    return error.value


def test_an_unknown_kind_is_refused_before_anything_changes_naming_the_object() -> None:
    error = refusal(CONFIG, CART)
    assert error.reason == "MISSING_KIND"
    assert [(e.key, e.reason) for e in error.errors] == [(CART.key, "MISSING_KIND")]
    assert "shop.example.com" in error.errors[0].message


def test_every_bad_object_is_named_at_once() -> None:
    no_namespace = desired("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: orphan}")
    namespaced_role = desired(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r, namespace: shop}"
    )
    error = refusal(no_namespace, namespaced_role, CONFIG)
    assert sorted((e.key.name, e.reason) for e in error.errors) == [
        ("orphan", "NAMESPACE_REQUIRED"),
        ("r", "INVALID_MANIFEST"),
    ]


def with_manifest(resource: DesiredResource, manifest: str) -> DesiredResource:
    return DesiredResource(resource.key, resource.content_hash, manifest)


@pytest.mark.parametrize(
    ("resource", "problem"),
    [
        (with_manifest(CONFIG, "{not json"), "not JSON"),
        (with_manifest(CONFIG, "[]"), "not a JSON object"),
        (with_manifest(CONFIG, SERVICE.manifest), "not the object its key names"),
        (
            desired("""
apiVersion: v1
kind: ConfigMap
metadata: {name: c, namespace: shop, labels: {applyset.kubernetes.io/part-of: applyset-other-v1}}
"""),
            "set by Brokkr",
        ),
        (
            desired("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop, labels: [a]}"),
            "not a map",
        ),
        (
            desired(
                "apiVersion: v1\nkind: Secret\nmetadata: {name: brokkr-stack-x, namespace: brokkr-system}"
            ),
            "Brokkr's records",
        ),
    ],
    ids=["not json", "not an object", "another object", "another applyset", "labels not a map", "a parent"],
)
def test_manifests_that_cannot_be_applied_as_sent_are_refused(
    resource: DesiredResource, problem: str
) -> None:
    error = refusal(resource)
    assert [(e.key, e.reason) for e in error.errors] == [(resource.key, "INVALID_MANIFEST")]
    assert problem in error.errors[0].message


def test_a_manifest_already_labelled_into_this_stacks_applyset_is_accepted(created: ApplyPlan) -> None:
    obj = json.loads(CONFIG.manifest)
    obj["metadata"]["labels"] = {PART_OF_LABEL: created.prune.applyset_id}
    plan = plan_apply(update(1, desired(json.dumps(obj)), full_state=True), UNKNOWN, None, cluster("shop"))
    assert kinds(plan.dry_run) == ["ConfigMap"]


def test_the_parent_of_another_tool_is_left_alone() -> None:
    foreign = parent_manifest(RecordedState(STACK))
    foreign["metadata"]["annotations"]["applyset.kubernetes.io/tooling"] = "kubectl/v1.31"
    assert refusal(CONFIG, parent=foreign).reason == "PARENT_CONFLICT"
    removal = plan_removal(STACK, holding(1, CONFIG), foreign)
    assert (removal.parent_before, removal.delete_parent) == (None, False)
    assert removal.prune.select([live(CONFIG, removal.prune.applyset_id)]) == ()


def test_a_damaged_parent_is_rewritten_and_the_session_tells_what_to_keep(created: ApplyPlan) -> None:
    damaged = json.loads(json.dumps(created.parent_after))
    damaged["metadata"]["annotations"]["brokkr.io/stack-id"] = "someone-else"
    plan = plan_apply(update(2, CONFIG_DEBUG), holding(1, *SHOP), damaged, cluster("shop"))
    assert record(plan.parent_after).resources[CONFIG.key] == CONFIG_DEBUG.content_hash
    assert plan.prune.select(members(plan, *SHOP)) == ()


# -- removing ------------------------------------------------------------------------------------


def test_removing_a_stack_prunes_everything_in_helms_uninstall_order_then_deletes_the_parent(
    created: ApplyPlan,
) -> None:
    removal = plan_removal(STACK, holding(1, *SHOP), created.parent_after)
    assert record(removal.parent_before).held() is UNKNOWN
    assert removal.prune.select(members(created, *SHOP)) == (
        SERVICE.key,
        DEPLOYMENT.key,
        CONFIG.key,
        CLUSTER_ROLE.key,
        NAMESPACE.key,
    )
    assert (removal.parent_namespace, removal.parent_name, removal.delete_parent) == (
        "brokkr-system",
        f"brokkr-stack-{STACK}",
        True,
    )


def test_without_a_parent_removal_prunes_the_kinds_the_session_says_it_holds() -> None:
    removal = plan_removal(STACK, holding(1, CONFIG, CLUSTER_ROLE), None)
    found = [live(r, removal.prune.applyset_id) for r in (CONFIG, CLUSTER_ROLE, DEPLOYMENT)]
    assert removal.prune.select(found) == (CONFIG.key, CLUSTER_ROLE.key)
    assert (removal.parent_before, removal.delete_parent) == (None, False)


def test_an_unsupported_stack_id_is_refused() -> None:
    with pytest.raises(PermanentError) as error:
        plan_apply(update(1, CONFIG, full_state=True, stack_id="Not/A/Name"), UNKNOWN, None, cluster("shop"))
    assert error.value.reason == "UNSUPPORTED_STACK_ID"


def test_objects_are_ordered_the_same_whatever_order_the_broker_sent() -> None:
    forwards = plan_apply(update(1, *SHOP, full_state=True), UNKNOWN, None, cluster())
    backwards = plan_apply(update(1, *reversed(SHOP), full_state=True), UNKNOWN, None, cluster())
    assert forwards == backwards
