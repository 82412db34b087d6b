"""Stacks the cluster refuses, and API failures: permanent ones name the object and write nothing;
temporary ones are retried with backoff."""

from __future__ import annotations

import pytest
from kubernetes import client

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy
from agent.reconcile.errors import PermanentError, TemporaryError
from brokkr_common.session.reports import ResourceOutcome
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.helpers import writes
from tests.integration.agent_kube.stacks import (
    PARENT_NAMESPACE,
    STACK,
    Obj,
    config_map,
    deployment,
    desired,
    holding,
    namespace,
    update,
)
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


@pytest.fixture
def shop(kube_api: KubeApi) -> None:
    """The namespace `shop` exists, outside any stack."""
    kube_api.put_object(namespace("shop"))


async def refused(cluster: Cluster, *objects: Obj) -> PermanentError:
    """The PermanentError applying `objects` as a fresh stack raises."""
    with pytest.raises(PermanentError) as raised:
        await cluster.apply(update(1, *map(desired, objects), full_state=True), UNKNOWN)
    return raised.value


@pytest.mark.usefixtures("shop")
async def test_fields_another_manager_owns_are_a_conflict_naming_the_object_unless_the_stack_forces(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    apps = client.AppsV1Api(kube_api.api_client())
    apps.create_namespaced_deployment("shop", deployment(replicas=3), field_manager="helm")
    change = update(1, desired(deployment(replicas=2)), full_state=True)
    kube_api.clear_requests()

    with pytest.raises(PermanentError) as raised:
        await cluster.apply(change, UNKNOWN)
    assert writes(kube_api) == []
    forcing = update(1, desired(deployment(replicas=2)), full_state=True, force_conflicts=True)
    results = await cluster.apply(forcing, UNKNOWN)
    assert {r.query.get("force", [""])[0] for r in writes(kube_api) if r.method == "PATCH"} == {"true"}

    assert raised.value.reason == "FIELD_MANAGER_CONFLICT"
    [error] = raised.value.errors
    assert error.key == desired(deployment()).key
    assert "helm" in error.message
    assert ".spec.replicas" in error.message
    assert [r.outcome for r in results] == [ResourceOutcome.CONFIGURED]
    assert kube_api.get_object("apps/v1", "Deployment", "shop", "web")["spec"]["replicas"] == 2


async def test_an_invalid_object_is_caught_by_the_dry_run_and_the_previous_version_runs_on(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    first = update(1, desired(namespace("shop")), desired(config_map("a", level="info")), full_state=True)
    await cluster.apply(first, UNKNOWN)
    kube_api.clear_requests()
    stored = kube_api.write_count
    second = update(2, desired(config_map("a", level="debug")), desired(deployment(replicas=-1)))

    with pytest.raises(PermanentError) as raised:
        await cluster.apply(second, holding(first))

    assert raised.value.reason == "INVALID_OBJECT"
    assert [(e.key, e.reason) for e in raised.value.errors] == [(desired(deployment()).key, "INVALID_OBJECT")]
    assert "spec.replicas" in raised.value.errors[0].message
    assert writes(kube_api) == []
    assert kube_api.write_count == stored
    assert kube_api.get_object("v1", "ConfigMap", "shop", "a")["data"] == {"level": "info"}
    assert await cluster.recorded() == {STACK: holding(first)}


@pytest.mark.usefixtures("shop")
async def test_every_refused_object_is_named_at_once(kube_api: KubeApi, cluster: Cluster) -> None:
    error = await refused(
        cluster, config_map("fine"), deployment("web", replicas=-1), deployment("api", replicas=-2)
    )

    assert sorted(e.key.name for e in error.errors) == ["api", "web"]
    assert writes(kube_api) == []


async def test_a_kind_the_cluster_does_not_serve_is_named(kube_api: KubeApi, cluster: Cluster) -> None:
    gizmo = {"apiVersion": "example.org/v1", "kind": "Gizmo", "metadata": {"name": "g", "namespace": "shop"}}

    error = await refused(cluster, namespace("shop"), gizmo)

    assert error.reason == "MISSING_KIND"
    assert [e.key.kind for e in error.errors] == ["Gizmo"]
    assert writes(kube_api) == []


async def test_an_object_in_a_namespace_that_does_not_exist_is_named(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    error = await refused(
        cluster, namespace("shop"), config_map("a"), config_map("lost", namespace="nowhere")
    )

    assert error.reason == "MISSING_NAMESPACE"
    assert [(e.key.namespace, e.key.name) for e in error.errors] == [("nowhere", "lost")]
    assert writes(kube_api) == []


@pytest.mark.usefixtures("shop")
async def test_what_rbac_forbids_is_permanent_and_named(kube_api: KubeApi, cluster: Cluster) -> None:
    kube_api.deny("patch", "configmaps")

    error = await refused(cluster, config_map("a"), deployment())

    assert error.reason == "FORBIDDEN"
    assert [e.key.kind for e in error.errors] == ["ConfigMap"]
    assert "cannot patch resource" in error.errors[0].message
    assert writes(kube_api) == []


@pytest.mark.usefixtures("shop")
async def test_a_field_the_schema_does_not_declare_is_permanent_despite_the_500(
    kube_api: KubeApi, cluster: Cluster, waits: list[float]
) -> None:
    odd = config_map("a") | {"spec": {"level": "info"}}

    error = await refused(cluster, odd)

    assert error.reason == "INVALID_OBJECT"
    assert "field not declared in schema" in error.errors[0].message
    assert waits == []
    assert writes(kube_api) == []


@pytest.mark.usefixtures("shop")
async def test_unavailable_api_is_retried_until_it_answers(
    kube_api: KubeApi, cluster: Cluster, waits: list[float]
) -> None:
    kube_api.fail_next("patch", "/configmaps/a$", 503, times=2)

    results = await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)

    assert [r.outcome for r in results] == [ResourceOutcome.CREATED]
    assert len(waits) == 2


@pytest.mark.usefixtures("shop")
async def test_throttling_is_retried_no_sooner_than_retry_after(
    kube_api: KubeApi, cluster: Cluster, waits: list[float]
) -> None:
    kube_api.fail_next("patch", "/configmaps/a$", 429, retry_after_seconds=7)

    results = await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)

    assert [r.outcome for r in results] == [ResourceOutcome.CREATED]
    assert waits == [7.0]


@pytest.mark.usefixtures("shop")
async def test_retries_end_and_the_failure_is_temporary_naming_the_object(
    kube_api: KubeApi, cluster: Cluster, waits: list[float]
) -> None:
    kube_api.fail_next("patch", "/configmaps/a$", 503, times=100)

    with pytest.raises(TemporaryError) as raised:
        await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)

    assert raised.value.reason == "SERVICE_UNAVAILABLE"
    assert str(desired(config_map("a")).key) in raised.value.message
    assert len(waits) == 3  # max_apply_retries
    assert writes(kube_api) == []


@pytest.mark.usefixtures("shop")
async def test_a_request_without_answer_times_out_and_is_retried(
    kube_api: KubeApi, settings: KubernetesSettings, retry: RetryPolicy, waits: list[float]
) -> None:
    kube_api.put_object(namespace(PARENT_NAMESPACE))
    kube_api.hang_next("get", "/secrets/brokkr-stack-")
    hasty = Cluster(settings.model_copy(update={"request_timeout_seconds": 0.2}), retry=retry)

    try:
        results = await hasty.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)
    finally:
        hasty.close()

    assert [r.outcome for r in results] == [ResourceOutcome.CREATED]
    assert len(waits) == 1
