"""Fixtures every test tier shares: real databases on each supported backend.

`database_url` runs a test once on SQLite (a file in the test's temporary directory) and once on
PostgreSQL, always on an empty database. For PostgreSQL the run creates one database,
`brokkr_test_<random>`, through BROKKR_TEST_POSTGRES_URL and drops it at the end; each test gets
its own empty schema in it (the URL sets `search_path`), because creating and dropping a database
costs most of a second and a schema a few milliseconds. PostgreSQL being unreachable is an error,
never a skip: a green run means both backends passed. Select one backend with `-k sqlite` /
`-k postgres`, or `-m "not postgres"`.

`database` (and `uow_factory`) is a database with the schema in place. Running the migrations
costs a few hundred milliseconds of DDL per test, so they run once per backend and run: SQLite
tests get a copy of a migrated file, PostgreSQL tests share a migrated schema emptied before each
test. `tests/integration/db` checks the migrations themselves on `database_url`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import delete
from sqlalchemy.engine import URL, make_url

from broker.db import Database, migrate, open_database
from broker.db.tables import metadata
from broker.domain.ports import UnitOfWorkFactory

POSTGRES_ADMIN_URL = os.environ.get(
    "BROKKR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _admin_sql(url: URL, statement: str) -> None:
    """Run one statement outside a transaction, as CREATE/DROP DATABASE need."""
    libpq = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(libpq, autocommit=True, connect_timeout=5) as connection:
        connection.execute("SET lock_timeout = '10s'")
        connection.execute(statement)


def _migrate(url: str) -> None:
    """Migrate from a fixture that may be set up inside a running event loop (hence the thread)."""
    with ThreadPoolExecutor(1) as executor:
        executor.submit(asyncio.run, migrate(url)).result()


def _in_schema(database: URL, schema: str) -> str:
    return database.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[URL]:
    """The run's PostgreSQL database, created on first use and dropped at the end."""
    admin = make_url(POSTGRES_ADMIN_URL)
    name = f"brokkr_test_{uuid.uuid4().hex[:12]}"
    try:
        _admin_sql(admin, f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as error:
        pytest.fail(
            f"PostgreSQL at {admin.render_as_string()} is unreachable: {error}\n"
            "The suite needs it: start PostgreSQL or point BROKKR_TEST_POSTGRES_URL at one.",
            pytrace=False,
        )
    try:
        yield admin.set(database=name)
    finally:
        _admin_sql(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database on the backend named by the parameter ("sqlite" or "postgres")."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}"
        return
    database: URL = request.getfixturevalue("postgres_database")
    schema = f"test_{uuid.uuid4().hex[:12]}"
    _admin_sql(database, f'CREATE SCHEMA "{schema}"')
    try:
        yield _in_schema(database, schema)
    finally:
        _admin_sql(database, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("migrated") / "brokkr.db"
    _migrate(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def migrated_postgres_url(postgres_database: URL) -> str:
    _admin_sql(postgres_database, 'CREATE SCHEMA "migrated"')
    url = _in_schema(postgres_database, "migrated")
    _migrate(url)
    return url


@pytest.fixture
async def database(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Database]:
    """A migrated, empty database on the backend of `database_url`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), url.database)
        opened = await open_database(database_url, pool_size=5, migrate=False)
    else:
        opened = await open_database(
            request.getfixturevalue("migrated_postgres_url"), pool_size=5, migrate=False
        )
        async with opened.engine.begin() as connection:
            for table in reversed(metadata.sorted_tables):
                await connection.execute(delete(table))
    try:
        yield opened
    finally:
        await opened.dispose()


@pytest.fixture
def uow_factory(database: Database) -> UnitOfWorkFactory:
    return database.uow_factory()
