"""Applying stacks: waves, CRDs awaited, honest outcomes, no writes for a no-op, pruning."""

from __future__ import annotations

import asyncio

import pytest

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy
from agent.reconcile.errors import PermanentError, TemporaryError
from brokkr_common.session.reports import ResourceOutcome
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.helpers import until, writes
from tests.integration.agent_kube.stacks import (
    PARENT_NAMESPACE,
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

CREATED, CONFIGURED, UNCHANGED, PRUNED = (
    ResourceOutcome.CREATED,
    ResourceOutcome.CONFIGURED,
    ResourceOutcome.UNCHANGED,
    ResourceOutcome.PRUNED,
)


def crd_exists(kube_api: KubeApi) -> bool:
    crd = "apiextensions.k8s.io/v1", "CustomResourceDefinition", None, "widgets.example.com"
    return kube_api.get_object(*crd) is not None


async def test_a_stack_bringing_its_crd_is_applied_in_waves_once_the_crd_is_established(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    kube_api.auto_establish_crds = False
    change = update(
        1,
        desired(widget()),
        desired(config_map("settings", level="info")),
        desired(widget_crd()),
        desired(namespace("shop")),
        full_state=True,
    )

    applying = asyncio.create_task(cluster.apply(change, UNKNOWN))
    await until(lambda: crd_exists(kube_api))
    assert not applying.done()
    assert not [r for r in kube_api.requests() if r.path.startswith("/apis/example.com/")]
    kube_api.establish_crd("widgets.example.com")
    results = await asyncio.wait_for(applying, 10)

    assert [(r.key.kind, r.outcome) for r in results] == [
        ("Namespace", CREATED),
        ("CustomResourceDefinition", CREATED),
        ("ConfigMap", CREATED),
        ("Widget", CREATED),
    ]
    assert kube_api.get_object("example.com/v1", "Widget", "shop", "gear")["spec"] == {"size": 3}
    assert kube_api.get_object("v1", "ConfigMap", "shop", "settings")["data"] == {"level": "info"}


async def test_every_object_is_dry_run_before_its_real_apply(kube_api: KubeApi, cluster: Cluster) -> None:
    change = update(1, desired(namespace("shop")), desired(widget_crd()), desired(widget()), full_state=True)

    await cluster.apply(change, UNKNOWN)

    patches = [(r.path, "dryRun" in r.query) for r in kube_api.requests() if r.method == "PATCH"]
    objects = [path for path, dry in patches if not dry and "/secrets/brokkr-stack-" not in path]
    assert len(objects) == 3
    for path in objects:
        assert patches.index((path, True)) < patches.index((path, False)), path


async def test_an_update_configures_what_changed_and_reports_the_rest_unchanged(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    first = update(1, desired(namespace("shop")), desired(config_map("a", level="info")), full_state=True)
    await cluster.apply(first, UNKNOWN)
    second = update(
        2, desired(namespace("shop")), desired(config_map("a", level="debug")), desired(deployment())
    )

    results = await cluster.apply(second, holding(first))

    assert {r.key.kind: r.outcome for r in results} == {
        "Namespace": UNCHANGED,
        "ConfigMap": CONFIGURED,
        "Deployment": CREATED,
    }
    assert kube_api.get_object("v1", "ConfigMap", "shop", "a")["data"] == {"level": "debug"}


async def test_a_no_op_re_apply_writes_nothing(kube_api: KubeApi, cluster: Cluster) -> None:
    change = update(
        1,
        desired(namespace("shop")),
        desired(widget_crd()),
        desired(widget()),
        desired(config_map("a", level="info")),
        desired(deployment()),
        full_state=True,
    )
    await cluster.apply(change, UNKNOWN)
    kube_api.clear_requests()
    stored = kube_api.write_count

    results = await cluster.apply(change, holding(change))

    assert {r.outcome for r in results} == {UNCHANGED}
    assert len(results) == 5
    assert writes(kube_api) == []
    assert kube_api.write_count == stored


async def test_a_re_apply_recreates_an_object_deleted_behind_the_agents_back(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    change = update(
        1, desired(namespace("shop")), desired(config_map("a")), desired(config_map("b")), full_state=True
    )
    await cluster.apply(change, UNKNOWN)
    kube_api.delete_object("v1", "ConfigMap", "shop", "b")

    results = await cluster.apply(change, holding(change))

    assert {r.key.name: r.outcome for r in results} == {"shop": UNCHANGED, "a": UNCHANGED, "b": CREATED}
    assert kube_api.get_object("v1", "ConfigMap", "shop", "b") is not None


async def test_an_object_removed_from_the_stack_is_pruned(kube_api: KubeApi, cluster: Cluster) -> None:
    first = update(
        1,
        desired(namespace("shop")),
        desired(config_map("a")),
        desired(config_map("b")),
        desired(deployment()),
        full_state=True,
    )
    await cluster.apply(first, UNKNOWN)
    gone = desired(deployment()).key

    results = await cluster.apply(update(2, remove=[gone]), holding(first))

    assert [(r.key, r.outcome) for r in results] == [(gone, PRUNED)]
    assert kube_api.get_object("apps/v1", "Deployment", "shop", "web") is None
    assert kube_api.get_object("v1", "ConfigMap", "shop", "b") is not None


async def test_a_full_state_prunes_everything_it_leaves_out(kube_api: KubeApi, cluster: Cluster) -> None:
    first = update(1, desired(namespace("shop")), desired(config_map("a")), desired(config_map("b")))
    await cluster.apply(first, UNKNOWN)

    results = await cluster.apply(
        update(2, desired(namespace("shop")), desired(config_map("a")), full_state=True), UNKNOWN
    )

    assert {r.key.name: r.outcome for r in results} == {"shop": UNCHANGED, "a": UNCHANGED, "b": PRUNED}
    assert kube_api.get_object("v1", "ConfigMap", "shop", "b") is None


async def test_a_crd_never_established_fails_temporarily_naming_it(
    kube_api: KubeApi, settings: KubernetesSettings, retry: RetryPolicy
) -> None:
    kube_api.put_object(namespace(PARENT_NAMESPACE))
    kube_api.auto_establish_crds = False
    impatient = Cluster(settings, retry=retry, establish_timeout_seconds=0.2)
    change = update(1, desired(namespace("shop")), desired(widget_crd()), desired(widget()), full_state=True)

    try:
        with pytest.raises(TemporaryError) as raised:
            await impatient.apply(change, UNKNOWN)
    finally:
        impatient.close()

    assert raised.value.reason == "NOT_ESTABLISHED"
    assert "widgets.example.com" in raised.value.message
    assert kube_api.list_objects("apiextensions.k8s.io/v1", "CustomResourceDefinition") != []


async def test_a_failure_only_the_real_apply_meets_is_reported_and_the_next_apply_converges(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    # The namespace disappears after the dry run passed, while the agent waits for the CRD.
    kube_api.put_object(namespace("shop"))
    kube_api.auto_establish_crds = False
    change = update(
        1,
        desired(widget_crd("Cluster")),
        desired(widget(namespace="")),
        desired(config_map("a")),
        full_state=True,
    )
    applying = asyncio.create_task(cluster.apply(change, UNKNOWN))
    await until(lambda: crd_exists(kube_api))
    kube_api.delete_object("v1", "Namespace", None, "shop")
    kube_api.establish_crd("widgets.example.com")

    with pytest.raises(PermanentError) as raised:
        await asyncio.wait_for(applying, 10)

    assert raised.value.reason == "MISSING_NAMESPACE"
    assert [e.key for e in raised.value.errors] == [desired(config_map("a")).key]
    assert (await cluster.recorded())[change.stack_id].is_unknown
    kube_api.put_object(namespace("shop"))
    results = await cluster.apply(change, UNKNOWN)
    assert {r.key.kind: r.outcome for r in results} == {
        "CustomResourceDefinition": UNCHANGED,
        "Widget": UNCHANGED,
        "ConfigMap": CREATED,
    }
    assert await cluster.recorded() == {change.stack_id: holding(change)}
