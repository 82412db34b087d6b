"""Discovery as the dynamic client reads it, and CRDs becoming servable once Established."""

from __future__ import annotations

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from tests.integration.kube_double.objects import APPLY, status_of, widget_crd
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


def widget(name: str = "w1", api_version: str = "example.com/v1") -> dict:
    return {"apiVersion": api_version, "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 3}}


def test_version_and_builtin_kinds_are_discoverable(dyn: dynamic.DynamicClient) -> None:
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    hpas = dyn.resources.get(api_version="autoscaling/v2", kind="HorizontalPodAutoscaler")

    assert dyn.version["kubernetes"]["gitVersion"] == "v1.37.0"
    assert (deployments.name, deployments.namespaced, deployments.short_names) == (
        "deployments",
        True,
        ["deploy"],
    )
    assert "patch" in deployments.verbs
    assert deployments.subresources["status"].verbs == ["get", "patch", "update"]
    assert (namespaces.name, namespaces.namespaced) == ("namespaces", False)
    assert hpas.name == "horizontalpodautoscalers"


@pytest.mark.parametrize(
    ("api_version", "kind"),
    [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("v1", "Service"),
        ("v1", "ServiceAccount"),
        ("v1", "Pod"),
        ("v1", "PersistentVolumeClaim"),
        ("v1", "Event"),
        ("apps/v1", "StatefulSet"),
        ("apps/v1", "DaemonSet"),
        ("apps/v1", "ReplicaSet"),
        ("batch/v1", "Job"),
        ("batch/v1", "CronJob"),
        ("networking.k8s.io/v1", "Ingress"),
        ("networking.k8s.io/v1", "NetworkPolicy"),
        ("rbac.authorization.k8s.io/v1", "Role"),
        ("rbac.authorization.k8s.io/v1", "RoleBinding"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("policy/v1", "PodDisruptionBudget"),
    ],
)
def test_every_builtin_kind_can_be_listed_through_discovery(
    dyn: dynamic.DynamicClient, api_version: str, kind: str
) -> None:
    resource = dyn.resources.get(api_version=api_version, kind=kind)

    assert resource.get().items == []


def test_openapi_and_unknown_groups_are_not_served(api_client: client.ApiClient) -> None:
    for path in ("/openapi/v2", "/openapi/v3", "/apis/nope.example.com/v1/things", "/api/v1/things"):
        response = api_client.call_api(
            *api_client.param_serialize("GET", path, auth_settings=["BearerToken"])
        )
        response.read()
        assert response.status == 404


def test_a_crd_is_served_once_established(
    dyn: dynamic.DynamicClient, api_client: client.ApiClient, kube_api: KubeApi
) -> None:
    created = client.ApiextensionsV1Api(api_client).create_custom_resource_definition(widget_crd())

    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    widgets.create(body=widget(), namespace="default")

    assert {c.type: c.status for c in created.status.conditions} == {
        "NamesAccepted": "True",
        "Established": "True",
    }
    assert (widgets.name, widgets.namespaced, widgets.short_names) == ("widgets", True, ["wd"])
    stored = kube_api.get_object("example.com/v1", "Widget", "default", "w1")
    assert stored is not None
    assert stored["spec"] == {"size": 3}
    assert stored["metadata"]["generation"] == 1


def test_a_crd_held_back_is_not_served_until_established(
    dyn: dynamic.DynamicClient, api_client: client.ApiClient, kube_api: KubeApi
) -> None:
    kube_api.auto_establish_crds = False
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(widget_crd(scope="Cluster"))
    custom = client.CustomObjectsApi(api_client)

    pending = extensions.read_custom_resource_definition("widgets.example.com")
    with pytest.raises(ResourceNotFoundError):
        dyn.resources.get(api_version="example.com/v1", kind="Widget")
    with pytest.raises(ApiException) as raised:
        custom.create_cluster_custom_object("example.com", "v1", "widgets", widget())
    kube_api.establish_crd("widgets.example.com")
    widgets = dyn.resources.get(api_version="example.com/v1", kind="Widget")
    widgets.server_side_apply(body=widget(), field_manager="brokkr")

    assert {c.type: c.status for c in pending.status.conditions}["Established"] == "False"
    assert raised.value.status == 404
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    assert widgets.namespaced is False
    assert kube_api.get_object("example.com/v1", "Widget", None, "w1") is not None


def test_every_served_version_of_a_crd_is_discoverable_and_shares_objects(
    dyn: dynamic.DynamicClient, api_client: client.ApiClient
) -> None:
    client.ApiextensionsV1Api(api_client).create_custom_resource_definition(
        widget_crd(versions=("v1", "v1beta1"))
    )
    custom = client.CustomObjectsApi(api_client)
    custom.patch_namespaced_custom_object(
        "example.com",
        "v1beta1",
        "default",
        "widgets",
        "w1",
        widget(api_version="example.com/v1beta1"),
        field_manager="brokkr",
        _content_type=APPLY,
    )

    as_v1 = custom.get_namespaced_custom_object("example.com", "v1", "default", "widgets", "w1")
    groups = {g.name: g for g in client.ApisApi(api_client).get_api_versions().groups}

    assert as_v1["apiVersion"] == "example.com/v1"
    assert [v.version for v in groups["example.com"].versions] == ["v1", "v1beta1"]
    assert groups["example.com"].preferred_version.version == "v1"
    assert dyn.resources.get(api_version="example.com/v1beta1", kind="Widget").name == "widgets"


def test_deleting_a_crd_removes_its_kind_and_objects(
    api_client: client.ApiClient, dyn: dynamic.DynamicClient, kube_api: KubeApi
) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    extensions.create_custom_resource_definition(widget_crd())
    dyn.resources.get(api_version="example.com/v1", kind="Widget").create(body=widget(), namespace="default")

    extensions.delete_custom_resource_definition("widgets.example.com")

    groups = [g.name for g in client.ApisApi(api_client).get_api_versions().groups]
    assert "example.com" not in groups
    with pytest.raises(ApiException) as raised:
        client.CustomObjectsApi(api_client).get_namespaced_custom_object(
            "example.com", "v1", "default", "widgets", "w1"
        )
    assert status_of(raised.value)["message"] == "the server could not find the requested resource"
    assert kube_api.cluster.store.list("example.com", "widgets") == []
