"""Agent<->broker traffic black-holed: no FIN, no RST, packets just stop (`BlackHoleProxy`).

Both ends must notice on their own within the keepalive budget (the broker: heartbeat timeout or
HTTP/2 keepalive; the agent: the broker's silence or keepalive), the broker must show the agent
DISCONNECTED meanwhile, and once traffic flows again the agent must come back on its own and
resume: a Hello with what it holds, so only what changed meanwhile travels, as a delta.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from agent.stream.client import ClientOptions, SessionClient
from bench.fanout_broker import BrokerProcess
from brokkr_common.pb.brokkr.v1 import agent_pb2
from tests.integration.faults.conftest import Processes
from tests.integration.faults.proxy import BlackHoleProxy
from tests.integration.faults.world import Admin, RecordingRuntime, configmaps, converged, eventually

pytestmark = pytest.mark.postgres

TIMEOUT_SECONDS = 120
HEARTBEAT_INTERVAL = 1.0
HEARTBEAT_TIMEOUT = 3.0
KEEPALIVE_TIME = 2.0
KEEPALIVE_TIMEOUT = 2.0
#: Either end must have noticed by then: the silence deadline, or a keepalive ping unanswered,
#: plus the ticks and the disconnect being recorded (a second is plenty on loopback).
DETECTION_BUDGET = max(HEARTBEAT_TIMEOUT, KEEPALIVE_TIME + KEEPALIVE_TIMEOUT) + 1.0
SETTINGS = {
    "BROKKR_SESSIONS__HEARTBEAT_INTERVAL_SECONDS": str(HEARTBEAT_INTERVAL),
    "BROKKR_SESSIONS__HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT),
    "BROKKR_GRPC__KEEPALIVE_TIME_SECONDS": str(KEEPALIVE_TIME),
    "BROKKR_GRPC__KEEPALIVE_TIMEOUT_SECONDS": str(KEEPALIVE_TIMEOUT),
    "BROKKR_GRPC__MIN_CLIENT_PING_INTERVAL_SECONDS": "1",
}
AGENT_OPTIONS = ClientOptions(
    agent_version="brokkr-faults",
    keepalive_time_seconds=KEEPALIVE_TIME,
    keepalive_timeout_seconds=KEEPALIVE_TIMEOUT,
    reconnect_base_seconds=0.5,
    reconnect_max_seconds=2.0,
    welcome_timeout_seconds=HEARTBEAT_TIMEOUT,
)


async def test_a_black_holed_agent_is_detected_on_both_ends_and_resumes(fault_database, processes: Processes):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        broker = processes.broker(fault_database.url, SETTINGS)
        await broker.start(time.time() + 60)
        admin = Admin(broker.target, broker.admin_key)
        [(agent_id, key)] = await admin.create_agents(1)
        stack_id = await admin.create_stack()
        await admin.commit(stack_id, configmaps(1, count=3, changing=1))
        proxy = BlackHoleProxy(broker.target)
        await proxy.start()
        runtime = RecordingRuntime()
        client = SessionClient(proxy.target, lambda: key, runtime, {}, AGENT_OPTIONS)
        running = asyncio.create_task(client.run())
        try:
            await runtime.applied(1, timeout=30)
            await converged(admin, stack_id, [agent_id], 1, timeout=30)
            first_session = client.welcome.session_id if client.welcome else None
            updates_before = await _updates_sent(broker)

            proxy.pause()
            paused_at = time.monotonic()
            await eventually(_async(lambda: not client.connected.is_set()), 30, "the agent noticed")
            agent_noticed = time.monotonic() - paused_at
            await eventually(
                lambda: _disconnected(admin, agent_id), 30, "the broker shows the agent disconnected"
            )
            broker_noticed = time.monotonic() - paused_at
            assert agent_noticed <= DETECTION_BUDGET
            assert broker_noticed <= DETECTION_BUDGET
            # A version committed meanwhile cannot get through; the agent keeps trying (its
            # connections land in the black hole too) and stays disconnected.
            await admin.commit(stack_id, configmaps(2, count=3, changing=1))
            await asyncio.sleep(DETECTION_BUDGET)
            assert await _disconnected(admin, agent_id)
            assert len(runtime.work) == 1

            proxy.resume()
            resumed = await runtime.applied(2, timeout=30)
            assert client.welcome is not None and client.welcome.session_id != first_session
            assert client.connects >= 2
            # Resumed, not restarted: the Hello said what the agent holds, so the one object that
            # changed travels as a delta, and version 1 is not sent again.
            assert not resumed.full_state
            assert [r.key.name for r in resumed.apply] == ["fault-0"]
            assert [w.deployment_object.sequence_id for w in runtime.work] == [1, 2]
            assert await _updates_sent(broker) == updates_before + 1
            await converged(admin, stack_id, [agent_id], 2, timeout=30)
            agent = await admin.agent(agent_id)
            assert agent.connection_state == agent_pb2.CONNECTION_STATE_CONNECTED
        finally:
            await client.stop()
            await running
            await proxy.close()
            await admin.close()


async def _disconnected(admin: Admin, agent_id: str) -> bool:
    agent = await admin.agent(agent_id)
    return agent.connection_state == agent_pb2.CONNECTION_STATE_DISCONNECTED


def _async(check: Callable[[], object]) -> Callable[[], Awaitable[object]]:
    """A plain check as the coroutine function `eventually` polls."""

    async def checked() -> object:
        return check()

    return checked


async def _updates_sent(broker: BrokerProcess) -> float:
    return (await broker.metrics()).get(("brokkr_stack_updates_sent_total", (("kind", "update"),)), 0.0)
