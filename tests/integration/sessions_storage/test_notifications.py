"""Committed changes reaching every replica through PostgreSQL LISTEN/NOTIFY: two `Database`s on one
PostgreSQL stand for two broker replicas. A commit through either reaches the listeners of both; a
listener whose connection is killed reconnects, says so, and hears later commits again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from sqlalchemy import text

from broker.db import Database, open_database
from broker.db.notifications import CHANNEL, MalformedNotification, decode, encode, listen
from broker.domain.changes import (
    AgentChanged,
    Change,
    EventsAppended,
    KeyRevoked,
    StackChanged,
    TargetingChanged,
)
from broker.domain.model import Role
from tests.integration.services.builders import Builder

TIMEOUT = 10
postgres_only = pytest.mark.parametrize(
    "database_url", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


class Listener:
    """One replica's listener: what it heard, and how often it (re)connected."""

    def __init__(self, url: str) -> None:
        self.heard: asyncio.Queue[tuple[Change, ...]] = asyncio.Queue()
        self.connects = 0
        self.reconnected = asyncio.Event()
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(listen(url, self._on_changes, self._on_reconnect, self._stop))

    async def next_changes(self) -> tuple[Change, ...]:
        return await asyncio.wait_for(self.heard.get(), TIMEOUT)

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.wait_for(self._task, TIMEOUT)

    async def _on_changes(self, changes: tuple[Change, ...]) -> None:
        await self.heard.put(changes)

    async def _on_reconnect(self) -> None:
        # Called each time the connection listens: the first time, then after every reconnect.
        self.connects += 1
        if self.connects >= 2:
            self.reconnected.set()


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Poll a condition of the database (not a timer) until it holds, within TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        while not await condition():
            await asyncio.sleep(0.02)


def _listening(database: Database, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with database.engine.connect() as connection:
            found = await connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND application_name = 'brokkr-change-listener' AND query = :listen"
                ),
                {"listen": f"LISTEN {CHANNEL}"},
            )
        return found == count

    return check


@pytest.fixture
async def other_replica(database: Database) -> AsyncIterator[Database]:
    url = database.engine.url.render_as_string(hide_password=False)
    opened = await open_database(url, pool_size=2, migrate=False)
    try:
        yield opened
    finally:
        await opened.dispose()


@postgres_only
async def test_a_commit_through_one_replica_reaches_the_listeners_of_both(
    database: Database, other_replica: Database
):
    url = database.engine.url.render_as_string(hide_password=False)
    here, there = Listener(url), Listener(url)
    try:
        await _until(_listening(database, 2))
        assert other_replica.uses_notify

        agent = await Builder(other_replica.uow_factory()).agent()

        # Creating an agent appends agent.registered, so watchers are woken too.
        assert await here.next_changes() == (EventsAppended(), AgentChanged(agent.id))
        assert await there.next_changes() == (EventsAppended(), AgentChanged(agent.id))
    finally:
        await here.stop()
        await there.stop()


@postgres_only
async def test_malformed_notifications_are_ignored(database: Database):
    listener = Listener(database.engine.url.render_as_string(hide_password=False))
    try:
        await _until(_listening(database, 1))
        assert listener.connects == 1
        async with database.engine.begin() as connection:
            for garbage in ("not json", '{"type": "StackChanged"}', '[{"type": "Bogus", "stack_id": "x"}]'):
                await connection.execute(text("SELECT pg_notify(:c, :p)"), {"c": CHANNEL, "p": garbage})

        stack = await Builder(database.uow_factory()).stack()

        assert await listener.next_changes() == (EventsAppended(), StackChanged(stack.id))
    finally:
        await listener.stop()


@postgres_only
async def test_a_listener_whose_connection_dies_reconnects_and_hears_again(database: Database):
    listener = Listener(database.engine.url.render_as_string(hide_password=False))
    try:
        await _until(_listening(database, 1))
        assert listener.connects == 1
        async with database.engine.begin() as connection:
            await connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name = 'brokkr-change-listener'"
                )
            )

        await asyncio.wait_for(listener.reconnected.wait(), TIMEOUT)
        agent = await Builder(database.uow_factory()).agent()

        assert await listener.next_changes() == (EventsAppended(), AgentChanged(agent.id))
    finally:
        await listener.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_hands_changes_over_after_commit_without_notify(database: Database):
    heard: list[tuple[Change, ...]] = []

    async def on_commit(changes: tuple[Change, ...]) -> None:
        heard.append(changes)

    assert not database.uses_notify
    agent = await Builder(database.uow_factory(on_commit)).agent()
    assert heard == [(EventsAppended(), AgentChanged(agent.id))]


def test_every_kind_of_change_survives_the_payload_round_trip():
    changes = (
        StackChanged("s"),
        StackChanged("s", new_version_only=True),
        AgentChanged("a"),
        TargetingChanged("a", "s"),
        TargetingChanged("a"),
        KeyRevoked(Role.AGENT, "a"),
        KeyRevoked(Role.ADMIN, None),
        EventsAppended(),
    )

    assert [change for payload in encode(changes) for change in decode(payload)] == list(changes)


def test_many_changes_are_split_into_payloads_postgresql_accepts():
    changes = [StackChanged(f"{n:036d}") for n in range(500)]

    payloads = encode(changes)

    assert len(payloads) > 1
    assert all(len(payload.encode()) < 8000 for payload in payloads)
    assert [change for payload in payloads for change in decode(payload)] == changes


@pytest.mark.parametrize(
    "payload",
    [
        "[1]",
        '{"type": "StackChanged", "stack_id": "s"}',
        '[{"type": "StackChanged"}]',
        '[{"type": "StackChanged", "stack_id": 7}]',
        '[{"type": "StackChanged", "stack_id": "s", "new_version_only": "yes"}]',
        '[{"type": "StackChanged", "stack_id": true}]',
        '[{"type": "KeyRevoked", "role": "root", "principal_id": null}]',
        "[" * 10_000,
    ],
    ids=[
        "not-a-change",
        "not-an-array",
        "missing-field",
        "not-a-string",
        "not-a-boolean",
        "boolean-for-a-string",
        "unknown-role",
        "deeply-nested",
    ],
)
def test_payloads_not_made_by_brokkr_are_refused(payload: str):
    with pytest.raises(MalformedNotification):
        decode(payload)
