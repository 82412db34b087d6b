"""The SQL unit of work: one connection and one transaction per `async with`, holding every repository.

It is the single place where database exceptions become Brokkr errors (`errors.translate`): they
raise inside the `async with` block, from a repository or from `commit()`, and leave it translated.

The changes the services recorded reach agent sessions in one of two ways:

* with `notify` (PostgreSQL), `commit()` sends them with NOTIFY inside the transaction, so
  PostgreSQL delivers them exactly when it commits, to the listener of every replica, this one
  included (`broker.db.notifications`);
* after a successful commit they are passed to `on_commit`, which on SQLite (one replica) hands
  them straight to this replica's sessions.

A failure of `on_commit` is logged and does not undo the commit, since the sessions' periodic
sweep catches up.
"""

from __future__ import annotations

from types import TracebackType

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from broker.db import notifications
from broker.db.errors import reraise, translate
from broker.db.repositories.agent_connections import SqlAgentConnectionRepository
from broker.db.repositories.agents import SqlAgentRepository
from broker.db.repositories.audit_logs import SqlAuditLogRepository
from broker.db.repositories.deployment_objects import SqlDeploymentObjectRepository
from broker.db.repositories.deployment_statuses import SqlDeploymentStatusRepository
from broker.db.repositories.diagnostics import SqlDiagnosticsRepository
from broker.db.repositories.events import SqlEventRepository
from broker.db.repositories.generators import SqlGeneratorRepository
from broker.db.repositories.idempotency import SqlIdempotencyRepository
from broker.db.repositories.keys import SqlKeyRepository
from broker.db.repositories.registrations import SqlRegistrationRepository
from broker.db.repositories.stacks import SqlStackRepository
from broker.db.repositories.targeting import SqlTargetingQueries
from broker.db.repositories.targets import SqlTargetRepository
from broker.db.repositories.templates import SqlTemplateRepository
from broker.db.repositories.webhooks import SqlWebhookRepository
from broker.domain.changes import Change
from broker.domain.ports import OnCommit

log = structlog.get_logger("brokkr.db")


class SqlUnitOfWork:
    """`broker.domain.ports.UnitOfWork` over an engine. Re-enterable: each block is a new transaction."""

    # Bound to the block's connection on entry.
    generators: SqlGeneratorRepository
    agents: SqlAgentRepository
    stacks: SqlStackRepository
    deployment_objects: SqlDeploymentObjectRepository
    targets: SqlTargetRepository
    registrations: SqlRegistrationRepository
    targeting: SqlTargetingQueries
    keys: SqlKeyRepository
    idempotency: SqlIdempotencyRepository
    agent_connections: SqlAgentConnectionRepository
    deployment_statuses: SqlDeploymentStatusRepository
    events: SqlEventRepository
    audit_logs: SqlAuditLogRepository
    webhooks: SqlWebhookRepository
    templates: SqlTemplateRepository
    diagnostics: SqlDiagnosticsRepository

    def __init__(
        self, engine: AsyncEngine, on_commit: OnCommit | None = None, *, notify: bool = False
    ) -> None:
        self._engine = engine
        self._on_commit = on_commit
        self._notify = notify
        self._connection: AsyncConnection | None = None
        self._pending: list[Change] = []
        self._committed: tuple[Change, ...] = ()

    @property
    def committed_changes(self) -> tuple[Change, ...]:
        return self._committed

    async def __aenter__(self) -> SqlUnitOfWork:
        try:
            connection = await self._engine.connect()
        except Exception as error:
            reraise(error)
        try:
            await connection.begin()
        except Exception as error:
            await connection.close()
            reraise(error)
        self._connection = connection
        self._pending = []
        self.generators = SqlGeneratorRepository(connection)
        self.agents = SqlAgentRepository(connection)
        self.stacks = SqlStackRepository(connection)
        self.deployment_objects = SqlDeploymentObjectRepository(connection)
        self.targets = SqlTargetRepository(connection)
        self.registrations = SqlRegistrationRepository(connection)
        self.targeting = SqlTargetingQueries(connection)
        self.keys = SqlKeyRepository(connection)
        self.idempotency = SqlIdempotencyRepository(connection)
        self.agent_connections = SqlAgentConnectionRepository(connection)
        self.deployment_statuses = SqlDeploymentStatusRepository(connection)
        self.events = SqlEventRepository(connection)
        self.audit_logs = SqlAuditLogRepository(connection)
        self.webhooks = SqlWebhookRepository(connection)
        self.templates = SqlTemplateRepository(connection)
        self.diagnostics = SqlDiagnosticsRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        connection, self._connection = self._connection, None
        self._pending = []
        try:
            if connection is not None:
                if connection.in_transaction():
                    await connection.rollback()
                await connection.close()
        except Exception as error:
            if exc is None:
                reraise(error)
            log.warning("rolling back a failed transaction failed too", error=str(error))
        if exc is not None and (translated := translate(exc)) is not None:
            raise translated from exc

    async def commit(self) -> None:
        assert self._connection is not None, "commit() outside `async with`"
        changes = tuple(self._pending)
        if changes and self._notify:
            await notifications.notify(self._connection, changes)
        await self._connection.commit()
        self._committed, self._pending = changes, []
        if self._committed and self._on_commit is not None:
            try:
                await self._on_commit(self._committed)
            except Exception:
                log.exception("publishing committed changes failed", changes=len(self._committed))

    def record(self, change: Change) -> None:
        self._pending.append(change)
