"""The ordinary verbs through the typed client: CRUD, concurrency, patches, selectors, dry run, status."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.integration.kube_double.objects import APPLY, config_map, deployment, namespace, raw, status_of
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


def test_create_get_and_the_404_of_a_missing_object(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))

    fetched = core.read_namespaced_config_map("settings", "default")
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_config_map("absent", "default")

    assert fetched.data == {"a": "1"}
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.metadata.creation_timestamp is not None
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'configmaps "absent" not found',
        "reason": "NotFound",
        "details": {"name": "absent", "kind": "configmaps"},
        "code": 404,
    }


def test_create_twice_is_already_exists_and_into_a_missing_namespace_is_404(apps: client.AppsV1Api) -> None:
    apps.create_namespaced_deployment("default", deployment())

    with pytest.raises(ApiException) as twice:
        apps.create_namespaced_deployment("default", deployment())
    with pytest.raises(ApiException) as nowhere:
        apps.create_namespaced_deployment("nowhere", deployment())

    assert status_of(twice.value)["message"] == 'deployments.apps "web" already exists'
    assert (twice.value.status, status_of(twice.value)["reason"]) == (409, "AlreadyExists")
    assert status_of(twice.value)["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    assert status_of(nowhere.value)["message"] == 'namespaces "nowhere" not found'


def test_creates_record_the_writer_as_an_update_manager(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    apps.create_namespaced_deployment("default", deployment())

    stored = kube_api.get_object("apps/v1", "Deployment", "default", "web")

    [entry] = stored["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["apiVersion"]) == (
        "OpenAPI-Generator",
        "Update",
        "apps/v1",
    )
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]


def test_update_with_a_stale_resource_version_is_a_conflict(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))
    stale = first.to_dict()
    first.data = {"a": "2"}
    core.replace_namespaced_config_map("settings", "default", first)

    stale_body = {
        **config_map("settings", {"a": "3"}),
        "metadata": {"name": "settings", "resourceVersion": first.metadata.resource_version},
    }
    with pytest.raises(ApiException) as raised:
        core.replace_namespaced_config_map("settings", "default", stale_body)

    assert stale["metadata"]["resource_version"] == first.metadata.resource_version
    assert raised.value.status == 409
    assert status_of(raised.value) == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": (
            'Operation cannot be fulfilled on configmaps "settings": the object has been modified; '
            "please apply your changes to the latest version and try again"
        ),
        "reason": "Conflict",
        "details": {"name": "settings", "kind": "configmaps"},
        "code": 409,
    }
    assert core.read_namespaced_config_map("settings", "default").data == {"a": "2"}


def test_update_without_a_resource_version_is_unconditional(core: client.CoreV1Api) -> None:
    first = core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))

    replaced = core.replace_namespaced_config_map("settings", "default", config_map("settings", {"a": "2"}))

    assert replaced.data == {"a": "2"}
    assert replaced.metadata.uid == first.metadata.uid
    assert int(replaced.metadata.resource_version) > int(first.metadata.resource_version)


def test_merge_json_and_strategic_patches(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("settings", {"a": "1", "b": "2"}))
    apps.create_namespaced_deployment("default", deployment())

    merged = core.patch_namespaced_config_map(
        "settings", "default", {"data": {"a": None, "c": "3"}}, _content_type="application/merge-patch+json"
    )
    patched = core.patch_namespaced_config_map(
        "settings", "default", [{"op": "replace", "path": "/data/b", "value": "20"}]
    )
    containers = [{"name": "other", "image": "busybox:1"}]
    strategic = apps.patch_namespaced_deployment(
        "web", "default", {"spec": {"template": {"spec": {"containers": containers}}}}
    )

    assert merged.data == {"b": "2", "c": "3"}
    assert patched.data == {"b": "20", "c": "3"}
    assert [c.name for c in strategic.spec.template.spec.containers] == ["other"], (
        "strategic is a merge patch here"
    )


def test_a_failing_json_patch_test_operation_changes_nothing(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))

    with pytest.raises(ApiException) as raised:
        core.patch_namespaced_config_map(
            "settings",
            "default",
            [
                {"op": "replace", "path": "/data/a", "value": "2"},
                {"op": "test", "path": "/data/a", "value": "1"},
            ],
        )

    assert raised.value.status == 422
    assert core.read_namespaced_config_map("settings", "default").data == {"a": "1"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=front", ["a"]),
        ("tier==front", ["a"]),
        ("tier!=front", ["b", "c"]),
        ("tier in (front, back)", ["a", "b"]),
        ("tier notin (front)", ["b", "c"]),
        ("tier", ["a", "b"]),
        ("!tier", ["c"]),
        ("tier,app=x", ["a"]),
        ("size>2", ["b"]),
        ("", ["a", "b", "c"]),
    ],
)
def test_label_selectors(core: client.CoreV1Api, selector: str, expected: list[str]) -> None:
    core.create_namespaced_config_map(
        "default", config_map("a", labels={"tier": "front", "app": "x", "size": "1"})
    )
    core.create_namespaced_config_map("default", config_map("b", labels={"tier": "back", "size": "3"}))
    core.create_namespaced_config_map("default", config_map("c", labels={"app": "y"}))

    listed = core.list_namespaced_config_map("default", label_selector=selector)

    assert [item.metadata.name for item in listed.items] == expected


def test_field_selectors_and_a_malformed_selector(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("a"))
    core.create_namespaced_config_map("default", config_map("b"))

    by_name = core.list_namespaced_config_map("default", field_selector="metadata.name=b")
    not_a = core.list_config_map_for_all_namespaces(
        field_selector="metadata.name!=a,metadata.namespace=default"
    )
    with pytest.raises(ApiException) as bad_label:
        core.list_namespaced_config_map("default", label_selector="tier in (a")
    with pytest.raises(ApiException) as bad_field:
        core.list_namespaced_config_map("default", field_selector="status.phase=Running")

    assert [i.metadata.name for i in by_name.items] == ["b"]
    assert [i.metadata.name for i in not_a.items] == ["b"]
    assert (bad_label.value.status, status_of(bad_label.value)["reason"]) == (400, "BadRequest")
    assert status_of(bad_field.value)["message"] == "field label not supported: status.phase"


def test_listing_across_namespaces_and_in_pages(core: client.CoreV1Api) -> None:
    core.create_namespace(namespace("team-a"))
    for name in ("x", "y"):
        core.create_namespaced_config_map("team-a", config_map(name))
    core.create_namespaced_config_map("default", config_map("z"))

    everywhere = core.list_config_map_for_all_namespaces()
    first = core.list_namespaced_config_map("team-a", limit=1)
    second = core.list_namespaced_config_map("team-a", limit=1, _continue=first.metadata._continue)

    assert [(i.metadata.namespace, i.metadata.name) for i in everywhere.items] == [
        ("default", "z"),
        ("team-a", "x"),
        ("team-a", "y"),
    ]
    assert [i.metadata.name for i in first.items + second.items] == ["x", "y"]
    assert second.metadata._continue is None
    assert everywhere.metadata.resource_version


def test_deleting_a_namespace_deletes_what_is_in_it(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    core.create_namespace(namespace("team-a"))
    core.create_namespaced_config_map("team-a", config_map("settings"))
    core.create_namespaced_config_map("default", config_map("kept"))

    answer = core.delete_namespace("team-a", propagation_policy="Foreground")

    assert answer["status"] == {"phase": "Terminating"}
    assert kube_api.list_objects("v1", "ConfigMap") == [
        kube_api.get_object("v1", "ConfigMap", "default", "kept")
    ]
    with pytest.raises(ApiException) as raised:
        core.read_namespace("team-a")
    assert raised.value.status == 404


def test_delete_answers_success_and_protected_namespaces_stay(core: client.CoreV1Api) -> None:
    created = core.create_namespaced_config_map("default", config_map("settings"))

    answer = core.delete_namespaced_config_map("settings", "default", propagation_policy="Background")
    with pytest.raises(ApiException) as raised:
        core.delete_namespace("default")

    assert answer["status"] == "Success"
    assert answer["details"] == {"name": "settings", "kind": "configmaps", "uid": created.metadata.uid}
    assert (
        status_of(raised.value)["message"]
        == 'namespaces "default" is forbidden: this namespace may not be deleted'
    )


def test_finalizers_hold_an_object_until_removed(core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map(
        "default", {**config_map("held"), "metadata": {"name": "held", "finalizers": ["example.com/keep"]}}
    )

    core.delete_namespaced_config_map("held", "default")
    marked = core.read_namespaced_config_map("held", "default")
    core.patch_namespaced_config_map(
        "held", "default", {"metadata": {"finalizers": None}}, _content_type="application/merge-patch+json"
    )

    assert marked.metadata.deletion_timestamp is not None
    with pytest.raises(ApiException) as raised:
        core.read_namespaced_config_map("held", "default")
    assert raised.value.status == 404


def test_dry_run_writes_nothing(core: client.CoreV1Api, apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    core.create_namespaced_config_map("default", config_map("settings", {"a": "1"}))
    writes = kube_api.write_count

    created = core.create_namespaced_config_map("default", config_map("new"), dry_run="All")
    applied = apps.patch_namespaced_deployment(
        "web",
        "default",
        {**deployment(), "metadata": {"name": "web"}},
        field_manager="brokkr",
        _content_type=APPLY,
        dry_run="All",
    )
    core.patch_namespaced_config_map("settings", "default", {"data": {"a": "2"}}, dry_run="All")
    core.replace_namespaced_config_map(
        "settings", "default", config_map("settings", {"a": "3"}), dry_run="All"
    )
    core.delete_namespaced_config_map("settings", "default", dry_run="All")

    assert created.metadata.name == "new"
    assert applied.spec.replicas == 2
    assert kube_api.write_count == writes
    assert core.read_namespaced_config_map("settings", "default").data == {"a": "1"}
    assert kube_api.get_object("v1", "ConfigMap", "default", "new") is None
    assert kube_api.get_object("apps/v1", "Deployment", "default", "web") is None


def test_dry_run_still_validates(apps: client.AppsV1Api) -> None:
    with pytest.raises(ApiException) as raised:
        apps.create_namespaced_deployment("default", deployment(replicas=-1), dry_run="All")

    assert raised.value.status == 422


def test_status_is_a_separate_subresource(apps: client.AppsV1Api, kube_api: KubeApi) -> None:
    created = apps.create_namespaced_deployment("default", {**deployment(), "status": {"replicas": 9}})
    kube_api.set_status("apps/v1", "Deployment", "default", "web", {"readyReplicas": 2, "replicas": 2})

    main = apps.patch_namespaced_deployment(
        "web",
        "default",
        {"spec": {"replicas": 4}, "status": {"readyReplicas": 0}},
        _content_type="application/merge-patch+json",
    )
    status = apps.patch_namespaced_deployment_status(
        "web",
        "default",
        {"spec": {"replicas": 7}, "status": {"readyReplicas": 4}},
        _content_type="application/merge-patch+json",
    )

    assert created.status.to_dict() == client.V1DeploymentStatus().to_dict()
    assert (main.spec.replicas, main.status.ready_replicas) == (4, 2)
    assert (status.spec.replicas, status.status.ready_replicas) == (4, 4)
    assert main.metadata.generation == 2
    assert status.metadata.generation == 2, "status writes leave the generation alone"
    owners = {
        (e["manager"], e.get("subresource"))
        for e in kube_api.get_object("apps/v1", "Deployment", "default", "web")["metadata"]["managedFields"]
    }
    assert ("kube-controller-manager", "status") in owners


def test_unknown_fields_are_dropped_with_a_warning_or_refused_when_strict(
    api_client: client.ApiClient, core: client.CoreV1Api
) -> None:
    body = {**config_map("settings", {"a": "1"}), "dataa": {"b": "2"}}
    path = "/api/v1/namespaces/default/configmaps"

    code, headers, _ = raw(api_client, "POST", path, body)
    strict_code, _, refusal = raw(
        api_client, "POST", path, {**body, "metadata": {"name": "strict"}}, [("fieldValidation", "Strict")]
    )

    assert code == 201
    assert headers["Warning"] == '299 - "unknown field \\"dataa\\""'
    assert core.read_namespaced_config_map("settings", "default").to_dict()["data"] == {"a": "1"}
    assert strict_code == 400
    assert refusal["message"] == (
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: '
        'strict decoding error: unknown field "dataa"'
    )


def test_secret_string_data_is_stored_as_base64_data(core: client.CoreV1Api) -> None:
    core.create_namespaced_secret(
        "default",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "stringData": {"token": "abc"}},
    )

    assert core.read_namespaced_secret("s", "default").data == {"token": "YWJj"}


def test_requests_the_double_does_not_serve(api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("settings"))
    path = "/api/v1/namespaces/default/configmaps"

    media_code, _, media = raw(
        api_client, "PATCH", f"{path}/settings", '{"data": {}}', content_type="text/plain"
    )
    everywhere_code, _, _ = raw(api_client, "POST", "/api/v1/configmaps", config_map("elsewhere"))

    assert (media_code, media["reason"]) == (415, "UnsupportedMediaType")
    assert everywhere_code == 405


def test_force_is_only_for_apply(api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    core.create_namespaced_config_map("default", config_map("settings"))

    code, _, body = raw(
        api_client,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/settings",
        {"data": {"a": "1"}},
        [("force", True)],
        "application/merge-patch+json",
    )

    assert code == 422
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'
    )


def test_objects_can_be_put_read_and_deleted_directly(core: client.CoreV1Api, kube_api: KubeApi) -> None:
    kube_api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}})
    stored = kube_api.put_object(
        {**config_map("settings", {"a": "1"}), "metadata": {"name": "settings", "namespace": "team-a"}}
    )

    served = core.read_namespaced_config_map("settings", "team-a")
    listed = kube_api.list_objects("v1", "ConfigMap", "team-a")
    deleted = kube_api.delete_object("v1", "Namespace", None, "team-a")

    assert served.metadata.uid == stored["metadata"]["uid"]
    assert served.metadata.managed_fields is None
    assert [o["metadata"]["name"] for o in listed] == ["settings"]
    assert deleted is True
    assert kube_api.get_object("v1", "ConfigMap", "team-a", "settings") is None
    assert kube_api.delete_object("v1", "Namespace", None, "team-a") is False
