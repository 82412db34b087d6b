"""The hub under a reconnect storm, on both backends: session opens take turns on the database and
beyond a bounded queue are refused at once; the connects and disconnects of many sessions are
written together."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import event

from broker.domain.model import ADMIN, ConnectionState
from broker.services import agents, sessions
from broker.stream.hub import LiveSession, SessionHub
from broker.stream.recording import Recorder
from brokkr_common.errors import ResourceExhausted
from tests.integration.services.builders import Builder


def _hub(
    uow_factory, recorder: Recorder | None = None, *, max_opening: int = 8, max_waiting: int = 256
) -> SessionHub:
    return SessionHub(
        uow_factory,
        recorder or Recorder(uow_factory),
        replica_name="replica-1",
        registry=CollectorRegistry(),
        heartbeat_timeout=30,
        max_opening=max_opening,
        max_waiting=max_waiting,
    )


async def test_opens_take_turns_and_beyond_the_queue_are_refused_at_once(
    uow_factory, monkeypatch: pytest.MonkeyPatch
):
    build = Builder(uow_factory)
    fleet = [await build.agent(name=f"edge-{n}") for n in range(4)]
    gate = asyncio.Event()
    inside = 0
    most_inside = 0
    real_open = sessions.start_session

    async def slow_open(*args, **kwargs):
        nonlocal inside, most_inside
        inside += 1
        most_inside = max(most_inside, inside)
        try:
            await gate.wait()
            return await real_open(*args, **kwargs)
        finally:
            inside -= 1

    monkeypatch.setattr(sessions, "start_session", slow_open)
    hub = _hub(uow_factory, max_opening=2, max_waiting=1)

    def opening(agent):
        return asyncio.create_task(hub.open(agent.id, session_id=str(uuid.uuid4()), peer="ipv4:10.0.0.1:1"))

    admitted = [opening(agent) for agent in fleet[:3]]
    await asyncio.sleep(0.05)  # two are reading, the third waits its turn
    with pytest.raises(ResourceExhausted) as refused:
        await hub.open(fleet[3].id, session_id=str(uuid.uuid4()), peer="ipv4:10.0.0.1:1")
    gate.set()
    opened = await asyncio.wait_for(asyncio.gather(*admitted), timeout=20)

    assert refused.value.reason == "TOO_MANY_SESSIONS_OPENING"
    assert refused.value.retry_after_seconds is not None and refused.value.retry_after_seconds > 0
    assert most_inside == 2
    assert [o.agent.id for o in opened] == [agent.id for agent in fleet[:3]]
    refused_agent = await agents.get_agent(uow_factory(), ADMIN, fleet[3].id)
    assert refused_agent.connection_state is ConnectionState.NEVER_CONNECTED


async def test_sessions_opening_and_ending_together_are_recorded_in_few_transactions(uow_factory, database):
    build = Builder(uow_factory)
    fleet = [await build.agent(name=f"edge-{n}") for n in range(20)]
    recorder = Recorder(uow_factory, interval=0.05)
    hub = _hub(uow_factory, recorder)
    commits = 0

    def count(_connection) -> None:
        nonlocal commits
        commits += 1

    recorder.start()
    lives = []
    for agent in fleet:
        session_id = str(uuid.uuid4())
        opened = await hub.open(agent.id, session_id=session_id, peer="ipv4:10.0.0.1:1")
        live = LiveSession(agent.id, session_id, None, hub.outbox(8), None, recorder)  # type: ignore[arg-type]
        hub.register(live, opened)
        lives.append(live)
    event.listen(database.engine.sync_engine, "commit", count)
    try:
        await asyncio.wait_for(recorder.flushed(), timeout=10)
        connected = {(await agents.get_agent(uow_factory(), ADMIN, a.id)).connection_state for a in fleet}
        for live in lives:
            hub.release(live)
        await hub.stop()
        await recorder.stop()
    finally:
        event.remove(database.engine.sync_engine, "commit", count)

    assert connected == {ConnectionState.CONNECTED}
    states = {(await agents.get_agent(uow_factory(), ADMIN, a.id)).connection_state for a in fleet}
    assert states == {ConnectionState.DISCONNECTED}
    # Written behind, in batches: 20 connects and 20 disconnects in a handful of transactions
    # (the 20 reads of the state above are not transactions that commit).
    assert commits <= 4
