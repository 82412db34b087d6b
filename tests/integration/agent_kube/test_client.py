"""Reaching the cluster: configuration from the agent's settings, and discovery that survives a
broken API group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.config import KubernetesSettings
from agent.kube import Cluster
from agent.reconcile.errors import TemporaryError
from brokkr_common.errors import InvalidArgument
from brokkr_common.session.reports import ResourceOutcome
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.stacks import config_map, desired, namespace, update, widget, widget_crd
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

JOB = {
    "apiVersion": "batch/v1",
    "kind": "Job",
    "metadata": {"name": "migrate", "namespace": "shop"},
    "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "m", "image": "m:1"}]}}},
}


def test_a_kubeconfig_that_cannot_be_loaded_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Cluster(KubernetesSettings(kubeconfig=tmp_path / "absent"))

    assert raised.value.field_violations[0].field == "kubernetes.kubeconfig"


def test_an_unknown_context_names_the_setting(kube_api: KubeApi) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Cluster(KubernetesSettings(kubeconfig=kube_api.kubeconfig_path, context="elsewhere"))

    assert "elsewhere" in raised.value.message


def test_outside_a_cluster_the_in_cluster_configuration_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    with pytest.raises(InvalidArgument) as raised:
        Cluster(KubernetesSettings())

    assert raised.value.reason == "KUBERNETES_CONFIG"


async def test_a_context_is_chosen_from_the_kubeconfig(kube_api: KubeApi, tmp_path: Path) -> None:
    kubeconfig = kube_api.kubeconfig()
    kubeconfig["contexts"] = [
        *kubeconfig["contexts"],
        {"name": "nowhere", "context": {"cluster": "x", "user": "y"}},
    ]
    kubeconfig["current-context"] = "nowhere"
    path = tmp_path / "two-contexts"
    path.write_text(json.dumps(kubeconfig))
    cluster = Cluster(KubernetesSettings(kubeconfig=path, context="kube-double"))
    try:
        assert (await cluster.probe())[0] is True
    finally:
        cluster.close()


async def test_a_broken_api_group_fails_only_its_own_kinds_and_only_temporarily(
    kube_api: KubeApi, cluster: Cluster
) -> None:
    kube_api.put_object(namespace("shop"))
    kube_api.fail_next("get", "^/apis/batch/v1$", 503, times=1000)

    applied = await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)
    with pytest.raises(TemporaryError) as raised:
        await cluster.apply(update(2, desired(config_map("a")), desired(JOB), full_state=True), UNKNOWN)

    assert [r.outcome for r in applied] == [ResourceOutcome.CREATED]
    assert raised.value.reason == "DISCOVERY_FAILED"
    assert "batch" in raised.value.message


async def test_a_kind_served_since_the_last_discovery_is_found(kube_api: KubeApi, cluster: Cluster) -> None:
    kube_api.put_object(namespace("shop"))
    await cluster.apply(update(1, desired(config_map("a")), full_state=True), UNKNOWN)
    kube_api.put_object(widget_crd())

    results = await cluster.apply(
        update(2, desired(config_map("a")), desired(widget()), full_state=True), UNKNOWN
    )

    assert [(r.key.kind, r.outcome) for r in results] == [
        ("ConfigMap", ResourceOutcome.UNCHANGED),
        ("Widget", ResourceOutcome.CREATED),
    ]
