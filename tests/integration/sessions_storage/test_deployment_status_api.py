"""DeploymentStatusService through a real broker, on SQLite and PostgreSQL: "which version runs where"
answered from what agents reported, pending for agents that never did, and each caller seeing only
what is theirs. Agents' reports are written the way the session layer writes them."""

from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import grpc
import pytest

from broker.domain.deployments import ApplyReport, Heartbeat, Report, ResourceOutcome, SessionOpened
from broker.services import sessions
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
    deployment_status_pb2,
    deployment_status_service_pb2,
    deployment_status_service_pb2_grpc,
    generator_pb2,
    generator_service_pb2,
    generator_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2,
    stack_service_pb2_grpc,
    target_service_pb2,
    target_service_pb2_grpc,
)
from tests.integration.harness import RunningBroker, running_broker

PENDING = deployment_status_pb2.DEPLOYMENT_STATE_PENDING
APPLIED = deployment_status_pb2.DEPLOYMENT_STATE_APPLIED
CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: demo\ndata:\n  a: b\n"


@dataclass
class World:
    """Generator G owns stack S (env=prod) and has agents A1 and A2 registered; A3 is registered with
    nobody but explicitly targeted by S; the admin's stack T (env=prod) reaches all three; G2 is a
    stranger. S and T have one deployment object each."""

    running: RunningBroker
    keys: dict[str, str]
    agents: dict[str, str]
    s: str
    t: str
    s_version: deployment_object_pb2.DeploymentObject

    def list(
        self, caller: str, **request: object
    ) -> deployment_status_service_pb2.ListDeploymentStatusesResponse:
        stub = deployment_status_service_pb2_grpc.DeploymentStatusServiceStub(self.running.channel)
        return stub.ListDeploymentStatuses(
            deployment_status_service_pb2.ListDeploymentStatusesRequest(**request),
            metadata=self.running.metadata(self.keys[caller]),
        )

    def report(self, reports: list[Report]) -> None:
        uow = self.running.broker.database.uow_factory()
        self.running.run(sessions.record_reports(uow(), reports))


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def build_world(running: RunningBroker) -> World:
    channel, md = running.channel, running.metadata(running.admin_key)
    generators = generator_service_pb2_grpc.GeneratorServiceStub(channel)
    agents = agent_service_pb2_grpc.AgentServiceStub(channel)
    stacks = stack_service_pb2_grpc.StackServiceStub(channel)
    targets = target_service_pb2_grpc.TargetServiceStub(channel)
    versions = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(channel)
    g, g2 = (
        generators.CreateGenerator(
            generator_service_pb2.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_unique(n))),
            metadata=md,
        )
        for n in ("g", "g2")
    )
    created = {
        name: agents.CreateAgent(
            agent_service_pb2.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name=_unique(name),
                    cluster_name="c",
                    labels={"env": "prod"},
                    status=agent_pb2.AGENT_STATUS_ACTIVE,
                )
            ),
            metadata=md,
        )
        for name in ("a1", "a2", "a3")
    }
    for name in ("a1", "a2"):
        targets.CreateRegistration(
            target_service_pb2.CreateRegistrationRequest(
                agent_id=created[name].agent.id, generator_id=g.generator.id
            ),
            metadata=md,
        )
    s, t = (
        stacks.CreateStack(
            stack_service_pb2.CreateStackRequest(
                stack=stack_pb2.Stack(name=_unique(name), generator_id=owner, labels={"env": "prod"})
            ),
            metadata=md,
        ).stack
        for name, owner in (("s", g.generator.id), ("t", ""))
    )
    targets.CreateTarget(
        target_service_pb2.CreateTargetRequest(agent_id=created["a3"].agent.id, stack_id=s.id), metadata=md
    )
    s_version, _ = (
        versions.CreateDeploymentObject(
            deployment_object_service_pb2.CreateDeploymentObjectRequest(
                stack_id=stack.id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=CONFIGMAP),
            ),
            metadata=md,
        ).deployment_object
        for stack in (s, t)
    )
    return World(
        running=running,
        keys={
            "admin": running.admin_key or "",
            "g": g.key,
            "g2": g2.key,
            **{name: created[name].key for name in created},
        },
        agents={name: created[name].agent.id for name in created},
        s=s.id,
        t=t.id,
        s_version=s_version,
    )


@pytest.fixture
def world(database_url: str):
    with running_broker(database_url) as running:
        yield build_world(running)


def test_a_stack_lists_every_agent_it_reaches_pending_until_each_acknowledges(world: World):
    a1, a2, a3 = (world.agents[name] for name in ("a1", "a2", "a3"))

    before = world.list("admin", stack_id=world.s)
    world.report(
        [
            ApplyReport(
                a1,
                world.s,
                world.s_version.id,
                True,
                datetime.now(UTC),
                resources=(ResourceOutcome("/v1/ConfigMap/demo/settings", "CREATED"),),
            )
        ]
    )
    after = world.list("admin", stack_id=world.s)

    assert sorted(s.agent_id for s in before.deployment_statuses) == sorted([a1, a2, a3])
    assert {s.state for s in before.deployment_statuses} == {PENDING}
    assert {s.desired_deployment_object.id for s in before.deployment_statuses} == {world.s_version.id}
    assert not before.deployment_statuses[0].HasField("applied_deployment_object")
    shown = {s.agent_id: s for s in after.deployment_statuses}
    assert (shown[a1].state, shown[a1].applied_deployment_object.id) == (APPLIED, world.s_version.id)
    assert shown[a1].resource_results[0].key.kind == "ConfigMap"
    assert shown[a1].resource_results[0].outcome == deployment_status_pb2.RESOURCE_APPLY_OUTCOME_CREATED
    assert shown[a1].HasField("update_time")
    assert (shown[a2].state, shown[a3].state) == (PENDING, PENDING)


def test_statuses_come_in_pages(world: World):
    first = world.list("admin", stack_id=world.s, page_size=2)
    second = world.list("admin", stack_id=world.s, page_size=2, page_token=first.next_page_token)

    ids = [s.agent_id for s in (*first.deployment_statuses, *second.deployment_statuses)]
    assert ids == sorted(world.agents.values())
    assert (len(first.deployment_statuses), second.next_page_token) == (2, "")


def test_each_caller_sees_only_its_own_statuses(world: World):
    a1, a2 = world.agents["a1"], world.agents["a2"]

    assert sorted(s.agent_id for s in world.list("g", stack_id=world.s).deployment_statuses) == sorted(
        [a1, a2]
    )
    assert {s.stack_id for s in world.list("g", agent_id=a1).deployment_statuses} == {world.s}
    assert {s.stack_id for s in world.list("a1", agent_id=a1).deployment_statuses} == {world.s, world.t}
    for caller, request in (
        ("g2", {"stack_id": world.s}),
        ("g2", {"agent_id": a1}),
        ("a1", {"agent_id": a2}),
        ("a1", {"stack_id": world.s}),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            world.list(caller, **request)
        assert refused.value.code() is grpc.StatusCode.PERMISSION_DENIED, (caller, request)


@pytest.mark.parametrize("request_fields", [{}, {"stack_id": "s", "agent_id": "a"}, {"agent_id": "nope"}])
def test_a_list_names_exactly_one_stack_or_agent(world: World, request_fields: dict[str, str]):
    fields = {key: world.s if key == "stack_id" else value for key, value in request_fields.items()}

    with pytest.raises(grpc.RpcError) as refused:
        world.list("admin", **fields)

    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_an_agents_connection_and_statuses_show_through_rest(world: World):
    a1 = world.agents["a1"]
    beat = datetime.now(UTC)
    world.report(
        [
            SessionOpened(a1, str(uuid.uuid4()), "broker-0", "ipv4:10.0.0.9:1", beat),
            Heartbeat(a1, beat, True, 4),
        ]
    )

    agent = _get(world, f"/api/v1/agents/{a1}")
    statuses = _get(world, f"/api/v1/agents/{a1}/deployment-statuses")

    assert (agent["connectionState"], agent["kubernetesReachable"]) == ("CONNECTION_STATE_CONNECTED", True)
    assert agent["lastHeartbeatTime"].startswith(beat.strftime("%Y-%m-%dT%H:%M:%S"))
    assert sorted(s["stackId"] for s in statuses["deploymentStatuses"]) == sorted([world.s, world.t])
    assert {s["state"] for s in statuses["deploymentStatuses"]} == {"DEPLOYMENT_STATE_PENDING"}


def _get(world: World, path: str) -> dict:
    assert world.running.rest_url is not None
    request = urllib.request.Request(
        world.running.rest_url + path, headers={"Authorization": f"Bearer {world.keys['admin']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())
