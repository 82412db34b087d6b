"""Planning for an agent confined to one namespace: objects without a namespace are placed in it,
everything outside it is refused by name, and the record keeps the keys the broker sent."""

from __future__ import annotations

import pytest

from agent.reconcile.applyset import parse_parent
from agent.reconcile.errors import PermanentError
from agent.reconcile.plan import ClusterFacts, plan_apply
from brokkr_common.session.stacks import UNKNOWN
from tests.unit.agent.builders import desired, discovery, update

SCOPE = "shop"
FACTS = ClusterFacts(discovery, frozenset({SCOPE}), SCOPE, SCOPE)

PLACED = desired("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings}
data: {level: info}
""")
IN_SCOPE = desired("""
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec: {replicas: 1}
""")


def test_an_object_without_a_namespace_is_applied_in_the_agents_and_recorded_as_sent() -> None:
    plan = plan_apply(update(1, PLACED, IN_SCOPE, full_state=True), UNKNOWN, None, FACTS)

    steps = {step.key: step for wave in plan.waves for step in wave.steps}
    placed = PLACED.key._replace(namespace=SCOPE)
    assert set(steps) == {placed, IN_SCOPE.key}
    assert steps[placed].manifest["metadata"]["namespace"] == SCOPE
    assert plan.placed == {placed: PLACED.key}
    recorded = parse_parent(plan.parent_after)
    assert recorded is not None
    assert set(recorded.resources) == {PLACED.key, IN_SCOPE.key}  # what the next Hello reports
    assert recorded.parent_namespace == SCOPE
    assert plan.prune.namespaces == frozenset({SCOPE})


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", "cluster-scoped"),
        (
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: reader}\n",
            "cluster-scoped",
        ),
        (
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: other}\n",
            "'other' is outside this agent's namespace 'shop'",
        ),
    ],
)
def test_what_lies_outside_the_namespace_is_refused_by_name(text: str, why: str) -> None:
    outside = desired(text)

    with pytest.raises(PermanentError) as raised:
        plan_apply(update(1, outside, IN_SCOPE, full_state=True), UNKNOWN, None, FACTS)

    [error] = raised.value.errors
    assert (error.key, error.reason) == (outside.key, "OUTSIDE_NAMESPACE_SCOPE")
    assert why in error.message


def test_an_object_placed_onto_a_stacks_record_or_onto_another_object_is_refused() -> None:
    record = desired("apiVersion: v1\nkind: Secret\nmetadata: {name: brokkr-stack-x}\n")
    twin = desired("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings, namespace: shop}\n")

    with pytest.raises(PermanentError) as raised:
        plan_apply(update(1, record, PLACED, twin, full_state=True), UNKNOWN, None, FACTS)

    reasons = {(e.key.kind, e.key.namespace): e.reason for e in raised.value.errors}
    assert reasons[("Secret", "")] == "INVALID_MANIFEST"
    assert reasons[("ConfigMap", "")] == "INVALID_MANIFEST"
