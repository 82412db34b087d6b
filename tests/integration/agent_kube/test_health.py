"""Reading a stack's health back from the cluster, and probing the API for heartbeats."""

from __future__ import annotations

import pytest

from agent.kube import Cluster
from brokkr_common.session.reports import Health, StackHealth
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.stacks import (
    STACK,
    Obj,
    config_map,
    deployment,
    desired,
    namespace,
    ref,
    update,
)
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

STACK_OBJECTS = (namespace("shop"), config_map("a"), deployment())
KEYS = [desired(obj).key for obj in STACK_OBJECTS]
ROLLED_OUT = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}
ROLLING = {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 0}


async def apply_stack(cluster: Cluster) -> None:
    await cluster.apply(update(1, *map(desired, STACK_OBJECTS), full_state=True), UNKNOWN)


def pod(name: str, app: str, waiting: str = "") -> Obj:
    state = {"waiting": {"reason": waiting, "message": "back-off restarting"}} if waiting else {"running": {}}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": "nginx:1.27"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": app, "ready": not waiting, "restartCount": 4, "state": state}],
        },
    }


def by_kind(health: StackHealth) -> dict[str, tuple[Health, str]]:
    return {r.key.kind: (r.health, r.reason) for r in health.resources}


async def test_a_deployment_is_progressing_until_its_rollout_is_done(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    await apply_stack(cluster)
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLING)

    rolling = await cluster.health(STACK, ref(1), KEYS)
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLED_OUT)
    rolled_out = await cluster.health(STACK, ref(1), KEYS)

    assert (rolling.health, by_kind(rolling)["Deployment"]) == (
        Health.PROGRESSING,
        (Health.PROGRESSING, "RollingOut"),
    )
    assert rolled_out.health is Health.HEALTHY
    assert rolled_out.deployment_object == ref(1)
    assert {r.health for r in rolled_out.resources} == {Health.HEALTHY}


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "web"}},
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]},
    ],
    ids=["labels", "expressions"],
)
async def test_a_crash_looping_pod_makes_its_deployment_and_the_stack_fail(
    kube_api: KubeApi, cluster: Cluster, selector: Obj
) -> None:
    web = deployment()
    web["spec"]["selector"] = selector
    await cluster.apply(
        update(1, *map(desired, [namespace("shop"), config_map("a"), web]), full_state=True), UNKNOWN
    )
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLING)
    kube_api.put_object(pod("web-1", "web", waiting="CrashLoopBackOff"))
    kube_api.put_object(pod("other-1", "other", waiting="ImagePullBackOff"))

    health = await cluster.health(STACK, ref(1), KEYS)

    assert health.health is Health.FAILING
    assert by_kind(health)["Deployment"] == (Health.FAILING, "CrashLoopBackOff")
    assert "web-1" in next(r.message for r in health.resources if r.key.kind == "Deployment")


async def test_pods_of_other_workloads_do_not_count(kube_api: KubeApi, cluster: Cluster) -> None:
    await apply_stack(cluster)
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLING)
    kube_api.put_object(pod("other-1", "other", waiting="CrashLoopBackOff"))

    health = await cluster.health(STACK, ref(1), KEYS)

    assert by_kind(health)["Deployment"] == (Health.PROGRESSING, "RollingOut")


async def test_a_deleted_object_is_missing_and_an_unreadable_one_unknown(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    await apply_stack(cluster)
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLED_OUT)
    kube_api.delete_object("apps/v1", "Deployment", "shop", "web")
    kube_api.deny("*", "configmaps")

    health = await cluster.health(STACK, ref(1), KEYS)

    assert by_kind(health) == {
        "Namespace": (Health.HEALTHY, ""),
        "ConfigMap": (Health.UNKNOWN, "FORBIDDEN"),
        "Deployment": (Health.FAILING, "Missing"),
    }
    assert health.health is Health.FAILING


async def test_health_of_a_stack_costs_a_list_per_kind_not_a_read_per_object(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    objects = [namespace("shop"), *(config_map(f"cm-{n}") for n in range(20))]
    await cluster.apply(update(1, *map(desired, objects), full_state=True), UNKNOWN)
    kube_api.clear_requests()

    health = await cluster.health(STACK, ref(1), [desired(obj).key for obj in objects])

    assert health.health is Health.HEALTHY
    assert len(health.resources) == 21
    assert len(kube_api.requests()) == 2


async def test_the_probe_measures_the_api_and_notices_when_it_is_gone(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    reachable, latency_ms = await cluster.probe()
    assert [r.path for r in kube_api.requests()] == ["/version"]
    kube_api.stop()

    assert reachable is True
    assert isinstance(latency_ms, int)
    assert latency_ms >= 0
    assert await cluster.probe() == (False, 0)
