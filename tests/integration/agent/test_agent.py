"""The real agent (runner, session client, Kubernetes layer) with a real broker, against the
Kubernetes API double over real HTTP: what a user installing Brokkr in one cluster sees."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import load_settings
from agent.runner import Agent
from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2 as agent_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2 as do_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_status_service_pb2 as status_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from tests.integration.harness import RunningBroker, running_broker
from tests.kube_double.handle import KubeApi

pytest_plugins = ["tests.kube_double.fixtures"]

TIMEOUT = 30
STACK_V1 = """apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: shop
data:
  colour: blue
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: obsolete
  namespace: shop
data:
  a: b
"""
STACK_V2 = STACK_V1.replace("colour: blue", "colour: green").split(
    "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: obsolete"
)[0]


async def _eventually(check: Callable[[], object], what: str) -> object:
    async with asyncio.timeout(TIMEOUT):
        while not (result := check()):
            await asyncio.sleep(0.05)
    assert result, what
    return result


@pytest.fixture
def broker(tmp_path: Path):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}") as running:
        yield running


def _statuses(admin: BrokkrClient, agent_id: str):
    reply = admin.call(
        admin.deployment_statuses.ListDeploymentStatuses,
        status_api.ListDeploymentStatusesRequest(agent_id=agent_id),
    )
    return list(reply.deployment_statuses)


async def test_the_agent_applies_prunes_reports_and_resumes_after_a_restart(
    broker: RunningBroker, kube_api: KubeApi
):
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

    def submit(content: str) -> None:
        admin.call(
            admin.deployment_objects.CreateDeploymentObject,
            do_api.CreateDeploymentObjectRequest(
                stack_id=stack.id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=content),
            ),
        )

    submit(STACK_V1)
    settings = load_settings(
        broker={"address": broker.grpc_target, "key": created.key},
        kubernetes={"kubeconfig": str(kube_api.kubeconfig_path)},
        http={"host": "127.0.0.1", "port": 0},
        health={"interval_seconds": 0.2},
    )
    agent = Agent(settings)
    await agent.start()
    try:
        config = await _eventually(
            lambda: kube_api.get_object("v1", "ConfigMap", "shop", "settings"), "the ConfigMap was applied"
        )
        assert config["data"] == {"colour": "blue"}
        await _eventually(lambda: kube_api.get_object("v1", "ConfigMap", "shop", "obsolete"), "all applied")

        def applied_and_healthy() -> bool:
            rows = _statuses(admin, created.agent.id)
            return bool(rows) and rows[0].applied_deployment_object.sequence_id == 1 and rows[0].health != 0

        await _eventually(applied_and_healthy, "the ack and a health report reached the broker")
        # The probe endpoint runs on this event loop: ask it from a thread.
        url = f"http://127.0.0.1:{agent.http_port}/readyz"
        ready = await asyncio.to_thread(lambda: json.loads(urllib.request.urlopen(url, timeout=5).read()))
        assert ready == {"status": "ready"}

        submit(STACK_V2)
        await _eventually(
            lambda: kube_api.get_object("v1", "ConfigMap", "shop", "obsolete") is None,
            "the object dropped from the stack was pruned",
        )
        assert kube_api.get_object("v1", "ConfigMap", "shop", "settings")["data"] == {"colour": "green"}
        await _eventually(
            lambda: _statuses(admin, created.agent.id)[0].applied_deployment_object.sequence_id == 2,
            "version 2 acknowledged",
        )
    finally:
        await agent.stop()

    # A restart rebuilds what the agent holds from the cluster: nothing is sent again, nothing written.
    sent_before = broker.broker.registry.get_sample_value(
        "brokkr_stack_updates_sent_total", {"kind": "update"}
    )
    writes_before = kube_api.write_count
    restarted = Agent(settings)
    await restarted.start()
    try:
        await _eventually(restarted.client.connected.is_set, "the restarted agent reconnected")
        await asyncio.sleep(0.5)
        assert (
            broker.broker.registry.get_sample_value("brokkr_stack_updates_sent_total", {"kind": "update"})
            == sent_before
        )
        assert kube_api.write_count == writes_before
        # Deleting the stack removes everything it applied, the Namespace Brokkr created included.
        admin.call(admin.stacks.DeleteStack, stack_api.DeleteStackRequest(id=stack.id))
        await _eventually(
            lambda: kube_api.get_object("v1", "ConfigMap", "shop", "settings") is None,
            "the stack's objects were removed",
        )
        await _eventually(
            lambda: kube_api.get_object("v1", "Namespace", None, "shop") is None,
            "the namespace Brokkr created was removed",
        )
    finally:
        await restarted.stop()
        admin.close()
