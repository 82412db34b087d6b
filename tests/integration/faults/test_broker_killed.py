"""The broker is SIGKILLed in the middle of a rollout to 200 agents while versions keep arriving.

Nothing the broker held in memory may matter: after it is started again on the same database,
every agent converges to the newest version, every ack is recorded once, and the event log has
every version's creation exactly once, in order, the same through ListEvents and WatchEvents.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import psycopg
import pytest

from tests.integration.faults.conftest import Processes
from tests.integration.faults.world import Admin, configmaps, converged
from tests.integration.faults.writing import VersionWriter

pytestmark = pytest.mark.postgres

AGENTS = 200
TIMEOUT_SECONDS = 240


async def test_agents_converge_and_nothing_is_lost_after_a_sigkill_mid_rollout(
    fault_database, processes: Processes
):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        deadline = time.time() + TIMEOUT_SECONDS
        broker = processes.broker(fault_database.url)
        await broker.start(deadline)
        admin = Admin(broker.target, broker.admin_key)
        agents = await admin.create_agents(AGENTS)
        stack_id = await admin.create_stack()
        first = await admin.commit(stack_id, configmaps(1))
        fleet = processes.fleet(broker.target, [key for _, key in agents], processes=2)
        await fleet.start(deadline)
        await fleet.applied(first.sequence_id, deadline)

        writer = VersionWriter(broker.target, broker.admin_key, stack_id, first_version=2)
        writer.start()
        try:
            while writer.created_count() < 5:
                await asyncio.sleep(0.05)
            await broker.kill()  # SIGKILL, while versions are being committed and pushed
            await asyncio.sleep(1.0)
            await broker.start(deadline)
            before_restart = writer.created_count()
            while writer.created_count() < before_restart + 5:
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(writer.stop)
        assert writer.unavailable, "no write arrived while the broker was down"

        created = [(first.id, first.sequence_id), *writer.created]
        newest = max(sequence for _, sequence in created)
        assert [sequence for _, sequence in created] == list(range(1, newest + 1))
        await fleet.applied(newest, deadline)
        await admin.close()  # its connection died with the first broker process
        admin = Admin(broker.target, broker.admin_key)
        await converged(admin, stack_id, [agent_id for agent_id, _ in agents], newest, timeout=60)

        # Every ack recorded once: one status row per agent x stack, one applied event per
        # agent x version at most.
        rows = await asyncio.to_thread(_status_rows, fault_database.url, stack_id)
        assert rows == {agent_id: 1 for agent_id, _ in agents}
        applied = Counter(
            (e.agent_id, e.deployment_object_id) for e in await admin.events_listed(["deployment.applied"])
        )
        assert [pair for pair, count in applied.items() if count > 1] == []

        # No event lost or duplicated: each version's creation exactly once, ids strictly
        # increasing, and a watch from the start sends exactly what the list shows.
        events = await admin.events_listed()
        ids = [int(e.id) for e in events]
        assert ids == sorted(set(ids))
        creations = Counter(e.deployment_object_id for e in events if e.type == "deployment_object.created")
        assert creations == Counter(object_id for object_id, _ in created)
        watched = await admin.events_watched(len(events), timeout=30)
        assert [e.id for e in watched] == [e.id for e in events]
        await admin.close()


def _status_rows(database_url: str, stack_id: str) -> dict[str, int]:
    libpq = database_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(libpq) as connection:
        rows = connection.execute(
            "SELECT agent_id, count(*) FROM deployment_statuses WHERE stack_id = %s GROUP BY agent_id",
            (stack_id,),
        ).fetchall()
    return dict(rows)
