"""Brokkr's storage: SQLAlchemy Core tables, repositories and the unit of work, on SQLite or PostgreSQL.

The only package that imports SQLAlchemy or Alembic. The composition root calls `open_database` and
hands `Database.uow_factory()` to everything that needs storage; nothing connects at import time.
"""

from broker.db.database import Database, open_database
from broker.db.migrating import migrate

__all__ = ["Database", "migrate", "open_database"]
