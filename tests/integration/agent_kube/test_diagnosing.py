"""Collecting a stack's diagnostics from the cluster: which pods, which events, and every bound
(log bytes per container and in all, pods, events) said in the report, not silently applied."""

from __future__ import annotations

from agent.config import KubernetesSettings
from agent.kube import Cluster, RetryPolicy, diagnosing
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.stacks import STACK, Obj, config_map, deployment, desired, namespace, update
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

STACK_OBJECTS = (namespace("shop"), config_map("a"), deployment())
KEYS = [desired(obj).key for obj in STACK_OBJECTS]
OPTIONS = diagnostics_pb2.DiagnosticsOptions(log_tail_lines=50, max_log_bytes=16384)


def pod(name: str, app: str = "web", *, waiting: str = "", restarts: int = 0) -> Obj:
    state = (
        {"waiting": {"reason": waiting}} if waiting else {"running": {"startedAt": "2026-11-26T10:00:00Z"}}
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop", "labels": {"app": app}},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
        "status": {
            "phase": "Pending" if waiting else "Running",
            "containerStatuses": [
                {"name": "app", "ready": not waiting, "restartCount": restarts, "state": state}
            ],
        },
    }


def event(name: str, kind: str, subject: str, when: str, reason: str = "BackOff") -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "shop"},
        "involvedObject": {"kind": kind, "name": subject, "namespace": "shop"},
        "type": "Warning",
        "reason": reason,
        "message": f"{reason} on {subject}",
        "lastTimestamp": when,
    }


async def applied(cluster: Cluster) -> None:
    await cluster.apply(update(1, *map(desired, STACK_OBJECTS), full_state=True), UNKNOWN)


async def test_only_the_stacks_pods_and_events_newest_first(kube_api: KubeApi, cluster: Cluster) -> None:
    await applied(cluster)
    for obj in (pod("web-1"), pod("web-2", waiting="ContainerCreating"), pod("db-1", app="db")):
        kube_api.put_object(obj)
    kube_api.set_log("shop", "web-1", "app", "hello\n")
    for obj in (
        event("e1", "Pod", "web-1", "2026-11-26T10:00:00Z"),
        event("e2", "Deployment", "web", "2026-11-26T11:00:00Z", reason="ScalingReplicaSet"),
        event("e3", "Pod", "db-1", "2026-11-26T12:00:00Z"),
    ):
        kube_api.put_object(obj)

    report = await cluster.diagnose(STACK, KEYS, OPTIONS)

    assert [p.name for p in report.pods] == ["web-1", "web-2"]
    assert report.pods[0].containers[0].log_tail == "hello\n"
    waiting = report.pods[1].containers[0]
    assert (waiting.state, waiting.reason, waiting.log_tail) == ("waiting", "ContainerCreating", "")
    assert waiting.log_error == "the container has not started yet"
    assert [(e.reason, e.involved_object.name) for e in report.events] == [
        ("ScalingReplicaSet", "web"),
        ("BackOff", "web-1"),
    ]
    assert not report.truncated and list(report.warnings) == []
    # Events were asked for per object, by field selector, never listed for the whole namespace.
    selectors = [
        r.query.get("fieldSelector", [""])[0] for r in kube_api.requests() if r.path.endswith("/events")
    ]
    assert selectors and all(s.startswith("involvedObject.kind=") for s in selectors)


async def test_log_bounds_are_asked_of_the_api_and_reported(kube_api: KubeApi, cluster: Cluster) -> None:
    await applied(cluster)
    kube_api.put_object(pod("web-1", restarts=1))
    kube_api.set_log("shop", "web-1", "app", "x" * 100 + "\n" + "y" * 100 + "\n")
    kube_api.set_log("shop", "web-1", "app", "boom\n", previous=True)
    options = diagnostics_pb2.DiagnosticsOptions(
        log_tail_lines=1, max_log_bytes=40, include_previous_logs=True
    )

    report = await cluster.diagnose(STACK, KEYS, options)

    (container,) = report.pods[0].containers
    assert container.log_tail == "y" * 40
    assert container.log_truncated
    assert container.previous_log_tail == "boom\n"


async def test_the_reports_total_log_budget_is_shared_and_said(
    kube_api: KubeApi, cluster: Cluster, monkeypatch
) -> None:
    monkeypatch.setattr(diagnosing, "MAX_REPORT_LOG_BYTES", 30)
    await applied(cluster)
    for name in ("web-1", "web-2"):
        kube_api.put_object(pod(name))
        kube_api.set_log("shop", name, "app", "z" * 20)

    report = await cluster.diagnose(STACK, KEYS, OPTIONS)

    tails = [p.containers[0].log_tail for p in report.pods]
    assert sum(len(t) for t in tails) <= 30
    assert report.truncated


async def test_pods_beyond_the_limit_are_left_out_and_said(
    kube_api: KubeApi, cluster: Cluster, monkeypatch
) -> None:
    monkeypatch.setattr(diagnosing, "MAX_PODS", 2)
    await applied(cluster)
    for index in range(3):
        kube_api.put_object(pod(f"web-{index}", waiting="ContainerCreating"))

    report = await cluster.diagnose(STACK, KEYS, OPTIONS)

    assert [p.name for p in report.pods] == ["web-0", "web-1"]
    assert report.truncated


async def test_events_the_agent_may_not_read_become_a_warning(kube_api: KubeApi, cluster: Cluster) -> None:
    await applied(cluster)
    kube_api.put_object(pod("web-1", waiting="ContainerCreating"))
    kube_api.deny("list", "events")

    report = await cluster.diagnose(STACK, KEYS, OPTIONS)

    assert [p.name for p in report.pods] == ["web-1"]
    assert list(report.events) == []
    assert len(report.warnings) == 1 and "reading events failed" in report.warnings[0]


async def test_a_stack_without_records_yields_an_empty_report_that_says_so(cluster: Cluster) -> None:
    report = await cluster.diagnose(STACK, (), OPTIONS)
    assert list(report.pods) == [] and list(report.events) == []
    assert "no record" in report.warnings[0]


async def test_a_confined_agent_reads_only_in_its_namespace(kube_api: KubeApi, retry: RetryPolicy) -> None:
    kube_api.put_object(namespace("shop"))
    kube_api.confine("shop")
    settings = KubernetesSettings(kubeconfig=kube_api.kubeconfig_path, namespace="shop", max_apply_retries=3)
    confined = Cluster(settings, retry=retry)
    try:
        objects = (config_map("a"), deployment())
        await confined.apply(update(1, *map(desired, objects), full_state=True), UNKNOWN)
        kube_api.put_object(pod("web-1"))
        kube_api.set_log("shop", "web-1", "app", "ok\n")
        kube_api.put_object(event("e1", "Pod", "web-1", "2026-11-26T10:00:00Z"))
        kube_api.clear_requests()

        report = await confined.diagnose(STACK, [desired(obj).key for obj in objects], OPTIONS)
    finally:
        confined.close()

    assert [p.name for p in report.pods] == ["web-1"]
    assert report.pods[0].containers[0].log_tail == "ok\n"
    assert [e.involved_object.name for e in report.events] == ["web-1"]
    assert list(report.warnings) == []
    assert outside_the_namespace(kube_api) == []


def outside_the_namespace(kube_api: KubeApi) -> list[str]:
    """Resource requests (not discovery documents) that are not inside `shop`."""
    strays = []
    for r in kube_api.requests():
        discovery = r.path in ("/api", "/apis", "/version")
        discovery = discovery or (r.path.startswith("/apis/") and r.path.count("/") <= 3)
        discovery = discovery or (r.path.startswith("/api/v1") and r.path.count("/") == 2)
        if not discovery and "/namespaces/shop/" not in r.path:
            strays.append(f"{r.verb} {r.path}")
    return strays
