"""What the cluster records of each stack, and how a fresh agent reads it back after a restart."""

from __future__ import annotations

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy
from agent.kube.recording import PARENTS_PER_PAGE
from agent.reconcile.applyset import ID_LABEL, MANAGED_BY, MANAGED_BY_LABEL
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.stacks import (
    PARENT_NAMESPACE,
    STACK,
    config_map,
    deployment,
    desired,
    holding,
    namespace,
    update,
)
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

OTHER_STACK = "9d0c1b2a-3e4f-4a5b-8c6d-7e8f9a0b1c2d"


async def test_a_restarted_agent_holds_exactly_what_it_applied(
    kube_api: KubeApi, cluster: Cluster, settings: KubernetesSettings, retry: RetryPolicy
) -> None:
    first = update(1, desired(namespace("shop")), desired(config_map("a")), desired(deployment()))
    await cluster.apply(first, UNKNOWN)
    second = update(2, desired(config_map("a", level="debug")), remove=[desired(deployment()).key])
    await cluster.apply(second, holding(first))
    other = update(7, desired(config_map("b", namespace="default")), full_state=True, stack_id=OTHER_STACK)
    await cluster.apply(other, UNKNOWN)

    restarted = Cluster(settings, retry=retry)
    try:
        held = await restarted.recorded()
    finally:
        restarted.close()

    assert held == {STACK: holding(second, holding(first)), OTHER_STACK: holding(other)}
    assert held[STACK].resources == {
        desired(namespace("shop")).key: desired(namespace("shop")).content_hash,
        desired(config_map("a", level="debug")).key: desired(config_map("a", level="debug")).content_hash,
    }


async def test_secrets_that_are_not_intact_brokkr_records_are_not_reported(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    await cluster.apply(update(1, desired(config_map("a", namespace="default")), full_state=True), UNKNOWN)
    labels = {MANAGED_BY_LABEL: MANAGED_BY, ID_LABEL: "applyset-forged-v1"}
    kube_api.put_object(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": f"brokkr-stack-{OTHER_STACK}",
                "namespace": PARENT_NAMESPACE,
                "labels": labels,
            },
        }
    )

    assert list(await cluster.recorded()) == [STACK]


async def test_every_record_is_read_back_however_many_pages_they_take(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    stacks = [f"00000000-0000-4000-8000-{n:012d}" for n in range(PARENTS_PER_PAGE + 3)]
    changes = [
        update(1, desired(config_map(f"cm-{n}", namespace="default")), full_state=True, stack_id=stack)
        for n, stack in enumerate(stacks)
    ]
    for change in changes:
        await cluster.apply(change, UNKNOWN)

    assert await cluster.recorded() == {change.stack_id: holding(change) for change in changes}
    assert len([r for r in kube_api.requests() if r.path.endswith("/secrets") and r.method == "GET"]) == 2


async def test_a_cluster_wide_agent_creates_its_records_namespace_and_a_confined_one_does_not(
    kube_api: KubeApi, settings: KubernetesSettings, retry: RetryPolicy
) -> None:
    fresh = Cluster(settings, retry=retry, parent_namespace="brokkr-records")
    try:
        assert await fresh.recorded() == {}
        assert await fresh.recorded() == {}  # it exists now; nothing to do
    finally:
        fresh.close()
    confined = Cluster(settings.model_copy(update={"namespace": "team-a"}), retry=retry)
    try:
        assert await confined.recorded() == {}  # nothing recorded in a namespace that does not exist
    finally:
        confined.close()

    assert kube_api.get_object("v1", "Namespace", None, "brokkr-records") is not None
    assert kube_api.get_object("v1", "Namespace", None, "team-a") is None
