"""The SQL unit of work on both backends: all or nothing, changes published only once committed,
database errors turned into Brokkr errors, times stored and read as UTC."""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from broker.db import Database, open_database
from broker.db.engine import create_engine
from broker.domain.changes import AgentChanged, StackChanged
from broker.domain.model import Generator
from brokkr_common.errors import AlreadyExists, Unavailable


def _generator(name: str, when: datetime | None = None) -> Generator:
    moment = when or datetime.now(UTC)
    return Generator(
        str(uuid.uuid5(uuid.NAMESPACE_DNS, name)), name, "", created_at=moment, updated_at=moment
    )


async def test_leaving_without_commit_writes_nothing(uow_factory):
    async with uow_factory() as uow:
        await uow.generators.add(_generator("never"))
    async with uow_factory() as uow:
        assert await uow.generators.get(_generator("never").id) is None


async def test_an_error_inside_the_block_rolls_everything_back(uow_factory):
    async def add_then_fail() -> None:
        async with uow_factory() as uow:
            await uow.generators.add(_generator("half"))
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await add_then_fail()
    async with uow_factory() as uow:
        assert await uow.generators.get(_generator("half").id) is None


async def test_changes_are_published_after_commit_only(database: Database):
    published: list[tuple[object, ...]] = []

    async def on_commit(changes):
        published.append(changes)

    factory = database.uow_factory(on_commit)
    async with factory() as uow:
        uow.record(StackChanged("rolled-back"))
    async with factory() as uow:
        uow.record(StackChanged("s"))
        uow.record(AgentChanged("a"))
        assert published == []
        await uow.commit()
    assert published == [(StackChanged("s"), AgentChanged("a"))]
    assert uow.committed_changes == (StackChanged("s"), AgentChanged("a"))


async def test_a_failing_subscriber_does_not_undo_the_commit(database: Database):
    async def on_commit(changes):
        raise RuntimeError("subscriber down")

    async with database.uow_factory(on_commit)() as uow:
        await uow.generators.add(_generator("kept"))
        uow.record(StackChanged("s"))
        await uow.commit()
    async with database.uow_factory()() as uow:
        assert await uow.generators.get(_generator("kept").id) is not None


async def test_breaking_a_unique_rule_is_already_exists_with_its_reason(uow_factory):
    async with uow_factory() as uow:
        await uow.generators.add(_generator("one"))
        await uow.commit()
    duplicate = _generator("two")

    async def add_same_name() -> None:
        async with uow_factory() as uow:
            await uow.generators.add(
                Generator(duplicate.id, "one", "", duplicate.created_at, duplicate.updated_at)
            )
            await uow.commit()

    with pytest.raises(AlreadyExists) as raised:
        await add_same_name()
    assert raised.value.reason == "GENERATOR_ALREADY_EXISTS"


async def test_times_come_back_as_the_same_instant_in_utc(uow_factory):
    plus_two = timezone(timedelta(hours=2))
    written = datetime(2030, 5, 6, 7, 8, 9, 123456, tzinfo=plus_two)
    async with uow_factory() as uow:
        await uow.generators.add(_generator("timed", written))
        await uow.commit()
    async with uow_factory() as uow:
        read = await uow.generators.get(_generator("timed").id)
    assert read is not None
    assert read.created_at == written and read.created_at.tzinfo is UTC and read.created_at.hour == 5


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:////nonexistent-directory/brokkr.db", id="sqlite"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/brokkr", id="postgres"),
    ],
)
async def test_a_lost_database_makes_units_of_work_unavailable(url: str):
    threads_before = set(threading.enumerate())
    database = Database(create_engine(url, connect_timeout=1))
    try:
        with pytest.raises(Unavailable) as raised:
            async with database.uow_factory()():
                pass
    finally:
        await database.dispose()
        await _new_aiosqlite_threads_finished(threads_before)
    assert raised.value.reason == "DATABASE_UNAVAILABLE" and raised.value.retry_after_seconds


async def _new_aiosqlite_threads_finished(before: set[threading.Thread]) -> None:
    """aiosqlite stops the thread of a connection that failed to open without waiting for it; its
    last callback must land before this test's event loop closes (a real broker's loop outlives it)."""
    async with asyncio.timeout(10):
        while any(
            "_connection_worker_thread" in thread.name for thread in set(threading.enumerate()) - before
        ):
            await asyncio.sleep(0.01)


async def test_a_sqlite_writer_waiting_past_the_busy_timeout_is_unavailable(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'busy.db'}"
    database = await open_database(url, connect_timeout=0.2)
    try:
        async with database.uow_factory()():  # holds the write lock
            with pytest.raises(Unavailable):
                async with database.uow_factory()():
                    pass
    finally:
        await database.dispose()
