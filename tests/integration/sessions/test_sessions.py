"""Agent sessions end to end: a real broker (SQLite and PostgreSQL) and the real session client.

The agent's runtime here applies nothing; it records what the broker asked for, which is exactly
what these tests are about: full state first, then deltas, nothing on a resume without changes,
parking after a nack, removals when targeting ends, and a revoked key ending the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
import pytest
from google.protobuf import field_mask_pb2
from google.rpc import code_pb2

from agent.stream.client import ApplyFailed, ClientOptions, SessionClient
from brokkr_common.client import BrokkrClient
from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_session_pb2,
    agent_session_service_pb2,
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
    deployment_status_pb2 as status_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_status_service_pb2 as status_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceOutcome, ResourceResult
from tests.integration.harness import RunningBroker, running_broker

TIMEOUT = 20


def configmap(name: str, value: str = "v") -> str:
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: demo\n"
        f"data:\n  k: {value}\n"
    )


class RecordingRuntime:
    """Applies nothing; remembers every piece of work, and can be told to fail some."""

    def __init__(self) -> None:
        self.work: list[machine.Apply | machine.Remove] = []
        self.fail_sequence_ids: set[int] = set()
        self.changed = asyncio.Event()

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        self.work.append(work)
        self.changed.set()
        if work.deployment_object.sequence_id in self.fail_sequence_ids:
            raise ApplyFailed(InvalidArgument("the cluster refused it", reason="INVALID_OBJECT"))
        return [ResourceResult(r.key, ResourceOutcome.CREATED) for r in work.apply]

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        self.work.append(work)
        self.changed.set()
        return []

    async def probe(self) -> tuple[bool, int]:
        return True, 1

    async def next_work(self) -> machine.Apply | machine.Remove:
        seen = len(self.work)
        async with asyncio.timeout(TIMEOUT):
            while len(self.work) <= seen:
                self.changed.clear()
                await self.changed.wait()
        return self.work[seen]


class World:
    def __init__(self, running: RunningBroker) -> None:
        self.running = running
        self.admin = BrokkrClient(running.grpc_target, running.admin_key)
        created = self.admin.call(
            self.admin.agents.CreateAgent,
            agent_api.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name="edge-1",
                    cluster_name="edge",
                    labels={"env": "prod"},
                    status=agent_pb2.AGENT_STATUS_ACTIVE,
                )
            ),
        )
        self.agent_id, self.agent_key = created.agent.id, created.key
        self.stack = self.admin.call(
            self.admin.stacks.CreateStack,
            stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="app", labels={"env": "prod"})),
        ).stack

    def submit(
        self, yaml_content: str, stack_id: str | None = None
    ) -> deployment_object_pb2.DeploymentObject:
        return self.admin.call(
            self.admin.deployment_objects.CreateDeploymentObject,
            do_api.CreateDeploymentObjectRequest(
                stack_id=stack_id or self.stack.id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=yaml_content),
            ),
        ).deployment_object

    def client(self, runtime: RecordingRuntime, held=None, channel_options=()) -> SessionClient:
        options = ClientOptions(
            agent_version="test-agent",
            reconnect_base_seconds=0.05,
            reconnect_max_seconds=0.2,
            extra_channel_options=channel_options,
        )
        return SessionClient(self.running.grpc_target, lambda: self.agent_key, runtime, held or {}, options)


@pytest.fixture
def world(database_url):
    with running_broker(database_url) as running:
        world = World(running)
        yield world
        world.admin.close()


async def _connected(client: SessionClient) -> asyncio.Task[None]:
    task = asyncio.create_task(client.run())
    async with asyncio.timeout(TIMEOUT):
        await client.connected.wait()
    return task


async def _stop(client: SessionClient, task: asyncio.Task[None]) -> None:
    await client.stop()
    async with asyncio.timeout(TIMEOUT):
        await task


def _names(work: machine.Apply) -> set[str]:
    return {r.key.name for r in work.apply}


async def test_first_connect_gets_full_state_then_only_deltas(world: World):
    world.submit(configmap("one") + "---\n" + configmap("two") + "---\n" + configmap("three"))
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    try:
        first = await runtime.next_work()
        assert isinstance(first, machine.Apply)
        assert first.full_state and _names(first) == {"one", "two", "three"}
        # Change one object, drop one, add one: only those travel.
        world.submit(configmap("one", "changed") + "---\n" + configmap("two") + "---\n" + configmap("four"))
        second = await runtime.next_work()
        assert isinstance(second, machine.Apply)
        assert not second.full_state
        assert _names(second) == {"one", "four"}
        assert {k.name for k in second.remove} == {"three"}
        assert second.deployment_object.sequence_id == 2
    finally:
        await _stop(client, task)


async def test_a_stacks_first_version_and_its_next_reach_a_connected_agent(world: World):
    # The first version of a stack must be sent to every agent the stack reaches; later versions
    # only to the sessions holding the stack (the hub's shortcut). Both while the agent is connected.
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    try:
        world.submit(configmap("one"))
        first = await runtime.next_work()
        assert isinstance(first, machine.Apply) and first.deployment_object.sequence_id == 1
        world.submit(configmap("one", "changed"))
        second = await runtime.next_work()
        assert isinstance(second, machine.Apply) and second.deployment_object.sequence_id == 2
        assert _names(second) == {"one"}
    finally:
        await _stop(client, task)


async def test_resume_without_changes_sends_nothing_and_after_a_change_only_the_change(world: World):
    world.submit(configmap("one") + "---\n" + configmap("two"))
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    await runtime.next_work()
    await _stop(client, task)
    held = dict(client.held)
    assert held[world.stack.id].deployment_object.sequence_id == 1

    sent_before = _updates_sent(world)
    resumed_runtime = RecordingRuntime()
    resumed = world.client(resumed_runtime, held)
    task = await _connected(resumed)
    try:
        # A change made while connected arrives; nothing else did before it.
        world.submit(configmap("one") + "---\n" + configmap("two", "new"))
        work = await resumed_runtime.next_work()
        assert resumed_runtime.work == [work]
        assert isinstance(work, machine.Apply) and _names(work) == {"two"} and not work.full_state
        assert _updates_sent(world) == sent_before + 1
    finally:
        await _stop(resumed, task)


async def test_a_change_made_while_disconnected_arrives_alone_on_reconnect(world: World):
    world.submit(configmap("one") + "---\n" + configmap("two") + "---\n" + configmap("three"))
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    await runtime.next_work()
    await _stop(client, task)
    world.submit(configmap("one") + "---\n" + configmap("two", "new"))
    resumed_runtime = RecordingRuntime()
    resumed = world.client(resumed_runtime, dict(client.held))
    task = await _connected(resumed)
    try:
        work = await resumed_runtime.next_work()
        assert isinstance(work, machine.Apply) and not work.full_state
        assert _names(work) == {"two"} and {k.name for k in work.remove} == {"three"}
    finally:
        await _stop(resumed, task)


def _status(world: World):
    reply = world.admin.call(
        world.admin.deployment_statuses.ListDeploymentStatuses,
        status_api.ListDeploymentStatusesRequest(agent_id=world.agent_id),
    )
    (row,) = [r for r in reply.deployment_statuses if r.stack_id == world.stack.id]
    return row


async def _eventually_status(world: World, condition) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition(_status(world)):
            await asyncio.sleep(0.05)


def status_name(code: int) -> str:
    return code_pb2.Code.Name(code)


async def test_a_nack_parks_the_version_until_a_newer_one(world: World):
    world.submit(configmap("one"))
    runtime = RecordingRuntime()
    runtime.fail_sequence_ids = {2}
    client = world.client(runtime)
    task = await _connected(client)
    try:
        await runtime.next_work()
        world.submit(configmap("one", "bad"))
        failed = await runtime.next_work()
        assert failed.deployment_object.sequence_id == 2
        # The failure is visible through the API without asking the agent...
        await _eventually_status(world, lambda row: row.state == status_pb2.DEPLOYMENT_STATE_FAILED)
        row = _status(world)
        assert row.failed_deployment_object.sequence_id == 2
        assert row.applied_deployment_object.sequence_id == 1
        assert "INVALID_ARGUMENT" in status_name(row.last_error.code) and "refused" in row.last_error.message
        # ...and a sweep, which re-reads everything, does not send the parked version again.
        sent = _updates_sent(world)
        world.running.run(world.running.broker.hub.sweep())
        assert _updates_sent(world) == sent
        world.submit(configmap("one", "good"))
        fixed = await runtime.next_work()
        assert fixed.deployment_object.sequence_id == 3 and fixed.full_state  # after a nack: full state
    finally:
        await _stop(client, task)


async def test_deactivation_and_stack_deletion_send_removals(world: World):
    world.submit(configmap("one"))
    other = world.admin.call(
        world.admin.stacks.CreateStack,
        stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="other", labels={"env": "prod"})),
    ).stack
    world.submit(configmap("x"), stack_id=other.id)
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    try:
        first, second = await runtime.next_work(), await runtime.next_work()
        assert {first.stack_id, second.stack_id} == {world.stack.id, other.id}
        world.admin.call(world.admin.stacks.DeleteStack, stack_api.DeleteStackRequest(id=other.id))
        removal = await runtime.next_work()
        assert isinstance(removal, machine.Remove) and removal.stack_id == other.id
        world.admin.call(
            world.admin.agents.UpdateAgent,
            agent_api.UpdateAgentRequest(
                agent=agent_pb2.Agent(id=world.agent_id, status=agent_pb2.AGENT_STATUS_INACTIVE),
                update_mask=field_mask_pb2.FieldMask(paths=["status"]),
            ),
        )
        removal = await runtime.next_work()
        assert isinstance(removal, machine.Remove) and removal.stack_id == world.stack.id
        removals = world.running.broker.registry.get_sample_value(
            "brokkr_stack_updates_sent_total", {"kind": "removal"}
        )
        assert removals == 2
    finally:
        await _stop(client, task)


async def test_an_agent_never_receives_a_stack_not_targeted_at_it(world: World):
    world.submit(configmap("mine"))
    elsewhere = world.admin.call(
        world.admin.stacks.CreateStack,
        stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="elsewhere", labels={"env": "staging"})),
    ).stack
    world.submit(configmap("not-mine"), stack_id=elsewhere.id)
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    try:
        await runtime.next_work()
        world.submit(configmap("still-not-mine"), stack_id=elsewhere.id)
        world.submit(configmap("mine", "2"))
        await runtime.next_work()
        assert {w.stack_id for w in runtime.work} == {world.stack.id}
    finally:
        await _stop(client, task)


async def test_the_first_heartbeat_follows_the_welcome_at_once(world: World):
    # The heartbeat interval is 30 s; the agent's reachability must not wait for it.
    client = world.client(RecordingRuntime())
    task = await _connected(client)
    try:
        async with asyncio.timeout(5):
            while True:
                agent = world.admin.call(
                    world.admin.agents.GetAgent, agent_api.GetAgentRequest(id=world.agent_id)
                ).agent
                if agent.HasField("last_heartbeat_time"):
                    break
                await asyncio.sleep(0.05)
        assert agent.kubernetes_reachable
    finally:
        await _stop(client, task)


async def test_rotating_the_agents_key_ends_its_stream(world: World):
    runtime = RecordingRuntime()
    client = world.client(runtime)
    task = await _connected(client)
    try:
        world.admin.call(
            world.admin.agents.RotateAgentKey, agent_api.RotateAgentKeyRequest(id=world.agent_id)
        )
        async with asyncio.timeout(TIMEOUT):
            while client.connected.is_set():
                await asyncio.sleep(0.02)
        assert world.agent_id not in world.running.broker.hub.sessions
    finally:
        await _stop(client, task)


async def test_a_reconnect_is_a_new_stream_on_the_same_connection(world: World):
    """After a broker restart thousands of agents retry at once; a retry must not cost the broker
    a new TCP (and TLS) handshake, so every stream of a client shares one channel."""
    runtime = RecordingRuntime()
    # Each channel its own connection, as for an agent alone in its process: grpc's process-wide
    # subchannel pool could otherwise hand a new channel the old one's connection by chance.
    client = world.client(runtime, channel_options=(("grpc.use_local_subchannel_pool", 1),))
    task = await _connected(client)
    try:
        first = world.running.broker.hub.sessions[world.agent_id]
        rotated = world.admin.call(
            world.admin.agents.RotateAgentKey, agent_api.RotateAgentKeyRequest(id=world.agent_id)
        )
        world.agent_key = rotated.key  # the client reads its key again for the next stream
        async with asyncio.timeout(TIMEOUT):
            while (
                world.running.broker.hub.sessions.get(world.agent_id, first) is first
                or not client.connected.is_set()
            ):
                await asyncio.sleep(0.02)
        second = world.running.broker.hub.sessions[world.agent_id]
        assert client.connects == 2
        assert second.record.peer == first.record.peer  # same client address and port
    finally:
        await _stop(client, task)


async def test_a_message_that_does_not_decode_ends_the_stream_with_invalid_argument(world: World):
    hello = agent_session_service_pb2.ConnectRequest(
        hello=agent_session_pb2.Hello(agent_version="raw")
    ).SerializeToString()
    # ConnectRequest.hello (field 1) holding a Hello whose agent_version (field 1) is not UTF-8.
    garbage = bytes([(1 << 3) | 2, 4, (1 << 3) | 2, 2, 0xFF, 0xFE])

    async def requests():
        yield hello
        yield garbage
        await asyncio.sleep(TIMEOUT)

    async with grpc.aio.insecure_channel(world.running.grpc_target) as channel:
        connect = channel.stream_stream(
            "/brokkr.v1.AgentSessionService/Connect",
            request_serializer=lambda data: data,
            response_deserializer=agent_session_service_pb2.ConnectResponse.FromString,
        )
        call = connect(requests(), metadata=(("authorization", f"Bearer {world.agent_key}"),))

        async def drain() -> None:
            async with asyncio.timeout(TIMEOUT):
                async for _ in call:
                    pass

        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await drain()

    assert ended.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "not a valid protobuf message" in (ended.value.details() or "")


def _updates_sent(world: World) -> float:
    return (
        world.running.broker.registry.get_sample_value("brokkr_stack_updates_sent_total", {"kind": "update"})
        or 0.0
    )


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_a_change_through_one_replica_reaches_an_agent_on_the_other(database_url):
    with running_broker(database_url) as first, running_broker(database_url) as second:
        world = World(first)
        try:
            world.submit(configmap("one"))
            runtime = RecordingRuntime()
            # The agent's session is on the second replica; the change is committed through the first.
            options = ClientOptions(
                agent_version="test-agent", reconnect_base_seconds=0.05, reconnect_max_seconds=0.2
            )
            client = SessionClient(second.grpc_target, lambda: world.agent_key, runtime, {}, options)
            task = await _connected(client)
            try:
                assert (await runtime.next_work()).deployment_object.sequence_id == 1
                world.submit(configmap("one", "two"))
                update = await runtime.next_work()
                assert update.deployment_object.sequence_id == 2 and _names(update) == {"one"}
                assert world.agent_id in second.broker.hub.sessions
                assert world.agent_id not in first.broker.hub.sessions
            finally:
                await _stop(client, task)
        finally:
            world.admin.close()
