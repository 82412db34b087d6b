"""The database as the composition root sees it: open (and migrate) it, make units of work, close it."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import structlog
from sqlalchemy import make_url, text
from sqlalchemy.ext.asyncio import AsyncEngine

from broker.db.engine import create_engine
from broker.db.errors import RETRY_AFTER_SECONDS, reraise
from broker.db.migrating import upgrade
from broker.db.unit_of_work import SqlUnitOfWork
from broker.domain.ports import OnCommit, UnitOfWorkFactory
from brokkr_common.errors import Unavailable


class Database:
    """An open database: hands out units of work until `dispose()`."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @property
    def uses_notify(self) -> bool:
        """Whether committed changes are announced with PostgreSQL NOTIFY, to every replica's listener
        (`broker.db.notifications.listen`) this one's included; if not, `on_commit` is the only way."""
        return self.engine.dialect.name == "postgresql"

    def uow_factory(self, on_commit: OnCommit | None = None) -> UnitOfWorkFactory:
        """Makes units of work; each passes the changes it commits to `on_commit` (and to NOTIFY when
        `uses_notify`, so a caller that also listens should pass no `on_commit`)."""
        return partial(SqlUnitOfWork, self.engine, on_commit, notify=self.uses_notify)

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
    _check_sqlite_directory(url)
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


def _check_sqlite_directory(url: str) -> None:
    """A SQLite file in a directory that does not exist cannot be created: say so before aiosqlite
    starts a connection thread that would outlive the failure."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    directory = Path(parsed.database).parent
    if not directory.is_dir():
        structlog.get_logger("brokkr.db").warning("SQLite directory does not exist", directory=str(directory))
        raise Unavailable(
            "the database cannot be opened; retry later",
            reason="DATABASE_UNAVAILABLE",
            retry_after_seconds=RETRY_AFTER_SECONDS,
        )
