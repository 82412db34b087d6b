"""Diagnostics end to end, on SQLite and PostgreSQL: an admin asks over gRPC or REST, the request
travels over the real agent's session, the agent reads pods, events and logs from the Kubernetes
API double over real HTTP, and the report is read back. Requests to a disconnected agent wait and
are delivered when it connects, expire when it never does, and fail for an agent that cannot
diagnose; collecting does not wait for an apply, and the sweep delivers what a missed notification
did not."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from functools import partial

import grpc
import pytest
from google.rpc import error_details_pb2

from agent.config import load_settings
from agent.runner import Agent
from agent.stream.client import ClientOptions, SessionClient
from broker.db.unit_of_work import SqlUnitOfWork
from broker.domain.model import ADMIN
from broker.services import diagnostics as diagnostics_service
from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    diagnostics_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import diagnostics_service_pb2 as api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceResult
from tests.integration.harness import RunningBroker, running_broker
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

TIMEOUT = 30
STACK = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: app
        image: shop/web:1.0
"""
LOG = "".join(f"line {n}\n" for n in range(1, 101))
CRASH = "panic: out of memory\n"


@pytest.fixture
def broker(database_url: str) -> Iterator[RunningBroker]:
    with running_broker(database_url) as running:
        yield running


async def eventually(check: Callable[[], object], what: str) -> object:
    async with asyncio.timeout(TIMEOUT):
        while not (result := await asyncio.to_thread(check)):
            await asyncio.sleep(0.05)
    assert result, what
    return result


def setup(
    broker: RunningBroker, kube_api: KubeApi
) -> tuple[BrokkrClient, agent_api.CreateAgentResponse, str]:
    kube_api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "brokkr-system"}})
    admin = BrokkrClient(broker.grpc_target, broker.admin_key)
    created = admin.call(
        admin.agents.CreateAgent,
        agent_api.CreateAgentRequest(
            agent=agent_pb2.Agent(
                name="edge-1",
                cluster_name="edge",
                labels={"env": "prod"},
                status=agent_pb2.AGENT_STATUS_ACTIVE,
            )
        ),
    )
    stack = admin.call(
        admin.stacks.CreateStack,
        stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="shop", labels={"env": "prod"})),
    ).stack
    admin.call(
        admin.deployment_objects.CreateDeploymentObject,
        do_api.CreateDeploymentObjectRequest(
            stack_id=stack.id, deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=STACK)
        ),
    )
    return admin, created, stack.id


def crashing_pod(kube_api: KubeApi) -> None:
    """A pod of the Deployment whose container crash-loops after being OOM-killed, with logs and
    events; and a pod of something else, whose events must not show."""
    for name, app in (("web-5d9c-abcde", "web"), ("other-1", "other")):
        kube_api.put_object(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": "shop",
                    "labels": {"app": app},
                    "ownerReferences": [
                        {
                            "apiVersion": "apps/v1",
                            "kind": "ReplicaSet",
                            "name": "web-5d9c",
                            "uid": "u1",
                            "controller": True,
                        }
                    ],
                },
                "spec": {"containers": [{"name": "app", "image": "shop/web:1.0"}]},
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False", "reason": "ContainersNotReady"}],
                    "containerStatuses": [
                        {
                            "name": "app",
                            "ready": False,
                            "restartCount": 5,
                            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                            "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                        }
                    ],
                },
            }
        )
        kube_api.put_object(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{name}.1", "namespace": "shop"},
                "involvedObject": {"apiVersion": "v1", "kind": "Pod", "namespace": "shop", "name": name},
                "type": "Warning",
                "reason": "BackOff",
                "message": f"Back-off restarting failed container app in pod {name}",
                "count": 7,
                "lastTimestamp": "2026-11-26T10:00:00Z",
            }
        )
    kube_api.put_object(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": "web.1", "namespace": "shop"},
            "involvedObject": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "namespace": "shop",
                "name": "web",
            },
            "type": "Normal",
            "reason": "ScalingReplicaSet",
            "message": "Scaled up replica set web-5d9c to 1",
            "count": 1,
            "lastTimestamp": "2026-11-26T09:00:00Z",
        }
    )
    kube_api.set_log("shop", "web-5d9c-abcde", "app", LOG)
    kube_api.set_log("shop", "web-5d9c-abcde", "app", CRASH, previous=True)


def ask(admin: BrokkrClient, agent_id: str, stack_id: str, **options: object) -> diagnostics_pb2.Diagnostics:
    return admin.call(
        admin.diagnostics.CreateDiagnostics,
        api.CreateDiagnosticsRequest(
            diagnostics=diagnostics_pb2.Diagnostics(
                agent_id=agent_id, stack_id=stack_id, options=diagnostics_pb2.DiagnosticsOptions(**options)
            )
        ),
    ).diagnostics


def read(admin: BrokkrClient, diagnostics_id: str) -> diagnostics_pb2.Diagnostics:
    return admin.call(
        admin.diagnostics.GetDiagnostics, api.GetDiagnosticsRequest(id=diagnostics_id)
    ).diagnostics


def in_state(admin: BrokkrClient, diagnostics_id: str, state: int) -> Callable[[], object]:
    return lambda: (found := read(admin, diagnostics_id)).state == state and found


def agent_settings(broker: RunningBroker, kube_api: KubeApi, key: str):
    return load_settings(
        broker={"address": broker.grpc_target, "key": key},
        kubernetes={"kubeconfig": str(kube_api.kubeconfig_path)},
        http={"host": "127.0.0.1", "port": 0},
        health={"interval_seconds": 5},
    )


def error_reason(found: diagnostics_pb2.Diagnostics) -> str:
    info = error_details_pb2.ErrorInfo()
    assert found.error.details[0].Unpack(info)
    return info.reason


async def test_a_crash_looping_deployment_is_diagnosed_over_grpc_and_rest(
    broker: RunningBroker, kube_api: KubeApi
):
    admin, created, stack_id = setup(broker, kube_api)
    agent = Agent(agent_settings(broker, kube_api, created.key))
    await agent.start()
    try:
        await eventually(lambda: kube_api.get_object("apps/v1", "Deployment", "shop", "web"), "applied")
        crashing_pod(kube_api)
        asked = ask(admin, created.agent.id, stack_id, log_tail_lines=2, include_previous_logs=True)
        assert asked.state == diagnostics_pb2.DIAGNOSTICS_STATE_PENDING
        done = await eventually(
            in_state(admin, asked.id, diagnostics_pb2.DIAGNOSTICS_STATE_COMPLETED), "the agent answered"
        )
    finally:
        await agent.stop()
    report = done.report
    assert [(p.namespace, p.name) for p in report.pods] == [("shop", "web-5d9c-abcde")]
    pod = report.pods[0]
    assert (pod.phase, pod.owner) == ("Running", "ReplicaSet/web-5d9c")
    assert [(c.type, c.status) for c in pod.conditions] == [("Ready", "False")]
    (container,) = pod.containers
    assert (container.state, container.reason, container.restart_count) == ("waiting", "CrashLoopBackOff", 5)
    assert (container.last_termination_reason, container.last_exit_code) == ("OOMKilled", 137)
    assert container.log_tail == "line 99\nline 100\n"
    assert container.previous_log_tail == CRASH
    assert not container.log_truncated and not report.truncated
    assert [(e.reason, e.involved_object.kind, e.involved_object.name) for e in report.events] == [
        ("BackOff", "Pod", "web-5d9c-abcde"),
        ("ScalingReplicaSet", "Deployment", "web"),
    ]
    assert report.events[0].count == 7
    assert done.send_time.seconds and done.complete_time.seconds
    # The kubelet's log endpoint was asked for the tail and a byte limit, not the whole log.
    log_queries = [r.query for r in kube_api.requests() if r.path.endswith("/log")]
    assert {q["tailLines"][0] for q in log_queries} == {"2"}
    assert {q["limitBytes"][0] for q in log_queries} == {"16384"}

    # The REST shim reads the same resource, and lists it.
    def rest(path: str) -> dict:
        request = urllib.request.Request(
            f"{broker.rest_url}{path}", headers={"Authorization": f"Bearer {broker.admin_key}"}
        )
        return json.loads(urllib.request.urlopen(request, timeout=10).read())

    body = await asyncio.to_thread(rest, f"/api/v1/diagnostics/{asked.id}")
    assert body["state"] == "DIAGNOSTICS_STATE_COMPLETED"
    assert body["report"]["pods"][0]["containers"][0]["lastTerminationReason"] == "OOMKilled"
    listed = await asyncio.to_thread(rest, f"/api/v1/diagnostics?agentId={created.agent.id}")
    assert [d["id"] for d in listed["diagnostics"]] == [asked.id]
    assert listed["diagnostics"][0].get("report") is None  # lists leave reports out
    admin.close()


async def test_a_request_waits_for_a_disconnected_agent_and_reaches_it_when_it_connects(
    broker: RunningBroker, kube_api: KubeApi
):
    admin, created, stack_id = setup(broker, kube_api)
    # Created over REST, while the agent is away: it waits, PENDING.
    payload = json.dumps({"agentId": created.agent.id, "stackId": stack_id}).encode()
    request = urllib.request.Request(
        f"{broker.rest_url}/api/v1/diagnostics",
        data=payload,
        method="POST",
        headers={"Authorization": f"Bearer {broker.admin_key}", "Content-Type": "application/json"},
    )
    body = json.loads(await asyncio.to_thread(lambda: urllib.request.urlopen(request, timeout=10).read()))
    assert body["state"] == "DIAGNOSTICS_STATE_PENDING"
    broker.run(broker.broker.hub.sweep())  # a sweep does not lose it either
    assert read(admin, body["id"]).state == diagnostics_pb2.DIAGNOSTICS_STATE_PENDING
    agent = Agent(agent_settings(broker, kube_api, created.key))
    await agent.start()
    try:
        done = await eventually(
            in_state(admin, body["id"], diagnostics_pb2.DIAGNOSTICS_STATE_COMPLETED), "delivered on connect"
        )
    finally:
        await agent.stop()
    assert list(done.report.pods) == []  # no controller runs here: the Deployment has no pods
    admin.close()


async def test_a_request_to_an_agent_that_never_connects_expires(database_url: str, kube_api: KubeApi):
    with running_broker(database_url, diagnostics={"timeout_seconds": 0.5}) as broker:
        admin, created, stack_id = setup(broker, kube_api)
        asked = ask(admin, created.agent.id, stack_id)
        broker.run(broker.broker.hub.sweep())
        assert read(admin, asked.id).state == diagnostics_pb2.DIAGNOSTICS_STATE_PENDING
        await asyncio.sleep(0.6)
        broker.run(broker.broker.hub.sweep())
        expired = read(admin, asked.id)
        admin.close()
    assert expired.state == diagnostics_pb2.DIAGNOSTICS_STATE_EXPIRED
    assert expired.error.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert error_reason(expired) == "DIAGNOSTICS_EXPIRED"


class OldRuntime:
    """An agent from before diagnostics: applies nothing, advertises no capability."""

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        return []

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        return []

    async def probe(self) -> tuple[bool, int]:
        return True, 1


async def test_an_agent_without_the_capability_fails_the_request(broker: RunningBroker, kube_api: KubeApi):
    admin, created, stack_id = setup(broker, kube_api)
    client = SessionClient(broker.grpc_target, lambda: created.key, OldRuntime(), {})
    running = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), TIMEOUT)
        asked = ask(admin, created.agent.id, stack_id)
        failed = await eventually(
            in_state(admin, asked.id, diagnostics_pb2.DIAGNOSTICS_STATE_FAILED), "refused for the old agent"
        )
    finally:
        await client.stop()
        await running
    assert error_reason(failed) == "AGENT_CANNOT_DIAGNOSE"
    assert failed.error.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
    admin.close()


class StuckRuntime(OldRuntime):
    """Its applies hang until released; its diagnoses answer at once."""

    def __init__(self) -> None:
        self.applying = asyncio.Event()
        self.release = asyncio.Event()

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        self.applying.set()
        await self.release.wait()
        return []

    async def diagnose(self, work: machine.Diagnose) -> diagnostics_pb2.DiagnosticsReport:
        return diagnostics_pb2.DiagnosticsReport(warnings=[f"collected for {work.stack_id}"])


async def test_diagnostics_do_not_wait_for_an_apply_in_progress(broker: RunningBroker, kube_api: KubeApi):
    admin, created, stack_id = setup(broker, kube_api)
    runtime = StuckRuntime()
    options = ClientOptions(capabilities=(machine.DIAGNOSTICS,))
    client = SessionClient(broker.grpc_target, lambda: created.key, runtime, {}, options)
    running = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(runtime.applying.wait(), TIMEOUT)
        asked = ask(admin, created.agent.id, stack_id)
        done = await eventually(
            in_state(admin, asked.id, diagnostics_pb2.DIAGNOSTICS_STATE_COMPLETED),
            "answered during the apply",
        )
        assert not runtime.release.is_set()
    finally:
        runtime.release.set()
        await client.stop()
        await running
    assert list(done.report.warnings) == [f"collected for {stack_id}"]
    admin.close()


async def test_the_sweep_sends_a_request_whose_notification_was_missed(
    broker: RunningBroker, kube_api: KubeApi
):
    admin, created, stack_id = setup(broker, kube_api)
    runtime = StuckRuntime()
    runtime.release.set()
    options = ClientOptions(capabilities=(machine.DIAGNOSTICS,))
    client = SessionClient(broker.grpc_target, lambda: created.key, runtime, {}, options)
    running = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), TIMEOUT)
        await asyncio.sleep(0.2)  # the session's own look at open requests is done
        # Stored without announcing it (no NOTIFY, no hand-over after commit): only the sweep can tell.
        silent = partial(SqlUnitOfWork, broker.broker.database.engine)
        stored = broker.run(
            diagnostics_service.create_diagnostics(
                silent(), ADMIN, agent_id=created.agent.id, stack_id=stack_id
            )
        )
        await asyncio.sleep(0.3)
        assert read(admin, stored.id).state == diagnostics_pb2.DIAGNOSTICS_STATE_PENDING
        broker.run(broker.broker.hub.sweep())
        await eventually(in_state(admin, stored.id, diagnostics_pb2.DIAGNOSTICS_STATE_COMPLETED), "swept")
    finally:
        await client.stop()
        await running
    admin.close()
