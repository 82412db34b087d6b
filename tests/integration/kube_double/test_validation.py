"""Validation failures: 422 Invalid with upstream's message shape and one cause per field."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kube_double.objects import (
    APPLY,
    config_map,
    deployment,
    namespace,
    raw,
    status_of,
    widget_crd,
)

pytest_plugins = ["tests.kube_double.fixtures"]


def test_negative_replicas(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment("default", deployment(replicas=-1))

    assert raised.value.status == 422
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            'Deployment.apps "web" is invalid: '
            "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        ),
        "reason": "Invalid",
        "details": {
            "name": "web",
            "group": "apps",
            "kind": "Deployment",
            "causes": [
                {
                    "reason": "FieldValueInvalid",
                    "message": "Invalid value: -1: must be greater than or equal to 0",
                    "field": "spec.replicas",
                }
            ],
        },
        "code": 422,
    }


def test_several_errors_are_listed_in_brackets(apps: client.AppsV1Api) -> None:
    broken = deployment()
    broken["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    broken["spec"]["template"]["spec"]["containers"][0]["image"] = ""

    with pytest.raises(ApiException) as raised:
        apps.patch_namespaced_deployment(
            "web", "default", broken, field_manager="brokkr", _content_type=APPLY
        )

    body = status_of(raised.value)
    assert body["message"] == (
        'Deployment.apps "web" is invalid: ['
        'spec.template.metadata.labels: Invalid value: map[string]string{"app":"other"}: '
        "`selector` does not match template `labels`, "
        "spec.template.spec.containers[0].image: Required value]"
    )
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        ("FieldValueInvalid", "spec.template.metadata.labels"),
        ("FieldValueRequired", "spec.template.spec.containers[0].image"),
    ]
    assert apps.list_namespaced_deployment("default").items == []


def test_a_deployment_needs_a_selector_and_containers(api_client: client.ApiClient) -> None:
    bare = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {"template": {}},
    }

    code, _, body = raw(api_client, "POST", "/apis/apps/v1/namespaces/default/deployments", bare)

    assert code == 422
    assert [(c["reason"], c["field"]) for c in body["details"]["causes"]] == [
        ("FieldValueRequired", "spec.selector"),
        ("FieldValueRequired", "spec.template.spec.containers"),
    ]


def test_object_names_follow_the_dns_rule_of_their_kind(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as config_map_name:
        core.create_namespaced_config_map("default", config_map("Not_Valid"))
    with pytest.raises(ApiException) as namespace_name:
        core.create_namespace(namespace("team.a"))
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "1web"}, "spec": {}}
    with pytest.raises(ApiException) as service_name:
        core.create_namespaced_service("default", service)

    assert status_of(config_map_name.value)["message"] == (
        'ConfigMap "Not_Valid" is invalid: metadata.name: Invalid value: "Not_Valid": a lowercase RFC 1123 '
        "subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end "
        "with an "
        "alphanumeric character (e.g. 'example.com', regex used for validation is "
        r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert "a lowercase RFC 1123 label must consist of" in status_of(namespace_name.value)["message"]
    assert "a DNS-1035 label must consist of" in status_of(service_name.value)["message"]


def test_duplicate_container_names(core: client.CoreV1Api) -> None:
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
    }

    with pytest.raises(ApiException) as raised:
        core.create_namespaced_pod("default", pod)

    assert (
        status_of(raised.value)["message"]
        == 'Pod "p" is invalid: spec.containers[1].name: Duplicate value: "a"'
    )


def test_bad_label_values(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        core.create_namespaced_config_map("default", config_map("settings", labels={"tier": "-front"}))

    [cause] = status_of(raised.value)["details"]["causes"]
    assert cause["field"] == "metadata.labels"
    assert cause["message"].startswith('Invalid value: "-front": a valid label must be an empty string')


def test_a_crd_name_must_be_plural_dot_group(api_client: client.ApiClient) -> None:
    crd = widget_crd()
    crd["metadata"]["name"] = "widgets"

    with pytest.raises(ApiException) as raised:
        client.ApiextensionsV1Api(api_client).create_custom_resource_definition(crd)

    assert status_of(raised.value)["message"] == (
        'CustomResourceDefinition.apiextensions.k8s.io "widgets" is invalid: metadata.name: Invalid value: '
        '"widgets": must be spec.names.plural+"."+spec.group'
    )


def test_a_body_of_another_kind_is_a_bad_request(core: client.CoreV1Api) -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}

    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_config_map("s", "default", secret)

    assert (raised.value.status, status_of(raised.value)["reason"]) == (400, "BadRequest")
