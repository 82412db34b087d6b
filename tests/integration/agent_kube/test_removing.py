"""Removing stacks, and what pruning never touches: namespaces that were there, others' objects."""

from __future__ import annotations

import pytest

from agent.kube import Cluster
from agent.reconcile.applyset import PART_OF_LABEL, TOOLING_ANNOTATION, applyset_id
from agent.reconcile.errors import PermanentError
from brokkr_common.session.reports import ResourceOutcome
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.helpers import writes
from tests.integration.agent_kube.stacks import (
    PARENT_NAMESPACE,
    STACK,
    config_map,
    deployment,
    desired,
    holding,
    namespace,
    update,
    widget,
    widget_crd,
)
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

PARENT = f"brokkr-stack-{STACK}"


async def test_removing_a_stack_deletes_its_objects_the_namespace_it_created_and_its_record(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    change = update(
        1,
        desired(namespace("shop")),
        desired(widget_crd()),
        desired(widget()),
        desired(config_map("a")),
        desired(deployment()),
        full_state=True,
    )
    await cluster.apply(change, UNKNOWN)

    results = await cluster.remove(STACK, holding(change))

    assert [(r.key.kind, r.outcome) for r in results] == [
        ("Widget", ResourceOutcome.PRUNED),
        ("Deployment", ResourceOutcome.PRUNED),
        ("ConfigMap", ResourceOutcome.PRUNED),
        ("CustomResourceDefinition", ResourceOutcome.PRUNED),
        ("Namespace", ResourceOutcome.PRUNED),
    ]
    assert kube_api.get_object("v1", "Namespace", None, "shop") is None
    assert kube_api.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition") == []
    assert kube_api.get_object("v1", "Secret", PARENT_NAMESPACE, PARENT) is None
    assert await cluster.recorded() == {}


async def test_a_namespace_that_existed_before_the_stack_is_kept(kube_api: KubeApi, cluster: Cluster) -> None:
    kube_api.put_object(namespace("shop"))
    change = update(1, desired(namespace("shop")), desired(config_map("a")), full_state=True)
    await cluster.apply(change, UNKNOWN)

    results = await cluster.remove(STACK, holding(change))

    assert [r.key.kind for r in results] == ["ConfigMap"]
    assert kube_api.get_object("v1", "Namespace", None, "shop") is not None
    assert kube_api.get_object("v1", "ConfigMap", "shop", "a") is None


async def test_objects_of_another_applyset_or_tool_are_never_pruned(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    kube_api.put_object(namespace("shop"))
    other_set = applyset_id("other", "elsewhere", "ConfigMap", "")
    theirs = config_map("theirs")
    theirs["metadata"]["labels"] = {PART_OF_LABEL: other_set}
    kube_api.put_object(theirs)
    kube_api.put_object(config_map("unlabelled"))
    first = update(1, desired(config_map("a")), desired(config_map("b")), full_state=True)
    await cluster.apply(first, UNKNOWN)

    pruned = await cluster.apply(update(2, desired(config_map("a")), full_state=True), holding(first))
    removed = await cluster.remove(STACK, UNKNOWN)

    assert [r.key.name for r in pruned if r.outcome is ResourceOutcome.PRUNED] == ["b"]
    assert [r.key.name for r in removed] == ["a"]
    assert [cm["metadata"]["name"] for cm in kube_api.list_objects("v1", "ConfigMap", "shop")] == [
        "theirs",
        "unlabelled",
    ]


async def test_a_parent_of_another_tool_is_left_alone(kube_api: KubeApi, cluster: Cluster) -> None:
    kube_api.put_object(namespace("shop"))
    kube_api.put_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": PARENT,
                "namespace": PARENT_NAMESPACE,
                "annotations": {TOOLING_ANNOTATION: "kubectl/v1.33"},
            },
        }
    )
    kube_api.clear_requests()

    with pytest.raises(PermanentError) as raised:
        await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)
    removed = await cluster.remove(STACK, UNKNOWN)

    assert raised.value.reason == "PARENT_CONFLICT"
    assert removed == ()
    assert writes(kube_api) == []
    assert kube_api.get_object("v1", "Secret", PARENT_NAMESPACE, PARENT) is not None
