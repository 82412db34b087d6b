"""The real agent with a real broker against the kube double: health follows status changes as
the watches see them, not the periodic interval; a stack annotated to force conflicts takes the
fields another field manager owns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from agent.config import load_settings
from agent.runner import Agent
from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import agent_pb2, agent_session_pb2, deployment_object_pb2, stack_pb2
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import deployment_status_service_pb2 as status_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from brokkr_common.session.stacks import FORCE_CONFLICTS_ANNOTATION
from tests.integration.harness import RunningBroker, running_broker
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

TIMEOUT = 30
#: Far longer than any test: only a watch can explain a report within a test.
INTERVAL = 3600
DEBOUNCE = 0.2
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
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"""
ROLLED_OUT = {
    "observedGeneration": 1,
    "replicas": 2,
    "updatedReplicas": 2,
    "readyReplicas": 2,
    "availableReplicas": 2,
}


async def eventually(check: Callable[[], object], what: str, within: float = TIMEOUT) -> object:
    try:
        async with asyncio.timeout(within):
            while not (result := check()):
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"not within {within} s: {what}")
    return result


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    with running_broker(f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def admin(broker: RunningBroker) -> Iterator[BrokkrClient]:
    opened = BrokkrClient(broker.grpc_target, broker.admin_key)
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def registered(admin: BrokkrClient) -> agent_api.CreateAgentResponse:
    return admin.call(
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


@pytest.fixture
async def agent(
    broker: RunningBroker, kube_api: KubeApi, registered: agent_api.CreateAgentResponse
) -> AsyncIterator[Agent]:
    kube_api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "brokkr-system"}})
    settings = load_settings(
        broker={"address": broker.grpc_target, "key": registered.key},
        kubernetes={"kubeconfig": str(kube_api.kubeconfig_path)},
        http={"host": "127.0.0.1", "port": 0},
        health={"interval_seconds": INTERVAL, "debounce_seconds": DEBOUNCE},
    )
    running = Agent(settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


def submit(admin: BrokkrClient, content: str, annotations: dict[str, str] | None = None) -> str:
    stack = admin.call(
        admin.stacks.CreateStack,
        stack_api.CreateStackRequest(
            stack=stack_pb2.Stack(name="shop", labels={"env": "prod"}, annotations=annotations or {})
        ),
    ).stack
    admin.call(
        admin.deployment_objects.CreateDeploymentObject,
        do_api.CreateDeploymentObjectRequest(
            stack_id=stack.id, deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=content)
        ),
    )
    return stack.id


def status(admin: BrokkrClient, agent_id: str):
    rows = admin.call(
        admin.deployment_statuses.ListDeploymentStatuses,
        status_api.ListDeploymentStatusesRequest(agent_id=agent_id),
    ).deployment_statuses
    return rows[0] if rows else None


async def test_a_status_change_is_reported_within_the_debounce_window_not_the_interval(
    admin: BrokkrClient, kube_api: KubeApi, agent: Agent, registered: agent_api.CreateAgentResponse
) -> None:
    agent_id = registered.agent.id
    submit(admin, STACK)

    def reported(health: int) -> Callable[[], bool]:
        return lambda: (row := status(admin, agent_id)) is not None and row.health == health

    # The apply itself calls for an assessment: the rollout has not started.
    await eventually(reported(agent_session_pb2.HEALTH_STATUS_PROGRESSING), "health after the apply")
    await eventually(
        lambda: any(r.verb == "watch" and r.path == "/apis/apps/v1/deployments" for r in kube_api.requests()),
        "the Deployment is watched",
    )
    loop = asyncio.get_running_loop()
    changed = loop.time()
    kube_api.set_status("apps/v1", "Deployment", "shop", "web", ROLLED_OUT)

    await eventually(reported(agent_session_pb2.HEALTH_STATUS_HEALTHY), "health after the rollout", within=5)
    assert loop.time() - changed < 5 < INTERVAL


async def test_a_stack_annotated_to_force_conflicts_takes_fields_another_manager_owns(
    admin: BrokkrClient, kube_api: KubeApi, agent: Agent, registered: agent_api.CreateAgentResponse
) -> None:
    kube_api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})
    apps = client.AppsV1Api(kube_api.api_client())
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]},
            },
        },
    }
    apps.create_namespaced_deployment("shop", body, field_manager="helm")
    submit(admin, STACK.split("---\n", 1)[1], annotations={FORCE_CONFLICTS_ANNOTATION: "true"})

    await eventually(
        lambda: (
            (row := status(admin, registered.agent.id)) is not None
            and row.applied_deployment_object.sequence_id
        ),
        "the forced apply was acknowledged",
        within=10,
    )
    assert kube_api.get_object("apps/v1", "Deployment", "shop", "web")["spec"]["replicas"] == 2
