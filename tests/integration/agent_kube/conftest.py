"""The agent's Kubernetes layer against the kube double: real HTTP, the real official client.

`cluster` is a `Cluster` for the test's own double (`kube_api`, from the plugin each test module
names in `pytest_plugins`), with the parent namespace in place and a retry policy whose waits are
recorded in `waits` instead of being slept.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy
from tests.integration.agent_kube.stacks import PARENT_NAMESPACE, namespace
from tests.kube_double.handle import KubeApi


@pytest.fixture
def settings(kube_api: KubeApi) -> KubernetesSettings:
    return KubernetesSettings(
        kubeconfig=kube_api.kubeconfig_path, request_timeout_seconds=5, max_apply_retries=3
    )


@pytest.fixture
def waits() -> list[float]:
    """The backoffs the retry policy asked for, in seconds."""
    return []


@pytest.fixture
def retry(settings: KubernetesSettings, waits: list[float]) -> RetryPolicy:
    async def record(seconds: float) -> None:
        waits.append(seconds)

    return RetryPolicy(retries=settings.max_apply_retries, sleep=record)


@pytest.fixture
async def cluster(
    kube_api: KubeApi, settings: KubernetesSettings, retry: RetryPolicy
) -> AsyncIterator[Cluster]:
    kube_api.put_object(namespace(PARENT_NAMESPACE))
    opened = Cluster(settings, retry=retry, establish_timeout_seconds=10)
    try:
        yield opened
    finally:
        opened.close()
