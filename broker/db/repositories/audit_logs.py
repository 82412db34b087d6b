"""The audit log in SQL: appended in batches, listed newest first, purged by age."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.tables import audit_logs
from broker.domain.audit import AuditEntry


def _storable(text: str | None) -> str | None:
    """`text` as both backends store it: audit entries quote what clients sent (ids, request ids),
    which may hold NUL or lone surrogates that PostgreSQL refuses; they are kept visible, escaped."""
    if text is None:
        return None
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


class SqlAuditLogRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add_many(self, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        await self._connection.execute(
            insert(audit_logs),
            [
                {
                    "time": entry.time,
                    "actor_role": entry.actor_role,
                    "actor_id": _storable(entry.actor_id),
                    "action": _storable(entry.action),
                    "resource": _storable(entry.resource),
                    "outcome": entry.outcome,
                    "peer": _storable(entry.peer),
                    "request_id": _storable(entry.request_id),
                }
                for entry in entries
            ],
        )

    async def list_page(
        self,
        *,
        before: int | None,
        limit: int,
        actor_role: str | None = None,
        actor_id: str | None = None,
        action: str | None = None,
        resource: str | None = None,
        outcome: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[AuditEntry]:
        """Newest first: entries with an id below `before` (None for the first page)."""
        conditions: list[ColumnElement[bool]] = []
        if before is not None:
            conditions.append(audit_logs.c.id < before)
        if actor_role is not None:
            conditions.append(audit_logs.c.actor_role == actor_role)
        if actor_id is not None:
            conditions.append(audit_logs.c.actor_id == actor_id)
        if action is not None:
            conditions.append(audit_logs.c.action == action)
        if resource is not None:
            # `resource` holds comma-separated names; match one whole name.
            conditions.append(
                ("," + audit_logs.c.resource + ",").contains("," + resource + ",", autoescape=True)
            )
        if outcome is not None:
            conditions.append(audit_logs.c.outcome == outcome)
        if start_time is not None:
            conditions.append(audit_logs.c.time >= start_time)
        if end_time is not None:
            conditions.append(audit_logs.c.time < end_time)
        query = select(audit_logs).where(*conditions).order_by(audit_logs.c.id.desc()).limit(limit)
        return [_entry(row) for row in await self._connection.execute(query)]

    async def purge(self, before: datetime) -> int:
        """Erase entries older than `before`; returns how many."""
        result = await self._connection.execute(delete(audit_logs).where(audit_logs.c.time < before))
        return int(result.rowcount or 0)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=str(row.id),
        time=row.time,
        actor_role=row.actor_role,
        actor_id=row.actor_id,
        action=row.action,
        resource=row.resource,
        outcome=row.outcome,
        peer=row.peer,
        request_id=row.request_id,
    )
