"""The `pods/log` subresource and the field selectors of Events and Pods, through the typed client."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]


def pod(name: str, *containers: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"containers": [{"name": c, "image": "nginx"} for c in containers]},
        "status": {"phase": "Running"},
    }


def test_a_log_tail_is_cut_by_lines_then_bytes(kube_api: KubeApi, core: client.CoreV1Api) -> None:
    kube_api.put_object(pod("web", "app"))
    kube_api.set_log("default", "web", "app", "one\ntwo\nthree\n")
    kube_api.set_log("default", "web", "app", "crashed\n", previous=True)

    assert core.read_namespaced_pod_log("web", "default") == "one\ntwo\nthree\n"
    assert core.read_namespaced_pod_log("web", "default", container="app", tail_lines=2) == "two\nthree\n"
    assert core.read_namespaced_pod_log("web", "default", tail_lines=2, limit_bytes=5) == "two\nt"
    assert core.read_namespaced_pod_log("web", "default", previous=True) == "crashed\n"


def test_log_errors_are_upstreams(kube_api: KubeApi, core: client.CoreV1Api) -> None:
    kube_api.put_object(pod("two", "a", "b"))
    kube_api.put_object(pod("fresh", "app"))
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_pod_log("absent", "default")
    with pytest.raises(ApiException) as ambiguous:
        core.read_namespaced_pod_log("two", "default")
    with pytest.raises(ApiException) as waiting:
        core.read_namespaced_pod_log("fresh", "default")
    with pytest.raises(ApiException) as no_previous:
        core.read_namespaced_pod_log("fresh", "default", previous=True)

    assert missing.value.status == 404
    assert ambiguous.value.status == 400 and "choose one of: [a b]" in ambiguous.value.body
    assert waiting.value.status == 400 and "is waiting to start" in waiting.value.body
    assert no_previous.value.status == 400 and "previous terminated container" in no_previous.value.body


def test_events_are_selected_by_their_involved_object(kube_api: KubeApi, core: client.CoreV1Api) -> None:
    for name, kind, subject in (("e1", "Pod", "web"), ("e2", "Pod", "db"), ("e3", "Deployment", "web")):
        kube_api.put_object(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": "default"},
                "involvedObject": {"kind": kind, "name": subject, "namespace": "default"},
                "reason": "BackOff",
                "type": "Warning",
            }
        )

    selected = core.list_namespaced_event(
        "default", field_selector="involvedObject.kind=Pod,involvedObject.name=web"
    )
    not_pods = core.list_namespaced_event("default", field_selector="involvedObject.kind!=Pod")
    with pytest.raises(ApiException) as unsupported:
        core.list_namespaced_config_map("default", field_selector="involvedObject.name=web")

    assert [e.metadata.name for e in selected.items] == ["e1"]
    assert [e.metadata.name for e in not_pods.items] == ["e3"]
    assert unsupported.value.status == 400 and "field label not supported" in unsupported.value.body
