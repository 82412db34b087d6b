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
from broker.domain.deployments import Heartbeat, Hello, SessionClosed, SessionOpened
from broker.domain.events import Event
from broker.domain.model import ADMIN, Agent, ConnectionState
from broker.services import agents, sessions
from brokkr_common.errors import FailedPrecondition, NotFound
from tests.integration.services.builders import Builder


async def _agent(uow_factory, agent: Agent) -> Agent:
    return await agents.get_agent(uow_factory(), ADMIN, agent.id)


async def _state(uow_factory, agent: Agent) -> ConnectionState:
    return (await _agent(uow_factory, agent)).connection_state


async def events_of(uow_factory, agent_id: str) -> list[Event]:
    """The agent's connects and disconnects in the event log, oldest first."""
    async with uow_factory() as uow:
        return await uow.events.list_page(
            after=0, limit=100, agent_id=agent_id, types=["agent.connected", "agent.disconnected"]
        )


async def test_an_open_session_shows_the_agent_connected_and_closing_it_disconnected(
    uow_factory, database: Database, build: Builder
):
    agent = await build.agent()
    assert await _state(uow_factory, agent) is ConnectionState.NEVER_CONNECTED

    session_id = str(uuid.uuid4())
    start = await sessions.start_session(uow_factory(), agent.id)
    assert await _state(uow_factory, agent) is ConnectionState.NEVER_CONNECTED  # it only reads
    opened = SessionOpened(agent.id, session_id, "broker-0", "ipv4:10.1.2.3:40000", datetime.now(UTC))
    await sessions.record_reports(uow_factory(), [opened])
    hello = Hello(agent.id, session_id, "1.4.2", {}, datetime.now(UTC))
    await sessions.record_reports(uow_factory(), [hello])

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

    await sessions.record_reports(uow_factory(), [SessionClosed(agent.id, session_id)])
    assert await _state(uow_factory, agent) is ConnectionState.DISCONNECTED


async def test_an_older_session_ending_leaves_the_agents_newer_session_connected(
    uow_factory, database: Database, build: Builder, connect
):
    agent = await build.agent()
    old = await connect(agent, replica="broker-0")
    new = await connect(agent, replica="broker-1")
    await sessions.record_reports(uow_factory(), [Hello(agent.id, new, "2.0.0", {}, datetime.now(UTC))])

    await sessions.record_reports(uow_factory(), [SessionClosed(agent.id, old)])
    await sessions.record_reports(uow_factory(), [Hello(agent.id, old, "1.0.0", {}, datetime.now(UTC))])

    assert await _state(uow_factory, agent) is ConnectionState.CONNECTED
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(agents_table).where(agents_table.c.id == agent.id))).one()
    assert (row.replica, row.agent_version) == ("broker-1", "2.0.0")
    await sessions.record_reports(uow_factory(), [SessionClosed(agent.id, new)])
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


async def test_a_live_session_of_this_replica_is_not_judged_by_its_recorded_heartbeats(
    uow_factory, build: Builder, connect
):
    """Heartbeats are written behind: in a reconnect storm a live agent's may reach the database
    later than the timeout. Its own replica knows it is live (the session closes itself when the
    agent goes silent), so its sweep leaves it connected; another replica's sweep does not."""
    agent = await build.agent()
    session = await connect(agent, replica="broker-0")
    later = datetime.now(UTC) + timedelta(seconds=60)

    await sessions.mark_stale_sessions(uow_factory(), "broker-0", [session], heartbeat_timeout=30, now=later)
    assert await _state(uow_factory, agent) is ConnectionState.CONNECTED

    await sessions.mark_stale_sessions(uow_factory(), "broker-1", [], heartbeat_timeout=30, now=later)
    assert await _state(uow_factory, agent) is ConnectionState.DISCONNECTED


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


async def test_a_session_record_arriving_late_from_another_replica_changes_nothing(
    uow_factory, build: Builder
):
    """Sessions are recorded write-behind, per replica: the agent's record of a session opened on
    broker-0 and already replaced by one on broker-1 may reach the database after broker-1's. It
    must neither take the agent back to broker-0 nor, once that old session's end follows it,
    show the agent disconnected."""
    agent = await build.agent()
    now = datetime.now(UTC)
    later = now + timedelta(seconds=1)
    old = SessionOpened(agent.id, str(uuid.uuid4()), "broker-0", "ipv4:10.0.0.1:1", now)
    new = SessionOpened(agent.id, str(uuid.uuid4()), "broker-1", "ipv4:10.0.0.1:2", later)

    await sessions.record_reports(uow_factory(), [new])
    await sessions.record_reports(uow_factory(), [old, SessionClosed(agent.id, old.session_id)])
    await sessions.record_reports(uow_factory(), [new])  # recorded again by the sweep: no change

    shown = await _agent(uow_factory, agent)
    assert shown.connection_state is ConnectionState.CONNECTED
    recorded = await sessions.mark_stale_sessions(
        uow_factory(), "broker-1", {new.session_id}, heartbeat_timeout=3600
    )
    assert recorded == {new.session_id}
    events = await events_of(uow_factory, agent.id)
    assert [(e.type.value, e.payload.get("session_id")) for e in events] == [
        ("agent.connected", new.session_id)
    ]


async def test_a_session_opened_and_closed_in_one_batch_ends_disconnected(uow_factory, build: Builder):
    agent = await build.agent()
    opened = SessionOpened(agent.id, str(uuid.uuid4()), "broker-0", "ipv4:10.0.0.1:1", datetime.now(UTC))

    await sessions.record_reports(uow_factory(), [opened, SessionClosed(agent.id, opened.session_id)])

    assert await _state(uow_factory, agent) is ConnectionState.DISCONNECTED
    events = await events_of(uow_factory, agent.id)
    assert [e.type.value for e in events] == ["agent.connected", "agent.disconnected"]


async def test_a_deleted_agents_late_session_record_changes_nothing(uow_factory, build: Builder):
    agent = await build.agent()
    await agents.delete_agent(uow_factory(), ADMIN, agent.id)
    opened = SessionOpened(agent.id, str(uuid.uuid4()), "broker-0", "ipv4:10.0.0.1:1", datetime.now(UTC))

    await sessions.record_reports(uow_factory(), [opened])

    assert await _state(uow_factory, agent) is ConnectionState.NEVER_CONNECTED
    assert [e.type.value for e in await events_of(uow_factory, agent.id)] == []


async def test_one_batch_records_each_agents_session_and_hello_as_if_alone(
    uow_factory, database: Database, build: Builder
):
    """A batch is written set-wise (one statement per kind), yet each agent ends as if its records
    had been written one by one: of two sessions of one agent in the batch the newer is current,
    a deleted agent and an unknown one change nothing, a session submitted twice (the sweep
    repeating a queued record) is one connect, and a Hello counts only for the current session."""
    first, second, deleted = await build.agent(), await build.agent(), await build.agent()
    await agents.delete_agent(uow_factory(), ADMIN, deleted.id)
    now = datetime.now(UTC)

    def opened(agent_id: str, replica: str, at: datetime) -> SessionOpened:
        return SessionOpened(agent_id, str(uuid.uuid4()), replica, "ipv4:10.0.0.1:1", at)

    newer = opened(first.id, "broker-1", now + timedelta(seconds=1))
    older = opened(first.id, "broker-0", now)
    other = opened(second.id, "broker-0", now)
    batch = [
        newer,
        older,
        newer,
        other,
        opened(deleted.id, "broker-0", now),
        opened(str(uuid.uuid4()), "broker-0", now),
        Hello(first.id, older.session_id, "1.0.0", {}, now),
        Hello(second.id, other.session_id, "2.0.0", {}, now),
    ]

    await sessions.record_reports(uow_factory(), batch)

    async with database.engine.connect() as connection:
        rows = await connection.execute(
            select(
                agents_table.c.id,
                agents_table.c.session_id,
                agents_table.c.replica,
                agents_table.c.agent_version,
            ).where(agents_table.c.id.in_([first.id, second.id, deleted.id]))
        )
        recorded = {row.id: (row.session_id, row.replica, row.agent_version) for row in rows}
    assert recorded == {
        first.id: (newer.session_id, "broker-1", None),  # the Hello named the older session
        second.id: (other.session_id, "broker-0", "2.0.0"),
        deleted.id: (None, None, None),
    }
    assert [(e.type.value, e.payload["session_id"]) for e in await events_of(uow_factory, first.id)] == [
        ("agent.connected", newer.session_id)
    ]
    assert await events_of(uow_factory, deleted.id) == []
