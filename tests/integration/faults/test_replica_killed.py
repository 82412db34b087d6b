"""Two broker replicas over one PostgreSQL; one is SIGKILLed and its agents move to the other.

Each agent is given both replicas' addresses (a gRPC `ipv4:` target with two addresses and the
default pick_first policy), half of them in one order and half in the other, so the agents start
spread over both replicas, as behind an L4 load balancer. Versions committed through the surviving
replica reach every agent before and after the kill, and the killed replica's agents end up
served by the survivor, acknowledged there.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from bench.fanout_agents import Fleet
from brokkr_common.pb.brokkr.v1 import agent_pb2
from tests.integration.faults.conftest import Processes
from tests.integration.faults.world import Admin, configmaps, converged, eventually

pytestmark = pytest.mark.postgres

TIMEOUT_SECONDS = 180
AGENTS_PER_REPLICA = 20


async def test_the_agents_of_a_killed_replica_move_to_the_other_and_converge(
    fault_database, processes: Processes
):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        deadline = time.time() + TIMEOUT_SECONDS
        doomed = processes.broker(fault_database.url, replica_name="doomed")
        await doomed.start(deadline)
        survivor = processes.broker(fault_database.url, admin_key=doomed.admin_key, replica_name="survivor")
        await survivor.start(deadline)
        admin = Admin(survivor.target, survivor.admin_key)
        agents = await admin.create_agents(2 * AGENTS_PER_REPLICA)
        agent_ids = [agent_id for agent_id, _ in agents]
        stack_id = await admin.create_stack()
        await admin.commit(stack_id, configmaps(1))

        def both(first: str, second: str) -> str:
            return f"ipv4:{first},{second}"

        keys = [key for _, key in agents]
        fleets = [
            processes.fleet(both(doomed.target, survivor.target), keys[:AGENTS_PER_REPLICA]),
            processes.fleet(both(survivor.target, doomed.target), keys[AGENTS_PER_REPLICA:]),
        ]
        await asyncio.gather(*(fleet.start(deadline) for fleet in fleets))
        await asyncio.gather(*(fleet.applied(1, deadline) for fleet in fleets))
        assert (
            await _replicas(fleets, deadline)
            == ["doomed"] * AGENTS_PER_REPLICA + ["survivor"] * AGENTS_PER_REPLICA
        )

        # A version committed through the survivor reaches the doomed replica's agents too.
        await admin.commit(stack_id, configmaps(2))
        await asyncio.gather(*(fleet.applied(2, deadline) for fleet in fleets))

        await doomed.kill()
        await admin.commit(stack_id, configmaps(3))  # while the doomed replica's agents move
        await asyncio.gather(*(fleet.applied(3, deadline) for fleet in fleets))
        assert await _replicas(fleets, deadline) == ["survivor"] * (2 * AGENTS_PER_REPLICA)
        await admin.commit(stack_id, configmaps(4))
        await asyncio.gather(*(fleet.applied(4, deadline) for fleet in fleets))
        await converged(admin, stack_id, agent_ids, 4, timeout=60)
        # Every agent shows connected, through its newest session on the survivor.
        await eventually(lambda: _all_connected(admin, agent_ids), 30, "every agent shows connected")
        await admin.close()


async def _replicas(fleets: list[Fleet], deadline: float) -> list[str | None]:
    """The replica each agent's latest Welcome came from, in key order."""
    sessions = [s for fleet in fleets for s in await fleet.sessions(deadline)]
    return [replica for replica, _ in sessions]


async def _all_connected(admin: Admin, agent_ids: list[str]) -> bool:
    agents = await asyncio.gather(*(admin.agent(agent_id) for agent_id in agent_ids))
    return all(a.connection_state == agent_pb2.CONNECTION_STATE_CONNECTED for a in agents)
