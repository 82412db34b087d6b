"""Alembic's entry point for Brokkr's migrations.

The broker runs them through `broker.db.migrating.upgrade`, which passes an open connection in
`config.attributes["connection"]`. Developers writing a new migration run Alembic against a scratch
database instead:

    alembic -c broker/db/alembic.ini -x url=sqlite+aiosqlite:///scratch.db upgrade head
    alembic -c broker/db/alembic.ini -x url=sqlite+aiosqlite:///scratch.db revision --autogenerate -m "..."
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from broker.db.engine import create_engine
from broker.db.tables import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_on(url: str) -> None:
    engine = create_engine(url, pool_size=1)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run_migrations)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Brokkr's migrations run against a database; offline (--sql) mode is not supported")
given = context.config.attributes.get("connection")
if given is not None:
    run_migrations(given)
else:
    url = context.get_x_argument(as_dictionary=True).get("url")
    if not url:
        raise SystemExit("pass the database with -x url=sqlite+aiosqlite:///scratch.db")
    asyncio.run(run_on(url))
