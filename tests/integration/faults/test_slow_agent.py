"""An agent that never reads its stream must cost the others nothing and the broker bounded memory.

The slow agent says Hello and keeps sending heartbeats (it is alive, so no timeout saves the
broker), but never reads a byte of what the broker sends; its HTTP/2 window stays at the initial
64 KiB (no BDP probing), so the broker's writes to it stall at once. Every new stack then queues one
update in its outbox; past `sessions.outbox_messages` the broker must cut it off
(RESOURCE_EXHAUSTED, AGENT_NOT_READING) instead of queueing without bound, while the other agents
get every stack as usual.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest

from brokkr_common.pb.brokkr.v1 import agent_pb2, agent_session_pb2, agent_session_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as session_pb2
from brokkr_common.session.times import timestamp
from tests.integration.faults.conftest import Processes
from tests.integration.faults.world import Admin, converged, eventually

pytestmark = pytest.mark.postgres

TIMEOUT_SECONDS = 150
OUTBOX_MESSAGES = 8
#: Each stack's first version is one update of ~240 KiB per agent (`big_configmaps`): the first
#: stalls the slow agent's stream, the next fill its outbox, the one after that overflows it.
STACKS = OUTBOX_MESSAGES + 4
NORMAL_AGENTS = 10
#: The slow agent's channel: never grow the receive window beyond the initial 64 KiB.
_NO_WINDOW_GROWTH = (("grpc.http2.bdp_probe", 0), ("grpc.max_receive_message_length", 64 * 1024 * 1024))


async def test_an_agent_that_never_reads_is_cut_off_without_delaying_the_others(
    fault_database, processes: Processes
):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        deadline = time.time() + TIMEOUT_SECONDS
        broker = processes.broker(
            fault_database.url,
            {
                "BROKKR_SESSIONS__OUTBOX_MESSAGES": str(OUTBOX_MESSAGES),
                # Sweeps would not help a stalled stream; keep them out of the picture.
                "BROKKR_SESSIONS__SWEEP_INTERVAL_SECONDS": "600",
            },
        )
        await broker.start(deadline)
        admin = Admin(broker.target, broker.admin_key)
        agents = await admin.create_agents(NORMAL_AGENTS + 1)
        (slow_id, slow_key), normal = agents[0], agents[1:]
        fleet = processes.fleet(broker.target, [key for _, key in normal])
        await fleet.start(deadline)
        await fleet.welcomed(0.0, deadline)

        channel = grpc.aio.insecure_channel(broker.target, options=_NO_WINDOW_GROWTH)
        stop = asyncio.Event()
        call = agent_session_service_pb2_grpc.AgentSessionServiceStub(channel).Connect(
            _hello_then_heartbeats(stop), metadata=(("authorization", f"Bearer {slow_key}"),)
        )
        try:
            await eventually(lambda: _connected(admin, slow_id), 30, "the slow agent is connected")
            for index in range(STACKS):
                stack_id = await admin.create_stack(f"big-{index:02d}")
                await admin.commit(stack_id, big_configmaps(index))
                # The others get every stack while the slow one holds its outbox full.
                await converged(admin, stack_id, [agent_id for agent_id, _ in normal], 1, timeout=60)

            await eventually(lambda: _disconnected(admin, slow_id), 15, "the broker cut the slow agent off")
            # Its session is gone, and with it whatever was queued for it: that is what bounds
            # the broker's memory (the outbox itself is capped at OUTBOX_MESSAGES).
            metrics = await broker.metrics()
            assert metrics[("brokkr_agents_connected", ())] == NORMAL_AGENTS
            connections = await fleet.sessions(deadline)
            assert [connects for _, connects in connections] == [1] * NORMAL_AGENTS
        finally:
            stop.set()
            call.cancel()
            await channel.close()
            await admin.close()


def big_configmaps(version: int, count: int = 4, size: int = 60_000) -> str:
    """`count` ConfigMaps of about `size` bytes each: big updates, few objects to record."""
    return "---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big-{index}\n  namespace: faults\n"
        f"data:\n  payload: v{version}-{'x' * size}\n"
        for index in range(count)
    )


async def _hello_then_heartbeats(stop: asyncio.Event) -> AsyncIterator[session_pb2.ConnectRequest]:
    yield session_pb2.ConnectRequest(hello=agent_session_pb2.Hello(agent_version="slow"))
    sequence = 0
    while not stop.is_set():
        sequence += 1
        yield session_pb2.ConnectRequest(
            heartbeat=agent_session_pb2.Heartbeat(agent_time=timestamp(time.time()), sequence=sequence)
        )
        await asyncio.sleep(5.0)  # well inside the heartbeat timeout, too rare to fill the outbox


async def _connected(admin: Admin, agent_id: str) -> bool:
    return (await admin.agent(agent_id)).connection_state == agent_pb2.CONNECTION_STATE_CONNECTED


async def _disconnected(admin: Admin, agent_id: str) -> bool:
    return (await admin.agent(agent_id)).connection_state == agent_pb2.CONNECTION_STATE_DISCONNECTED
