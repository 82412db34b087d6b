"""The Alembic migrations on both backends: they build exactly the schema the tables describe, can run
again (every start does), and can run from several replicas at once."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from broker.db import migrate, open_database
from broker.db.tables import metadata
from brokkr_common.errors import Unavailable


async def _schema_differences(url: str) -> list[object]:
    database = await open_database(url, migrate=False)
    try:
        async with database.engine.connect() as connection:
            return await connection.run_sync(
                lambda sync: compare_metadata(
                    MigrationContext.configure(sync, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await database.dispose()


async def test_the_migrations_build_exactly_the_tables_the_code_uses(database_url: str):
    await migrate(database_url)
    assert await _schema_differences(database_url) == []


async def test_migrating_again_changes_nothing(database_url: str):
    await migrate(database_url)
    database = await open_database(database_url, migrate=True)
    try:
        async with database.engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await database.dispose()
    assert tables == {*metadata.tables, "alembic_version"}
    assert await _schema_differences(database_url) == []


async def test_replicas_migrating_at_the_same_time_take_turns(database_url: str):
    await asyncio.gather(*(migrate(database_url) for _ in range(3)))
    assert await _schema_differences(database_url) == []


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("sqlite+aiosqlite:////nonexistent-directory/brokkr.db", id="sqlite"),
        pytest.param("postgresql+psycopg://postgres@127.0.0.1:1/brokkr", id="postgres"),
    ],
)
async def test_an_unreachable_database_is_unavailable_not_a_crash(url: str):
    with pytest.raises(Unavailable) as raised:
        await open_database(url, connect_timeout=2)
    assert raised.value.retry_after_seconds is not None
    assert "127.0.0.1" not in raised.value.message and "nonexistent" not in raised.value.message
