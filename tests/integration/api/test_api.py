"""The gRPC API end to end, on SQLite and on PostgreSQL: what a client sees, errors included."""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from broker.services import stacks as stack_service
from brokkr_common.client import BrokkrClient
from brokkr_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    generator_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2 as agent_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2 as do_api,
)
from brokkr_common.pb.brokkr.v1 import (
    generator_service_pb2 as generator_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from brokkr_common.pb.brokkr.v1 import (
    target_service_pb2 as target_api,
)
from tests.integration.harness import RunningBroker, running_broker

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: demo\ndata:\n  k: v\n"


@pytest.fixture
def running(database_url):
    with running_broker(database_url) as running:
        yield running


@pytest.fixture
def admin(running: RunningBroker):
    with BrokkrClient(running.grpc_target, running.admin_key) as client:
        yield client


def _create_stack(client: BrokkrClient, name: str, **fields) -> stack_pb2.Stack:
    return client.call(
        client.stacks.CreateStack, stack_api.CreateStackRequest(stack=stack_pb2.Stack(name=name, **fields))
    ).stack


def _submit(client: BrokkrClient, stack_id: str, yaml_content: str) -> deployment_object_pb2.DeploymentObject:
    request = do_api.CreateDeploymentObjectRequest(
        stack_id=stack_id, deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=yaml_content)
    )
    return client.call(client.deployment_objects.CreateDeploymentObject, request).deployment_object


def test_stack_lifecycle_versions_and_soft_deletion(admin: BrokkrClient):
    stack = _create_stack(admin, "web", description="the web tier", labels={"env": "prod"})
    assert stack.id and stack.create_time.seconds > 0 and not stack.HasField("desired_deployment_object")

    first = _submit(admin, stack.id, CONFIGMAP.format(name="one"))
    second = _submit(admin, stack.id, CONFIGMAP.format(name="two"))
    assert (first.sequence_id, second.sequence_id) == (1, 2)
    assert len(second.checksum) == 64 and second.checksum != first.checksum
    assert [r.key.name for r in second.resources] == ["two"]
    assert (
        admin.call(
            admin.stacks.GetStack, stack_api.GetStackRequest(id=stack.id)
        ).stack.desired_deployment_object.id
        == second.id
    )

    renamed = admin.call(
        admin.stacks.UpdateStack,
        stack_api.UpdateStackRequest(
            stack=stack_pb2.Stack(id=stack.id, description="changed", name="ignored-not-in-mask"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
    ).stack
    assert (renamed.name, renamed.description) == ("web", "changed")

    deleted = admin.call(admin.stacks.DeleteStack, stack_api.DeleteStackRequest(id=stack.id)).stack
    assert deleted.delete_time.seconds > 0
    assert deleted.desired_deployment_object.is_deletion_marker
    assert deleted.desired_deployment_object.sequence_id == 3
    with pytest.raises(FailedPrecondition):
        _submit(admin, stack.id, CONFIGMAP.format(name="three"))
    live = admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest()).stacks
    assert stack.id not in [s.id for s in live]
    everything = admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest(show_deleted=True)).stacks
    assert stack.id in [s.id for s in everything]
    # The name is free again once the stack is deleted.
    assert _create_stack(admin, "web").id != stack.id


def test_invalid_yaml_is_refused_with_the_field_named_and_nothing_written(running: RunningBroker, admin):
    stack = _create_stack(admin, "app")
    request = do_api.CreateDeploymentObjectRequest(
        stack_id=stack.id,
        deployment_object=deployment_object_pb2.DeploymentObject(
            yaml_content="kind: ConfigMap\nmetadata: {}\n"
        ),
    )
    with pytest.raises(grpc.RpcError) as raised:
        admin.deployment_objects.CreateDeploymentObject(request)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(raised.value)
    kinds = {detail.TypeName() for detail in status.details}
    assert {"google.rpc.ErrorInfo", "google.rpc.BadRequest"} <= kinds
    bad_request = error_details_pb2.BadRequest()
    next(d for d in status.details if d.Is(bad_request.DESCRIPTOR)).Unpack(bad_request)
    assert bad_request.field_violations[0].field.startswith("deployment_object.yaml_content")
    listed = admin.call(
        admin.deployment_objects.ListDeploymentObjects, do_api.ListDeploymentObjectsRequest(stack_id=stack.id)
    )
    assert list(listed.deployment_objects) == []


def test_every_violation_of_a_request_is_reported_at_once(admin):
    with pytest.raises(InvalidArgument) as raised:
        _create_stack(admin, "Not A DNS Label", labels={"bad key!": "x"}, description="x" * 2000)
    fields = {v.field.split("[")[0] for v in raised.value.field_violations}
    assert {"stack.name", "stack.labels", "stack.description"} <= fields


def test_repeated_create_with_the_same_request_id_returns_the_first_result(admin):
    request = stack_api.CreateStackRequest(
        stack=stack_pb2.Stack(name="once"), request_id="6f1c1a1e-4a55-4a6b-9b0e-5c1f0e4d2a10"
    )
    first = admin.call(admin.stacks.CreateStack, request).stack
    again = admin.call(admin.stacks.CreateStack, request).stack
    assert first.id == again.id
    assert [s.name for s in admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest()).stacks] == [
        "once"
    ]


def test_pages_walk_every_stack_once_and_foreign_tokens_are_refused(admin):
    names = {f"stack-{i:02d}" for i in range(7)}
    for name in names:
        _create_stack(admin, name)
    seen, token, pages = [], "", 0
    while True:
        reply = admin.call(
            admin.stacks.ListStacks, stack_api.ListStacksRequest(page_size=3, page_token=token)
        )
        seen += [s.name for s in reply.stacks]
        pages += 1
        token = reply.next_page_token
        if not token:
            break
    assert pages == 3 and sorted(seen) == sorted(names) and seen == sorted(seen)
    first = admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest(page_size=3))
    with pytest.raises(InvalidArgument) as raised:
        admin.call(
            admin.stacks.ListStacks,
            stack_api.ListStacksRequest(
                page_size=3, page_token=first.next_page_token, label_selector="env=prod"
            ),
        )
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


def test_targeting_by_label_needs_a_registration_and_an_active_agent(running: RunningBroker, admin):
    generator = admin.call(
        admin.generators.CreateGenerator,
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="team-a")),
    )
    agent = admin.call(
        admin.agents.CreateAgent,
        agent_api.CreateAgentRequest(
            agent=agent_pb2.Agent(name="edge-1", cluster_name="edge", labels={"env": "prod"})
        ),
    ).agent
    assert agent.status == agent_pb2.AGENT_STATUS_INACTIVE
    stack = _create_stack(admin, "app", generator_id=generator.generator.id, labels={"env": "prod"})

    def reached() -> list[str]:
        return [
            s.id
            for s in admin.call(
                admin.agents.ListAgentStacks, agent_api.ListAgentStacksRequest(id=agent.id)
            ).stacks
        ]

    admin.call(
        admin.agents.UpdateAgent,
        agent_api.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, status=agent_pb2.AGENT_STATUS_ACTIVE),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
    )
    assert reached() == []  # shared label, but the agent is not registered with the stack's generator
    admin.call(
        admin.targets.CreateRegistration,
        target_api.CreateRegistrationRequest(agent_id=agent.id, generator_id=generator.generator.id),
    )
    assert reached() == [stack.id]
    matches = admin.call(admin.stacks.ListStackAgents, stack_api.ListStackAgentsRequest(id=stack.id)).matches
    assert [(m.agent_id, list(m.shared_labels), m.explicit) for m in matches] == [
        (agent.id, ["env=prod"], False)
    ]
    admin.call(
        admin.agents.UpdateAgent,
        agent_api.UpdateAgentRequest(
            agent=agent_pb2.Agent(id=agent.id, status=agent_pb2.AGENT_STATUS_INACTIVE),
            update_mask=field_mask_pb2.FieldMask(paths=["status"]),
        ),
    )
    assert reached() == []


def test_a_rotated_key_stops_working_at_once(running: RunningBroker, admin):
    created = admin.call(
        admin.generators.CreateGenerator,
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="ci")),
    )
    with BrokkrClient(running.grpc_target, created.key) as old:
        old.call(old.stacks.ListStacks, stack_api.ListStacksRequest())
        new_key = old.call(
            old.generators.RotateGeneratorKey,
            generator_api.RotateGeneratorKeyRequest(id=created.generator.id),
        ).key
        with pytest.raises(Unauthenticated):
            old.call(old.stacks.ListStacks, stack_api.ListStacksRequest())
    with BrokkrClient(running.grpc_target, new_key) as new:
        new.call(new.stacks.ListStacks, stack_api.ListStacksRequest())


def test_a_generator_cannot_touch_another_generators_stack(running: RunningBroker, admin):
    keys = [
        admin.call(
            admin.generators.CreateGenerator,
            generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=name)),
        ).key
        for name in ("team-a", "team-b")
    ]
    with (
        BrokkrClient(running.grpc_target, keys[0]) as team_a,
        BrokkrClient(running.grpc_target, keys[1]) as team_b,
    ):
        stack = _create_stack(team_a, "mine")
        with pytest.raises(PermissionDenied):
            team_b.call(team_b.stacks.GetStack, stack_api.GetStackRequest(id=stack.id))
        with pytest.raises(PermissionDenied):
            _submit(team_b, stack.id, CONFIGMAP.format(name="x"))
        assert list(team_b.call(team_b.stacks.ListStacks, stack_api.ListStacksRequest()).stacks) == []


def test_unexpected_failures_become_internal_with_a_correlation_id_and_no_details(
    running, admin, monkeypatch
):
    async def explode(*args, **kwargs):
        raise RuntimeError("secret-internal-detail")

    monkeypatch.setattr(stack_service, "get_stack", explode)
    with pytest.raises(grpc.RpcError) as raised:
        admin.stacks.GetStack(stack_api.GetStackRequest(id="00000000-0000-0000-0000-000000000000"))
    assert raised.value.code() is grpc.StatusCode.INTERNAL
    assert "correlation id" in raised.value.details()
    assert "secret-internal-detail" not in raised.value.details()
    assert "Traceback" not in raised.value.details()


def test_health_checking_and_reflection_work_without_a_key(running: RunningBroker):
    health = health_pb2_grpc.HealthStub(running.channel)
    assert health.Check(health_pb2.HealthCheckRequest()).status == health_pb2.HealthCheckResponse.SERVING
    assert (
        health.Check(health_pb2.HealthCheckRequest(service="brokkr.v1.StackService")).status
        == health_pb2.HealthCheckResponse.SERVING
    )
    reflection = reflection_pb2_grpc.ServerReflectionStub(running.channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    names = {s.name for s in next(replies).list_services_response.service}
    assert {"brokkr.v1.StackService", "brokkr.v1.AgentService", "grpc.health.v1.Health"} <= names
