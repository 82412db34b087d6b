"""Async engines for the two supported databases, tuned so concurrent transactions behave.

SQLite (`sqlite+aiosqlite:///brokkr.db`, the embedded default, one replica):

* WAL journal, so readers never block the writer and the writer never blocks readers;
* `foreign_keys=ON`, which SQLite leaves off by default;
* a busy timeout, so a writer waits for the lock instead of failing at once;
* every transaction starts with `BEGIN IMMEDIATE`. With the driver's default deferred BEGIN, a
  transaction that reads and then writes (allocating a sequence id, checking then inserting) can
  find its snapshot stale when it tries to write and fail with "database is locked" without
  waiting. Taking the write lock up front makes transactions queue on the busy timeout instead,
  the same choice Rails and Django made for SQLite. Transactions here are short, so the cost is
  small; SQLite serialises writers anyway.

PostgreSQL (`postgresql+psycopg://...`, psycopg 3 async, any number of replicas): a bounded pool
that checks connections before use, so a database restart or failover costs one UNAVAILABLE at
most, and a connect timeout, so an unreachable server answers UNAVAILABLE instead of hanging.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from brokkr_common.errors import InvalidArgument

SUPPORTED = ("sqlite+aiosqlite", "postgresql+psycopg")


def create_engine(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, echo: bool = False
) -> AsyncEngine:
    """An engine for `url`; only the drivers in `SUPPORTED` are accepted."""
    driver = make_url(url).drivername
    if driver == "sqlite+aiosqlite":
        return _sqlite(url, pool_size=pool_size, busy_timeout=connect_timeout, echo=echo)
    if driver == "postgresql+psycopg":
        return _postgresql(url, pool_size=pool_size, connect_timeout=connect_timeout, echo=echo)
    raise InvalidArgument.for_field(
        "database.url",
        f"driver {driver!r} is not supported; use one of {', '.join(SUPPORTED)}",
        "UNSUPPORTED_DATABASE",
    )


def _sqlite(url: str, *, pool_size: int, busy_timeout: float, echo: bool) -> AsyncEngine:
    engine = create_async_engine(url, echo=echo, pool_size=pool_size, connect_args={"timeout": busy_timeout})

    @event.listens_for(engine.sync_engine, "connect")
    def configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when transactions begin (see `begin`).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            _use_wal(cursor)
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _use_wal(cursor: Any) -> None:
    """Switch the file to WAL. The journal mode is a property of the file, so once one connection has
    switched it every connection uses it. Two connections opening a new file at the same moment may
    both try; the loser gets "database is locked" at once (SQLite does not wait there) and can let it
    be, because the winner is switching the file."""
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
    except sqlite3.OperationalError as error:
        if "locked" not in str(error):
            raise


def _postgresql(url: str, *, pool_size: int, connect_timeout: float, echo: bool) -> AsyncEngine:
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_timeout=connect_timeout,
        pool_pre_ping=True,
        # libpq takes whole seconds.
        connect_args={"connect_timeout": max(1, math.ceil(connect_timeout))},
    )
