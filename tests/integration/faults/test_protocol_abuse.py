"""Protocol abuse: duplicate, stale, reordered and forged messages, and a flood of heartbeats.

Forged streams are driven by hand on the raw stub (`RawSession`). The broker must do exactly what
the protocol says (brokkr_common/session/broker_session.py): end the stream for a message before
Hello, a second Hello or an Ack contradicting what was sent; ignore, and count in
brokkr_session_messages_ignored, answers to nonces that are not awaited and health of unknown
stacks; refuse keys that are not agents'. Meanwhile it stays healthy and the well-behaved agents
get every version as if nothing happened.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import grpc
import pytest
from google.rpc import code_pb2, status_pb2

from bench.fanout_broker import BrokerProcess
from brokkr_common.errors import FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, stack_pb2
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as session_pb2
from brokkr_common.session.times import timestamp
from tests.integration.faults.conftest import Processes
from tests.integration.faults.forged import RawSession
from tests.integration.faults.world import Admin, configmaps, converged

pytestmark = pytest.mark.postgres

TIMEOUT_SECONDS = 150
GOOD_AGENTS = 5
HEARTBEAT_FLOOD = 5000


def ack(
    nonce: str, stack_id: str, applied: stack_pb2.DeploymentObjectRef | None = None
) -> session_pb2.ConnectRequest:
    return session_pb2.ConnectRequest(
        ack=agent_session_pb2.Ack(nonce=nonce, stack_id=stack_id, deployment_object=applied)
    )


def heartbeat(sequence: int) -> session_pb2.ConnectRequest:
    return session_pb2.ConnectRequest(
        heartbeat=agent_session_pb2.Heartbeat(agent_time=timestamp(time.time()), sequence=sequence)
    )


async def test_abusive_agents_are_ignored_or_ended_and_the_others_are_unaffected(
    fault_database, processes: Processes
):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        deadline = time.time() + TIMEOUT_SECONDS
        broker = processes.broker(fault_database.url)
        await broker.start(deadline)
        admin = Admin(broker.target, broker.admin_key)
        good = await admin.create_agents(GOOD_AGENTS, prefix="good")
        (
            (early_id, early_key),
            (twice_id, twice_key),
            (forger_id, forger_key),
            (flooder_id, flooder_key),
        ) = await admin.create_agents(4, prefix="abusive")
        stack_id = await admin.create_stack()
        await admin.commit(stack_id, configmaps(1))
        fleet = processes.fleet(broker.target, [key for _, key in good])
        await fleet.start(deadline)
        await fleet.applied(1, deadline)
        ignored_before = await _ignored(broker)
        sessions: list[RawSession] = []
        try:
            # Anything before Hello ends the stream.
            early = RawSession(broker.target, early_key)
            sessions.append(early)
            early.send(heartbeat(1))
            ended = await early.ending()
            assert isinstance(ended, FailedPrecondition) and ended.reason == "HELLO_REQUIRED"

            # A second Hello ends the stream.
            twice = RawSession(broker.target, twice_key)
            sessions.append(twice)
            twice.hello()
            assert (await twice.receive()).HasField("welcome")
            twice.hello()
            ended = await twice.ending()
            assert isinstance(ended, FailedPrecondition) and ended.reason == "DUPLICATE_HELLO"

            # Keys that are not agents' open nothing.
            for key, expected, reason in (
                ("brokkr_forged_0123456789abcdef0123456789abcdef", Unauthenticated, None),
                (broker.admin_key, PermissionDenied, "ROLE_NOT_ALLOWED"),
            ):
                # Refused on the call's metadata alone. (Sending a Hello as well races the refusal:
                # grpc's client then sometimes reports its failed write as INTERNAL instead.)
                stranger = RawSession(broker.target, key)
                sessions.append(stranger)
                ended = await stranger.ending()
                assert isinstance(ended, expected), ended
                assert reason is None or ended.reason == reason

            # Forged, duplicate, stale and reordered answers are ignored and counted.
            forger = RawSession(broker.target, forger_key)
            sessions.append(forger)
            forger.hello()
            assert (await forger.receive()).HasField("welcome")
            first = await forger.receive_kind("stack_update")
            first_version = first.stack_update.deployment_object
            assert first_version.sequence_id == 1
            forger.send(
                ack(f"{uuid.uuid4()}/1", stack_id),  # another session's nonce: UNKNOWN_NONCE
                ack(first.nonce, str(uuid.uuid4())),  # a stack never sent: STALE_NONCE
                session_pb2.ConnectRequest(  # a nack of a nonce never issued: UNKNOWN_NONCE
                    nack=agent_session_pb2.Nack(
                        nonce="forged/7", stack_id=stack_id, status=status_pb2.Status(code=code_pb2.INTERNAL)
                    )
                ),
                ack(first.nonce, stack_id, first_version),  # the real answer
                ack(first.nonce, stack_id, first_version),  # its duplicate: STALE_NONCE
            )
            await admin.commit(stack_id, configmaps(2))
            second = await forger.receive_kind("stack_update")
            assert second.stack_update.deployment_object.sequence_id == 2
            # Version 3 arrives while 2 is unanswered: it is coalesced, sent once 2 is answered.
            await admin.commit(stack_id, configmaps(3))
            forger.send(ack(second.nonce, stack_id, second.stack_update.deployment_object))
            third = await forger.receive_kind("stack_update")
            assert third.stack_update.deployment_object.sequence_id == 3
            forger.send(
                ack(second.nonce, stack_id, second.stack_update.deployment_object),  # late: STALE_NONCE
                ack(third.nonce, stack_id, third.stack_update.deployment_object),
                session_pb2.ConnectRequest(  # health of a stack it does not hold: UNKNOWN_STACK
                    health_report=agent_session_pb2.HealthReport(
                        stacks=[
                            agent_session_pb2.StackHealth(
                                stack_id=str(uuid.uuid4()), health=agent_session_pb2.HEALTH_STATUS_HEALTHY
                            )
                        ]
                    )
                ),
                heartbeat(1),
            )
            # Messages are handled in order: once the heartbeat is answered, all before it were.
            assert (await forger.receive()).heartbeat_ack.sequence == 1
            ignored = _minus(await _ignored(broker), ignored_before)
            assert ignored == {"UNKNOWN_NONCE": 2, "STALE_NONCE": 3, "UNKNOWN_STACK": 1}

            # A flood of heartbeats harms no one. Each is answered, in order, unless the answers
            # pile up faster than they can be sent: then the flooder's outbox overflows and the
            # broker ends its stream (RESOURCE_EXHAUSTED) rather than queue without bound.
            flooder = RawSession(broker.target, flooder_key)
            sessions.append(flooder)
            flooder.hello()
            assert (await flooder.receive()).HasField("welcome")
            exhausted_before = await _connects_ended(broker, "RESOURCE_EXHAUSTED")
            flooder.send(*(heartbeat(n) for n in range(1, HEARTBEAT_FLOOD + 1)))
            answered = await _heartbeat_acks(flooder, HEARTBEAT_FLOOD)
            if len(answered) < HEARTBEAT_FLOOD:
                assert answered == list(range(1, len(answered) + 1))
                assert await _connects_ended(broker, "RESOURCE_EXHAUSTED") == exhausted_before + 1
            else:
                assert answered == list(range(1, HEARTBEAT_FLOOD + 1))

            # An Ack contradicting what was sent with its nonce is forged: the stream ends.
            await admin.commit(stack_id, configmaps(4))
            fourth = await forger.receive_kind("stack_update")
            wrong = stack_pb2.DeploymentObjectRef()
            wrong.CopyFrom(fourth.stack_update.deployment_object)
            wrong.sequence_id = 99
            forger.send(ack(fourth.nonce, stack_id, wrong))
            ended = await forger.ending()
            assert isinstance(ended, InvalidArgument)
            assert [v.field for v in ended.field_violations] == ["ack.deployment_object"]

            # The broker is healthy and the others never noticed: they got every version, on
            # their first stream. The forger's forged ack was not recorded: it still runs 3.
            assert await asyncio.to_thread(broker._ready)
            await fleet.applied(4, deadline)
            await converged(admin, stack_id, [agent_id for agent_id, _ in good], 4, timeout=30)
            assert [connects for _, connects in await fleet.sessions(deadline)] == [1] * GOOD_AGENTS
            statuses = {s.agent_id: s for s in await admin.statuses(stack_id)}
            assert statuses[forger_id].applied_deployment_object.sequence_id == 3
            assert statuses[early_id].applied_deployment_object.sequence_id == 0
            assert statuses[twice_id].applied_deployment_object.sequence_id == 0
            assert flooder_id in statuses
        finally:
            for session in sessions:
                await session.close()
            await admin.close()


async def _heartbeat_acks(session: RawSession, count: int) -> list[int]:
    """The sequences of the heartbeat acks received, until `count` or the end of the stream."""
    answered: list[int] = []
    while len(answered) < count:
        try:
            response = await session.receive()
        except (AssertionError, grpc.aio.AioRpcError):  # the stream ended
            return answered
        if response.HasField("heartbeat_ack"):
            answered.append(response.heartbeat_ack.sequence)
    return answered


async def _connects_ended(broker: BrokerProcess, code: str) -> float:
    """Agent streams this broker ended with `code`, by its own count."""
    labels = (("code", code), ("method", "/brokkr.v1.AgentSessionService/Connect"))
    return (await broker.metrics()).get(("brokkr_grpc_requests_total", labels), 0.0)


async def _ignored(broker: BrokerProcess) -> dict[str, float]:
    return {
        dict(labels)["reason"]: value
        for (name, labels), value in (await broker.metrics()).items()
        if name == "brokkr_session_messages_ignored_total"
    }


def _minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {
        reason: value - before.get(reason, 0.0)
        for reason, value in after.items()
        if value != before.get(reason, 0.0)
    }
