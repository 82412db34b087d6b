"""Clients of the kube double for its own tests: typed APIs, the dynamic client, and the raw ApiClient."""

from __future__ import annotations

from pathlib import Path

import pytest
from kubernetes import client, dynamic

from tests.kube_double.handle import KubeApi


@pytest.fixture
def api_client(kube_api: KubeApi) -> client.ApiClient:
    return kube_api.api_client()


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def dyn(api_client: client.ApiClient, tmp_path: Path) -> dynamic.DynamicClient:
    """A dynamic client whose discovery cache lives in the test's own directory."""
    return dynamic.DynamicClient(api_client, cache_file=str(tmp_path / "discovery.json"))
