"""The write-behind recorder on both backends: a Hello stored in a batch with what its session
reported after it, never undoing it; batches waiting while a fan-out is being delivered, not forever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from broker.db import Database
from broker.db.tables import agents as agents_table
from broker.domain.deployments import DeploymentState, Heartbeat, Hello
from broker.services import sessions
from broker.stream import recording
from broker.stream.hub import SessionHub
from broker.stream.recording import Recorder
from brokkr_common.errors import Aborted
from tests.integration.services.builders import Builder
from tests.integration.sessions_storage.test_reports import ack, status_of


async def _agent_row(database: Database, agent_id: str):
    async with database.engine.connect() as connection:
        return (await connection.execute(select(agents_table).where(agents_table.c.id == agent_id))).one()


async def test_a_hello_does_not_undo_a_newer_ack_of_its_session_in_the_same_batch(
    uow_factory, database: Database, build: Builder, connect
):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    old, new = await build.submit(stack), await build.submit(stack)
    session_id = await connect(agent)
    now = datetime.now(UTC)

    # The agent resumed holding the old version, was sent the new one and acked it; all of it
    # reaches the database in one batch, the ack first in the list.
    await sessions.record_reports(
        uow_factory(),
        [
            ack(agent, stack, new.id, now + timedelta(seconds=1)),
            Hello(agent.id, session_id, "2.1.0", {stack.id: old.id}, now),
        ],
    )

    status = await status_of(uow_factory, agent, stack)
    assert status.state is DeploymentState.APPLIED
    assert status.recorded is not None and status.recorded.applied is not None
    assert status.recorded.applied.id == new.id
    assert (await _agent_row(database, agent.id)).agent_version == "2.1.0"


async def test_a_hello_of_a_replaced_session_changes_nothing(
    uow_factory, database: Database, build: Builder, connect
):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    version = await build.submit(stack)
    old = await connect(agent)
    new = await connect(agent)
    now = datetime.now(UTC)
    await sessions.record_reports(uow_factory(), [Hello(agent.id, new, "2.0.0", {stack.id: version.id}, now)])

    await sessions.record_reports(
        uow_factory(), [Hello(agent.id, old, "1.0.0", {}, now + timedelta(seconds=1))]
    )

    assert (await _agent_row(database, agent.id)).agent_version == "2.0.0"
    status = await status_of(uow_factory, agent, stack)
    assert status.recorded is not None and status.recorded.applied is not None
    assert status.recorded.applied.id == version.id


def _hub(uow_factory, recorder: Recorder) -> SessionHub:
    return SessionHub(
        uow_factory, recorder, replica_name="replica-1", registry=CollectorRegistry(), heartbeat_timeout=30
    )


async def _heartbeat_written(database: Database, agent_id: str) -> bool:
    return (await _agent_row(database, agent_id)).last_heartbeat_at is not None


async def test_a_report_batch_waits_while_a_fan_out_is_being_delivered(
    uow_factory, database: Database, build: Builder
):
    agent = await build.agent()
    recorder = Recorder(uow_factory, interval=0.02)
    hub = _hub(uow_factory, recorder)
    recorder.defer_while(hub.delivering)
    outbox = hub.outbox(8)
    outbox.put_nowait(b"an update for some agent")
    recorder.start()
    try:
        assert hub.delivering()
        recorder.submit(Heartbeat(agent.id, datetime.now(UTC), True, 3))
        await asyncio.sleep(0.3)
        assert not await _heartbeat_written(database, agent.id)

        outbox.get_nowait()  # handed to gRPC: nothing waits any more
        assert not hub.delivering()
        await asyncio.wait_for(recorder.flushed(), timeout=5)
        assert await _heartbeat_written(database, agent.id)
    finally:
        await recorder.stop()


async def test_a_report_batch_waits_for_a_fan_out_only_so_long(
    uow_factory, database: Database, build: Builder, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(recording, "MAX_DEFER_SECONDS", 0.2)
    agent = await build.agent()
    recorder = Recorder(uow_factory, interval=0.02)
    recorder.defer_while(lambda: True)  # a fan-out that never ends
    recorder.start()
    try:
        recorder.submit(Heartbeat(agent.id, datetime.now(UTC), True, 3))
        await asyncio.wait_for(recorder.flushed(), timeout=5)
        assert await _heartbeat_written(database, agent.id)
    finally:
        await recorder.stop()


async def test_draining_an_ended_sessions_outbox_leaves_nothing_counted(uow_factory):
    hub = _hub(uow_factory, Recorder(uow_factory))
    outboxes = [hub.outbox(8) for _ in range(3)]
    for outbox in outboxes:
        outbox.put_nowait(b"update")
        outbox.put_nowait(b"removal")
    outboxes[0].get_nowait()
    assert hub.delivering()

    for outbox in outboxes:
        outbox.drain()

    assert not hub.delivering()


async def test_a_batch_that_meets_a_deadlock_is_written_on_the_next_try(
    uow_factory, database: Database, build: Builder, monkeypatch: pytest.MonkeyPatch
):
    agent = await build.agent()
    real = sessions.record_reports
    tries = 0

    async def deadlocked_once(uow, reports):
        nonlocal tries
        tries += 1
        if tries == 1:
            raise Aborted("the transaction conflicted with a concurrent one", reason="CONCURRENT_CHANGE")
        await real(uow, reports)

    monkeypatch.setattr(sessions, "record_reports", deadlocked_once)
    recorder = Recorder(uow_factory, interval=0.02)
    recorder.start()
    try:
        recorder.submit(Heartbeat(agent.id, datetime.now(UTC), True, 3))
        await asyncio.wait_for(recorder.flushed(), timeout=5)
    finally:
        await recorder.stop()

    assert tries == 2
    assert await _heartbeat_written(database, agent.id)


async def test_the_sweep_marks_stale_sessions_only_while_no_batch_is_being_written(
    uow_factory, monkeypatch: pytest.MonkeyPatch
):
    """On PostgreSQL the sweep's update of many agent rows and a batch's deadlock when they run
    together; the sweep takes the recorder's writing lock instead."""
    recorder = Recorder(uow_factory)
    hub = _hub(uow_factory, recorder)
    real = sessions.mark_stale_sessions
    held: list[bool] = []

    async def observed(*args, **kwargs):
        held.append(recorder.writing.locked())
        return await real(*args, **kwargs)

    monkeypatch.setattr(sessions, "mark_stale_sessions", observed)
    await hub.sweep()

    assert held == [True]
