"""Bring a database to the newest schema with Alembic, safely from any number of replicas at once.

The migration scripts live in `broker/db/migrations/`. `upgrade(engine)` runs them in one
transaction; on PostgreSQL it first takes a transaction-scoped advisory lock, so replicas starting
together take turns and the later ones find nothing left to do. On SQLite the transaction's
`BEGIN IMMEDIATE` does the same. Upgrading a database that is already at the newest schema changes
nothing, so the broker can (and by default does) run it on every start.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.db.engine import create_engine

MIGRATIONS = Path(__file__).parent / "migrations"
#: Arbitrary but fixed: the advisory lock id Brokkr's migrations hold on PostgreSQL.
_ADVISORY_LOCK_ID = 0x6272_6F6B_6B72  # "brokkr"


def _alembic_config(connection: Connection) -> Config:
    """Alembic's configuration for Brokkr's migrations, bound to an open connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


async def upgrade(engine: AsyncEngine) -> None:
    """Apply every pending migration."""
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            await connection.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _ADVISORY_LOCK_ID})
        await connection.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))


async def migrate(url: str) -> None:
    """Upgrade the database at `url` to the newest schema (the `migrate` command)."""
    engine = create_engine(url, pool_size=1)
    try:
        await upgrade(engine)
    finally:
        await engine.dispose()
