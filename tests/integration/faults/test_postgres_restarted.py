"""PostgreSQL restarted under a running broker with agents connected and writes arriving.

The broker must ride it out without a restart of its own: writes during the outage answer
UNAVAILABLE with reason DATABASE_UNAVAILABLE and a retry hint (RetryInfo), the agents' sessions
survive (or resume), and once the database is back everything converges: new versions reach every
agent through a change listener that reconnected by itself (the periodic sweep is set far beyond
the test, so it cannot be what delivers them).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import psycopg
import pytest

from tests.integration.faults.conftest import Processes
from tests.integration.faults.own_postgres import OwnPostgres
from tests.integration.faults.world import Admin, configmaps, converged, eventually
from tests.integration.faults.writing import VersionWriter

pytestmark = pytest.mark.postgres

TIMEOUT_SECONDS = 180
AGENTS = 20
OUTAGE_WRITES = 5
HEARTBEAT_TIMEOUT = 3.0
#: Longer than the heartbeat timeout: sessions must not depend on recording heartbeats.
OUTAGE_SECONDS = HEARTBEAT_TIMEOUT + 2.0


@pytest.fixture
def own_postgres() -> Iterator[OwnPostgres]:
    cluster = OwnPostgres()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


async def test_the_broker_rides_out_a_postgres_restart(own_postgres: OwnPostgres, processes: Processes):
    async with asyncio.timeout(TIMEOUT_SECONDS):
        deadline = time.time() + TIMEOUT_SECONDS
        database_url = own_postgres.create_database("brokkr")
        broker = processes.broker(
            database_url,
            {
                "BROKKR_SESSIONS__SWEEP_INTERVAL_SECONDS": "3600",
                "BROKKR_SESSIONS__HEARTBEAT_INTERVAL_SECONDS": "1",
                "BROKKR_SESSIONS__HEARTBEAT_TIMEOUT_SECONDS": str(HEARTBEAT_TIMEOUT),
                "BROKKR_DATABASE__CONNECT_TIMEOUT_SECONDS": "2",
            },
        )
        await broker.start(deadline)
        admin = Admin(broker.target, broker.admin_key)
        agents = await admin.create_agents(AGENTS)
        stack_id = await admin.create_stack()
        first = await admin.commit(stack_id, configmaps(1))
        fleet = processes.fleet(broker.target, [key for _, key in agents])
        await fleet.start(deadline)
        await fleet.applied(first.sequence_id, deadline)
        listener_before = await eventually(
            lambda: asyncio.to_thread(_listener_pid, own_postgres), 30, "the change listener connected"
        )

        writer = VersionWriter(broker.target, broker.admin_key, stack_id, first_version=2, pause=0.2)
        writer.start()
        try:
            while writer.created_count() < 3:
                await asyncio.sleep(0.05)
            await asyncio.to_thread(own_postgres.stop)
            stopped = time.monotonic()
            while writer.unavailable_count() < OUTAGE_WRITES or time.monotonic() - stopped < OUTAGE_SECONDS:
                await asyncio.sleep(0.05)
            assert broker.running
            created_during_outage = writer.created_count()
            await asyncio.to_thread(own_postgres.start)
            while writer.created_count() < created_during_outage + 3:
                await asyncio.sleep(0.05)
        finally:
            await asyncio.to_thread(writer.stop)
        assert broker.running, "the broker exited when its database went away"

        # Every refused write said: unavailable, the database, retry after a while.
        assert {
            (e.reason, e.retry_after_seconds is not None and e.retry_after_seconds > 0)
            for e in writer.unavailable
        } == {("DATABASE_UNAVAILABLE", True)}
        created = [(first.id, first.sequence_id), *writer.created]
        newest = max(sequence for _, sequence in created)
        assert [sequence for _, sequence in created] == list(range(1, newest + 1))

        # The change listener is back on a new connection, and the newest version reaches every
        # agent without a sweep and without restarting the broker.
        listener_after = await eventually(
            lambda: asyncio.to_thread(_listener_pid, own_postgres), 30, "the change listener reconnected"
        )
        assert listener_after != listener_before
        await fleet.applied(newest, deadline)
        await converged(admin, stack_id, [agent_id for agent_id, _ in agents], newest, timeout=60)
        # The sessions survived, heartbeats and all, though none could be recorded for longer
        # than the heartbeat timeout: every agent is still on its first stream.
        sessions = await fleet.sessions(deadline)
        assert sessions == [("faults", 1)] * AGENTS
        await admin.close()


def _listener_pid(cluster: OwnPostgres) -> int | None:
    """The backend pid of the broker's LISTEN connection (one at most), if it is connected."""
    with psycopg.connect(cluster.libpq(), autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'brokkr-change-listener'"
        ).fetchall()
    assert len(rows) <= 1, rows
    return rows[0][0] if rows else None
