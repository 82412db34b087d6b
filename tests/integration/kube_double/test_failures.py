"""Failure injection, denials, authentication, the request log, and the kubeconfig the fixture writes."""

from __future__ import annotations

import pytest
import urllib3
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from tests.integration.kube_double.objects import APPLY, config_map, deployment, status_of
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


def test_throttling_answers_429_with_retry_after_then_recovers(
    core: client.CoreV1Api, kube_api: KubeApi
) -> None:
    kube_api.fail_next("create", r"/configmaps$", 429, times=2, retry_after_seconds=3)

    failures = []
    for _ in range(2):
        with pytest.raises(ApiException) as raised:
            core.create_namespaced_config_map("default", config_map("settings"))
        failures.append(raised.value)
    created = core.create_namespaced_config_map("default", config_map("settings"))

    assert [f.status for f in failures] == [429, 429]
    assert failures[0].headers["Retry-After"] == "3"
    assert status_of(failures[0]) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Too many requests, please try again later.",
        "reason": "TooManyRequests",
        "details": {"retryAfterSeconds": 3},
        "code": 429,
    }
    assert created.metadata.name == "settings"


@pytest.mark.parametrize(
    ("code", "reason"), [(409, "Conflict"), (500, "InternalError"), (503, "ServiceUnavailable")]
)
def test_injected_server_errors_carry_their_reason(
    apps: client.AppsV1Api, kube_api: KubeApi, code: int, reason: str
) -> None:
    kube_api.fail_next("patch", r"/deployments/web$", code)

    with pytest.raises(ApiException) as raised:
        apps.patch_namespaced_deployment(
            "web", "default", deployment(), field_manager="brokkr", _content_type=APPLY
        )

    assert (raised.value.status, status_of(raised.value)["reason"]) == (code, reason)
    assert kube_api.get_object("apps/v1", "Deployment", "default", "web") is None


def test_only_matching_verbs_and_paths_fail(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    kube_api.fail_next("delete", r"/configmaps/settings$", 500)

    core.create_namespaced_config_map("default", config_map("settings"))
    core.read_namespaced_config_map("settings", "default")
    with pytest.raises(ApiException):
        core.delete_namespaced_config_map("settings", "default")
    core.delete_namespaced_config_map("settings", "default")


def test_a_hung_request_times_out_on_the_client(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    core.create_namespaced_config_map("default", config_map("settings"))
    kube_api.hang_next("patch", r"/configmaps/settings$")

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        core.patch_namespaced_config_map("settings", "default", {"data": {"a": "1"}}, _request_timeout=0.2)
    kube_api.release_hangs()

    assert core.patch_namespaced_config_map("settings", "default", {"data": {"a": "1"}}).data == {"a": "1"}


def test_a_dropped_connection_surfaces_as_a_protocol_error(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    kube_api.drop_next("patch", r"/configmaps/settings$")
    core.create_namespaced_config_map("default", config_map("settings"))

    with pytest.raises(urllib3.exceptions.ProtocolError):
        core.patch_namespaced_config_map("settings", "default", {"data": {"a": "1"}})

    assert core.read_namespaced_config_map("settings", "default").data is None


def test_denied_verbs_answer_the_authorizers_403(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    kube_api.deny("patch", "deployments", group="apps", namespace="default")
    apps.create_namespaced_deployment("default", deployment())

    with pytest.raises(ApiException) as raised:
        apps.patch_namespaced_deployment(
            "web", "default", deployment(), field_manager="brokkr", _content_type=APPLY
        )

    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            'deployments.apps "web" is forbidden: User "system:serviceaccount:brokkr-system:brokkr-agent" '
            'cannot patch resource "deployments" in API group "apps" in the namespace "default"'
        ),
        "reason": "Forbidden",
        "details": {"name": "web", "group": "apps", "kind": "deployments"},
        "code": 403,
    }
    assert apps.read_namespaced_deployment("web", "default").metadata.name == "web"


def test_denials_of_lists_and_cluster_scoped_resources(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    kube_api.deny("list", "namespaces")
    kube_api.deny("*", "configmaps", namespace="kube-system")

    with pytest.raises(ApiException) as namespaces:
        core.list_namespace()
    with pytest.raises(ApiException) as config_maps:
        core.list_namespaced_config_map("kube-system")

    assert status_of(namespaces.value)["message"] == (
        'namespaces is forbidden: User "system:serviceaccount:brokkr-system:brokkr-agent" '
        "cannot list resource "
        '"namespaces" in API group "" at the cluster scope'
    )
    assert config_maps.value.status == 403
    assert core.list_namespaced_config_map("default").items == []


def test_a_wrong_token_is_unauthorized(kube_api: KubeApi) -> None:
    configuration = client.Configuration(
        host=kube_api.url, api_key={"BearerToken": "wrong"}, api_key_prefix={"BearerToken": "Bearer"}
    )
    with client.ApiClient(configuration) as api_client, pytest.raises(ApiException) as raised:
        client.CoreV1Api(api_client).list_namespace()

    assert (raised.value.status, status_of(raised.value)["reason"]) == (401, "Unauthorized")


def test_the_request_log_shows_what_the_client_sent(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    apps.patch_namespaced_deployment(
        "web", "default", deployment(), field_manager="brokkr", _content_type=APPLY, force=True
    )

    [request] = kube_api.requests()

    assert (request.method, request.path, request.verb, request.status) == (
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        "patch",
        201,
    )
    assert (request.content_type, request.field_manager) == (APPLY, "brokkr")
    assert request.query == {"fieldManager": ["brokkr"], "force": ["true"]}
    kube_api.clear_requests()
    assert kube_api.requests() == []


def test_the_kubeconfig_is_usable_by_the_official_loader(kube_api: KubeApi) -> None:
    with config.new_client_from_config(config_file=str(kube_api.kubeconfig_path)) as api_client:
        names = [n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items]

    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
