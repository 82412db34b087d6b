"""The database as the composition root sees it: open (and migrate) it, make units of work, close it."""

from __future__ import annotations

from functools import partial

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.db.engine import create_engine
from broker.db.errors import reraise
from broker.db.migrating import upgrade
from broker.db.unit_of_work import SqlUnitOfWork
from broker.domain.ports import OnCommit, UnitOfWorkFactory


class Database:
    """An open database: hands out units of work until `dispose()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    def uow_factory(self, on_commit: OnCommit | None = None) -> UnitOfWorkFactory:
        """Makes units of work; each passes the changes it commits to `on_commit`."""
        return partial(SqlUnitOfWork, self.engine, on_commit)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


async def open_database(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, migrate: bool = True, echo: bool = False
) -> Database:
    """Connect to `url`, upgrading the schema first when `migrate` is set.

    Fails fast with UNAVAILABLE when the database cannot be reached, so the broker does not start
    half-working.
    """
    engine = create_engine(url, pool_size=pool_size, connect_timeout=connect_timeout, echo=echo)
    try:
        if migrate:
            await upgrade(engine)
        else:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:
        await engine.dispose()
        reraise(error)
    return Database(engine)
