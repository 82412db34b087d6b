"""An agent's connection as admins see it, on both backends: connected while a session is open, and
shown disconnected when the session ends, when the replica holding it lost it, or when heartbeats
stop, but never because an older session of an agent that has since reconnected ended."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from broker.db import Database
from broker.db.tables import agents as agents_table
from broker.domain.deployments import Heartbeat
from broker.domain.model import ADMIN, Agent, ConnectionState
from broker.services import agents, sessions
from brokkr_common.errors import FailedPrecondition, NotFound
from tests.integration.services.builders import Builder


async def _agent(uow_factory, agent: Agent) -> Agent:
    return await agents.get_agent(uow_factory(), ADMIN, agent.id)


async def _state(uow_factory, agent: Agent) -> ConnectionState:
    return (await _agent(uow_factory, agent)).connection_state


async def test_an_open_session_shows_the_agent_connected_and_closing_it_disconnected(
    uow_factory, database: Database, build: Builder
):
    agent = await build.agent()
    assert await _state(uow_factory, agent) is ConnectionState.NEVER_CONNECTED

    session_id = str(uuid.uuid4())
    start = await sessions.open_session(
        uow_factory(), agent.id, session_id=session_id, replica="broker-0", peer="ipv4:10.1.2.3:40000"
    )
    await sessions.record_hello(uow_factory(), agent.id, session_id, agent_version="1.4.2", held={})

    assert start.agent.connection_state is ConnectionState.CONNECTED
    assert await _state(uow_factory, agent) is ConnectionState.CONNECTED
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(agents_table).where(agents_table.c.id == agent.id))).one()
    assert (row.session_id, row.replica, row.peer, row.agent_version) == (
        session_id,
        "broker-0",
        "ipv4:10.1.2.3:40000",
        "1.4.2",
    )

    await sessions.close_sessions(uow_factory(), [(agent.id, session_id)])
    assert await _state(uow_factory, agent) is ConnectionState.DISCONNECTED


async def test_an_older_session_ending_leaves_the_agents_newer_session_connected(
    uow_factory, database: Database, build: Builder, connect
):
    agent = await build.agent()
    old = await connect(agent, replica="broker-0")
    new = await connect(agent, replica="broker-1")
    await sessions.record_hello(uow_factory(), agent.id, new, agent_version="2.0.0", held={})

    await sessions.close_sessions(uow_factory(), [(agent.id, old)])
    await sessions.record_hello(uow_factory(), agent.id, old, agent_version="1.0.0", held={})

    assert await _state(uow_factory, agent) is ConnectionState.CONNECTED
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(agents_table).where(agents_table.c.id == agent.id))).one()
    assert (row.replica, row.agent_version) == ("broker-1", "2.0.0")
    await sessions.close_sessions(uow_factory(), [(agent.id, new)])
    assert await _state(uow_factory, agent) is ConnectionState.DISCONNECTED


async def test_deleted_and_unknown_agents_cannot_open_a_session(uow_factory, build: Builder, connect):
    agent = await build.agent()
    await agents.delete_agent(uow_factory(), ADMIN, agent.id)

    with pytest.raises(FailedPrecondition) as deleted:
        await connect(agent)
    with pytest.raises(NotFound):
        await connect(dataclasses.replace(agent, id=str(uuid.uuid4())))

    assert deleted.value.reason == "AGENT_DELETED"
    assert await _state(uow_factory, agent) is ConnectionState.NEVER_CONNECTED


async def test_agents_this_replica_holds_no_session_for_are_marked_disconnected(
    uow_factory, build: Builder, connect
):
    lost, kept, elsewhere = await build.agent(), await build.agent(), await build.agent()
    await connect(lost, replica="broker-0")
    kept_session = await connect(kept, replica="broker-0")
    await connect(elsewhere, replica="broker-1")

    await sessions.mark_stale_sessions(uow_factory(), "broker-0", [kept_session], heartbeat_timeout=3600)

    assert await _state(uow_factory, lost) is ConnectionState.DISCONNECTED
    assert await _state(uow_factory, kept) is ConnectionState.CONNECTED
    assert await _state(uow_factory, elsewhere) is ConnectionState.CONNECTED


async def test_agents_silent_for_the_heartbeat_timeout_are_disconnected_on_any_replica(
    uow_factory, build: Builder, connect
):
    silent, beating = await build.agent(), await build.agent()
    await connect(silent, replica="broker-1")
    await connect(beating, replica="broker-1")
    now = datetime.now(UTC)
    await sessions.record_reports(
        uow_factory(),
        [Heartbeat(silent.id, now, True, 3), Heartbeat(beating.id, now + timedelta(seconds=45), True, 3)],
    )

    await sessions.mark_stale_sessions(
        uow_factory(), "broker-0", [], heartbeat_timeout=30, now=now + timedelta(seconds=60)
    )

    assert await _state(uow_factory, silent) is ConnectionState.DISCONNECTED
    assert await _state(uow_factory, beating) is ConnectionState.CONNECTED


async def test_heartbeats_show_the_newest_time_and_kubernetes_reachability(
    uow_factory, build: Builder, connect
):
    agent = await build.agent()
    await connect(agent)
    first = datetime.now(UTC)
    later = first + timedelta(seconds=10)

    await sessions.record_reports(
        uow_factory(), [Heartbeat(agent.id, later, False, 0), Heartbeat(agent.id, first, True, 4)]
    )
    await sessions.record_reports(uow_factory(), [Heartbeat(agent.id, first, True, 4)])  # flushed late

    shown = await _agent(uow_factory, agent)
    assert (shown.last_heartbeat_at, shown.kubernetes_reachable) == (later, False)


async def test_updating_an_agent_keeps_its_connection(uow_factory, build: Builder, connect):
    agent = await build.agent()
    await connect(agent)
    beat = datetime.now(UTC)
    await sessions.record_reports(uow_factory(), [Heartbeat(agent.id, beat, True, 2)])

    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"labels": {"tier": "web"}})

    shown = await _agent(uow_factory, agent)
    assert (shown.connection_state, shown.last_heartbeat_at, shown.kubernetes_reachable) == (
        ConnectionState.CONNECTED,
        beat,
        True,
    )
