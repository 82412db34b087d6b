"""Server-side apply through the official client: ownership, conflicts, force, removal, no-op writes."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.exceptions import ConflictError

from tests.integration.kube_double.objects import APPLY, config_map, deployment, namespace, status_of
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


def apply_deployment(
    apps: client.AppsV1Api, body: dict, manager: str, **options: object
) -> client.V1Deployment:
    return apps.patch_namespaced_deployment(
        body["metadata"]["name"], "default", body, field_manager=manager, _content_type=APPLY, **options
    )


def managers(kube_api: KubeApi, name: str = "web") -> dict[str, dict]:
    stored = kube_api.get_object("apps/v1", "Deployment", "default", name)
    assert stored is not None
    return {entry["manager"]: entry for entry in stored["metadata"]["managedFields"]}


def test_apply_creates_the_object_and_records_exactly_the_applied_fields(
    apps: client.AppsV1Api, kube_api: KubeApi
) -> None:
    created = apply_deployment(apps, deployment(labels={"tier": "front"}), "brokkr")

    assert created.metadata.uid
    assert created.metadata.generation == 1
    assert created.spec.replicas == 2
    [entry] = kube_api.get_object("apps/v1", "Deployment", "default", "web")["metadata"]["managedFields"]
    assert {k: v for k, v in entry.items() if k != "time"} == {
        "manager": "brokkr",
        "operation": "Apply",
        "apiVersion": "apps/v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:tier": {}}},
            "f:spec": {
                "f:replicas": {},
                "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {
                        "f:containers": {
                            'k:{"name":"web"}': {
                                ".": {},
                                "f:image": {},
                                "f:name": {},
                                "f:ports": {
                                    'k:{"containerPort":80,"protocol":"TCP"}': {
                                        ".": {},
                                        "f:containerPort": {},
                                    }
                                },
                            }
                        }
                    },
                },
            },
        },
    }


def test_an_identical_reapply_writes_nothing(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    first = apply_deployment(apps, deployment(), "brokkr")
    writes = kube_api.write_count
    before = kube_api.get_object("apps/v1", "Deployment", "default", "web")

    again = apply_deployment(apps, deployment(), "brokkr")

    assert again.metadata.resource_version == first.metadata.resource_version
    assert kube_api.write_count == writes
    assert kube_api.get_object("apps/v1", "Deployment", "default", "web") == before


def test_a_changed_apply_bumps_resource_version_and_generation(apps: client.AppsV1Api) -> None:
    first = apply_deployment(apps, deployment(image="nginx:1.27"), "brokkr")

    relabelled = apply_deployment(apps, deployment(image="nginx:1.27", labels={"a": "b"}), "brokkr")
    changed = apply_deployment(apps, deployment(image="nginx:1.28", labels={"a": "b"}), "brokkr")

    assert int(relabelled.metadata.resource_version) > int(first.metadata.resource_version)
    assert relabelled.metadata.generation == 1, "metadata changes leave the generation alone"
    assert changed.metadata.generation == 2
    assert changed.spec.template.spec.containers[0].image == "nginx:1.28"


def test_conflicting_appliers_get_the_documented_409(apps: client.AppsV1Api) -> None:
    apply_deployment(apps, deployment(replicas=2), "brokkr")

    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, deployment(replicas=5), "autoscaler")

    assert raised.value.status == 409
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "brokkr": .spec.replicas',
        "reason": "Conflict",
        "details": {
            "causes": [
                {
                    "reason": "FieldManagerConflict",
                    "message": 'conflict with "brokkr"',
                    "field": ".spec.replicas",
                }
            ]
        },
        "code": 409,
    }
    assert apps.read_namespaced_deployment("web", "default").spec.replicas == 2


def test_a_conflict_with_an_updater_names_its_api_version(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment(replicas=2), field_manager="kubectl-create")

    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, deployment(replicas=3, image="nginx:1.28"), "brokkr")

    body = status_of(raised.value)
    container = '.spec.template.spec.containers[name="web"].image'
    assert body["message"] == (
        'Apply failed with 2 conflicts: conflicts with "kubectl-create" using apps/v1:\n'
        f"- .spec.replicas\n- {container}"
    )
    assert [c["field"] for c in body["details"]["causes"]] == [".spec.replicas", container]
    assert {c["message"] for c in body["details"]["causes"]} == {
        'conflict with "kubectl-create" using apps/v1'
    }


def test_force_takes_the_field_from_the_other_manager(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    apply_deployment(apps, deployment(replicas=2), "brokkr")

    forced = apply_deployment(
        apps, {**deployment(replicas=5), "spec": {"replicas": 5}}, "autoscaler", force=True
    )

    assert forced.spec.replicas == 5
    owners = managers(kube_api)
    assert "f:replicas" not in owners["brokkr"]["fieldsV1"]["f:spec"]
    assert owners["autoscaler"]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}


def test_the_same_value_is_shared_and_survives_until_its_last_owner_lets_go(
    apps: client.AppsV1Api, kube_api: KubeApi
) -> None:
    apply_deployment(apps, deployment(labels={"team": "a"}), "brokkr")
    share = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"team": "a"}},
    }

    apply_deployment(apps, share, "auditor")
    both = managers(kube_api)
    apply_deployment(apps, deployment(), "brokkr")
    kept = apps.read_namespaced_deployment("web", "default").metadata.labels
    apply_deployment(apps, {**share, "metadata": {"name": "web"}}, "auditor")
    gone = apps.read_namespaced_deployment("web", "default").metadata.labels

    assert both["auditor"]["fieldsV1"] == {"f:metadata": {"f:labels": {"f:team": {}}}}
    assert both["brokkr"]["fieldsV1"]["f:metadata"] == {"f:labels": {"f:team": {}}}
    assert kept == {"team": "a"}
    assert gone is None


def test_fields_omitted_from_a_reapply_are_removed(apps: client.AppsV1Api) -> None:
    two_containers = deployment(labels={"tier": "front", "team": "a"})
    sidecar = {"name": "sidecar", "image": "busybox:1", "env": [{"name": "MODE", "value": "x"}]}
    two_containers["spec"]["template"]["spec"]["containers"].append(sidecar)
    apply_deployment(apps, two_containers, "brokkr")

    apply_deployment(apps, deployment(labels={"tier": "front"}), "brokkr")

    stored = apps.read_namespaced_deployment("web", "default")
    assert stored.metadata.labels == {"tier": "front"}
    assert [c.name for c in stored.spec.template.spec.containers] == ["web"]


def test_fields_another_manager_set_are_kept_when_the_applier_omits_them(apps: client.AppsV1Api) -> None:
    apply_deployment(apps, deployment(), "brokkr")
    apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"annotations": {"note": "hand-made"}}}, field_manager="kubectl-edit"
    )

    apply_deployment(apps, deployment(image="nginx:1.28"), "brokkr")

    assert apps.read_namespaced_deployment("web", "default").metadata.annotations == {"note": "hand-made"}


def test_apply_requires_a_field_manager(api_client: client.ApiClient) -> None:
    request = api_client.param_serialize(
        "PATCH",
        "/apis/apps/v1/namespaces/default/deployments/web",
        header_params={"Content-Type": APPLY, "Accept": "application/json"},
        body=deployment(),
        auth_settings=["BearerToken"],
    )
    response = api_client.call_api(*request)
    response.read()

    assert response.status == 422
    assert json.loads(response.data) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            'PatchOptions.meta.k8s.io "" is invalid: '
            "fieldManager: Required value: is required for apply patch"
        ),
        "reason": "Invalid",
        "details": {
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [
                {
                    "reason": "FieldValueRequired",
                    "message": "Required value: is required for apply patch",
                    "field": "fieldManager",
                }
            ],
        },
        "code": 422,
    }


def test_raw_yaml_apply_through_call_api(api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n"
    request = api_client.param_serialize(
        "PATCH",
        "/api/v1/namespaces/default/configmaps/settings",
        query_params=[("fieldManager", "brokkr"), ("force", True)],
        header_params={"Content-Type": APPLY, "Accept": "application/json"},
        body=manifest,
        auth_settings=["BearerToken"],
    )

    response = api_client.call_api(*request)
    response.read()

    assert response.status == 201
    assert core.read_namespaced_config_map("settings", "default").data == {"mode": "fast"}


def test_apply_into_a_missing_namespace_is_404(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_config_map(
            "settings", "nowhere", config_map("settings"), field_manager="brokkr", _content_type=APPLY
        )

    assert raised.value.status == 404
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'namespaces "nowhere" not found',
        "reason": "NotFound",
        "details": {"name": "nowhere", "kind": "namespaces"},
        "code": 404,
    }


def test_the_first_apply_to_an_object_without_managed_fields_conflicts_with_before_first_apply(
    apps: client.AppsV1Api, kube_api: KubeApi
) -> None:
    kube_api.put_object({**deployment(replicas=1), "metadata": {"name": "web", "namespace": "default"}})

    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, deployment(replicas=3), "brokkr")

    assert status_of(raised.value)["message"] == (
        'Apply failed with 1 conflict: conflict with "before-first-apply" using apps/v1: .spec.replicas'
    )


def test_apply_with_an_undeclared_top_level_field_fails_like_upstream(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, {**deployment(), "spek": {}}, "brokkr")

    assert raised.value.status == 500
    assert status_of(raised.value)["message"] == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
        ".spek: field not declared in schema"
    )


def test_a_resource_version_in_an_apply_is_a_precondition(apps: client.AppsV1Api) -> None:
    created = apply_deployment(apps, deployment(), "brokkr")
    apply_deployment(apps, deployment(image="nginx:1.28"), "brokkr")
    stale = deployment(image="nginx:1.29")
    stale["metadata"]["resourceVersion"] = created.metadata.resource_version

    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, stale, "brokkr")

    assert (raised.value.status, status_of(raised.value)["reason"]) == (409, "Conflict")
    assert (
        apps.read_namespaced_deployment("web", "default").spec.template.spec.containers[0].image
        == "nginx:1.28"
    )


def test_apply_with_the_wrong_api_version_is_a_bad_request(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        apply_deployment(apps, {**deployment(), "apiVersion": "apps/v1beta1"}, "brokkr")

    assert raised.value.status == 400
    assert status_of(raised.value)["message"] == (
        "Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1"
    )


def test_dynamic_client_server_side_apply_with_force(
    dyn: dynamic.DynamicClient, core: client.CoreV1Api
) -> None:
    config_maps = dyn.resources.get(api_version="v1", kind="ConfigMap")
    config_maps.server_side_apply(
        body=config_map("settings", {"mode": "fast"}), namespace="default", field_manager="a"
    )

    with pytest.raises(ConflictError):
        config_maps.server_side_apply(
            body=config_map("settings", {"mode": "slow"}), namespace="default", field_manager="b"
        )
    forced = config_maps.server_side_apply(
        body=config_map("settings", {"mode": "slow"}),
        namespace="default",
        field_manager="b",
        force_conflicts=True,
    )

    assert forced.data.mode == "slow"
    assert core.read_namespaced_config_map("settings", "default").data == {"mode": "slow"}


def test_apply_to_a_namespace_object_and_list_items_keyed_by_name(core: client.CoreV1Api) -> None:
    core.patch_namespace("team-a", namespace("team-a"), field_manager="brokkr", _content_type=APPLY)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y:1"}]},
    }
    core.patch_namespaced_pod("p", "team-a", pod, field_manager="brokkr", _content_type=APPLY)
    mine = copy.deepcopy(pod)
    mine["spec"]["containers"] = [{"name": "b", "image": "y:2"}]

    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_pod("p", "team-a", mine, field_manager="other", _content_type=APPLY)

    assert [c["field"] for c in status_of(raised.value)["details"]["causes"]] == [
        '.spec.containers[name="b"].image'
    ]
