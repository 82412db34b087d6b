"""An agent confined to one namespace (`kubernetes.namespace`), against a double that forbids it
everything outside that namespace, as a Role instead of a ClusterRole would: it applies, records,
prunes, removes and reads health there, refuses what lies outside before writing anything, and
never lists cluster-wide."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy
from agent.reconcile.errors import PermanentError
from brokkr_common.session.reports import Health, ResourceOutcome
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.helpers import writes
from tests.integration.agent_kube.stacks import (
    STACK,
    Obj,
    config_map,
    deployment,
    desired,
    holding,
    namespace,
    update,
    widget_crd,
)
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

SCOPE = "shop"
PARENT = f"brokkr-stack-{STACK}"
#: Requests that name no namespace and are not discovery: what a Role in `shop` does not allow.
DISCOVERY = ("/api", "/apis", "/version")


def unplaced(obj: Obj) -> Obj:
    """`obj` without a namespace: the agent places it in its own."""
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "namespace"}}


def namespaced_requests_only(kube_api: KubeApi) -> list[str]:
    """Every resource request that is not inside the namespace (discovery documents excepted)."""
    strays = []
    for r in kube_api.requests():
        discovery = r.path in DISCOVERY or (r.path.startswith("/apis/") and r.path.count("/") <= 3)
        discovery = discovery or (r.path.startswith("/api/v1") and r.path.count("/") == 2)
        if not discovery and f"/namespaces/{SCOPE}/" not in r.path:
            strays.append(f"{r.verb} {r.path}")
    return strays


@pytest.fixture
async def confined(kube_api: KubeApi, retry: RetryPolicy) -> AsyncIterator[Cluster]:
    kube_api.put_object(namespace(SCOPE))
    kube_api.confine(SCOPE)
    settings = KubernetesSettings(kubeconfig=kube_api.kubeconfig_path, namespace=SCOPE, max_apply_retries=3)
    opened = Cluster(settings, retry=retry)
    try:
        yield opened
    finally:
        opened.close()


async def test_a_confined_agent_applies_records_and_prunes_in_its_namespace_only(
    kube_api: KubeApi, confined: Cluster
) -> None:
    first = update(1, desired(config_map("a")), desired(unplaced(config_map("b"))), full_state=True)

    results = await confined.apply(first, UNKNOWN)
    second = update(
        2, desired(config_map("a", level="debug")), remove=[desired(unplaced(config_map("b"))).key]
    )
    pruned = await confined.apply(second, holding(first))

    # The object sent without a namespace is in the agent's, and reported under the key as sent.
    assert {(r.key, r.outcome) for r in results} == {
        (ResourceKey("", "v1", "ConfigMap", "shop", "a"), ResourceOutcome.CREATED),
        (ResourceKey("", "v1", "ConfigMap", "", "b"), ResourceOutcome.CREATED),
    }
    assert {(r.key, r.outcome) for r in pruned} == {
        (ResourceKey("", "v1", "ConfigMap", "shop", "a"), ResourceOutcome.CONFIGURED),
        (ResourceKey("", "v1", "ConfigMap", "", "b"), ResourceOutcome.PRUNED),
    }
    assert kube_api.get_object("v1", "ConfigMap", SCOPE, "b") is None
    assert kube_api.get_object("v1", "ConfigMap", SCOPE, "a")["data"] == {"level": "debug"}
    assert kube_api.get_object("v1", "Secret", SCOPE, PARENT) is not None
    assert namespaced_requests_only(kube_api) == []
    assert all(r.status != 403 for r in kube_api.requests())


async def test_a_restart_of_a_confined_agent_reports_the_keys_as_the_broker_sent_them(
    kube_api: KubeApi, confined: Cluster, retry: RetryPolicy
) -> None:
    first = update(1, desired(unplaced(config_map("b"))), full_state=True)
    await confined.apply(first, UNKNOWN)

    held = await confined.recorded()

    assert held == {STACK: holding(first)}


async def test_objects_outside_the_namespace_are_refused_by_name_before_anything_is_written(
    kube_api: KubeApi, confined: Cluster
) -> None:
    kube_api.clear_requests()
    change = update(
        1,
        desired(namespace("other")),
        desired(widget_crd()),
        desired(config_map("elsewhere", namespace="other")),
        desired(config_map("fine")),
        full_state=True,
    )

    with pytest.raises(PermanentError) as raised:
        await confined.apply(change, UNKNOWN)

    assert raised.value.reason == "OUTSIDE_NAMESPACE_SCOPE"
    refused = {(e.key.kind, e.key.name): e for e in raised.value.errors}
    assert set(refused) == {
        ("Namespace", "other"),
        ("CustomResourceDefinition", "widgets.example.com"),
        ("ConfigMap", "elsewhere"),
    }
    assert all(e.reason == "OUTSIDE_NAMESPACE_SCOPE" for e in refused.values())
    assert "cluster-scoped" in refused[("Namespace", "other")].message
    assert "'other' is outside this agent's namespace 'shop'" in refused[("ConfigMap", "elsewhere")].message
    assert writes(kube_api) == []
    assert namespaced_requests_only(kube_api) == []


async def test_removal_and_health_read_only_in_the_namespace(kube_api: KubeApi, confined: Cluster) -> None:
    first = update(1, desired(unplaced(deployment())), desired(config_map("a")), full_state=True)
    await confined.apply(first, UNKNOWN)
    kube_api.clear_requests()

    health = await confined.health(STACK, first.deployment_object, holding(first).resources)
    removed = await confined.remove(STACK, holding(first))

    assert {r.key for r in health.resources} == {r.key for r in first.apply}
    assert {r.key: r.health for r in health.resources}[
        desired(unplaced(deployment())).key
    ] == Health.PROGRESSING
    assert {(r.key, r.outcome) for r in removed} == {(r.key, ResourceOutcome.PRUNED) for r in first.apply}
    assert kube_api.list_objects("apps/v1", "Deployment", SCOPE) == []
    assert kube_api.get_object("v1", "Secret", SCOPE, PARENT) is None
    assert namespaced_requests_only(kube_api) == []
    lists = [r.path for r in kube_api.requests() if r.verb == "list"]
    assert lists and all(
        path.startswith(("/api/v1/namespaces/shop/", "/apis/apps/v1/namespaces/shop/")) for path in lists
    )


async def test_watches_of_a_confined_agent_are_in_its_namespace(kube_api: KubeApi, confined: Cluster) -> None:
    first = update(1, desired(unplaced(deployment())), full_state=True)
    await confined.apply(first, UNKNOWN)

    await confined.watch_health({STACK: list(holding(first).resources)})
    try:
        assert list(confined.watched) == ["/apis/apps/v1/namespaces/shop/deployments"]
    finally:
        await confined.stop_watching()


def test_a_confined_agent_keeps_its_records_in_its_namespace(kube_api: KubeApi) -> None:
    settings = KubernetesSettings(kubeconfig=kube_api.kubeconfig_path, namespace=SCOPE)

    with pytest.raises(ValueError, match="keeps its records there"):
        Cluster(settings, parent_namespace="brokkr-system")
