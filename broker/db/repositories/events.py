"""The event log in SQL: appended in commit order, read by id.

An event's id is the resume cursor of WatchEvents: a watcher that has seen id N asks for ids
above N. That only works if an event with a smaller id can never become visible after one with a
larger id. On SQLite it cannot (one writer at a time). On PostgreSQL a sequence hands out numbers
at INSERT time while transactions commit in any order, so transaction A could take id 7, B take
id 8 and commit first, a watcher read 8, and A's 7 appear afterwards, behind the cursor, never
seen. So every append first takes one transaction-level advisory lock, held until commit or
rollback: event-writing transactions take their ids and commit one at a time, and PostgreSQL
releases the lock only after the commit is visible. Services append events as the last write
before committing, so the lock is held for the commit only (docs/explanation/events.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.tables import events
from broker.domain.events import Event, EventType

#: The advisory lock key serialising event appends on PostgreSQL (arbitrary, fixed: "brokkrEV").
EVENT_APPEND_LOCK = 0x62726F6B6B724556


class SqlEventRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection
        self._locked = False

    async def append(self, event: Event) -> Event:
        """Store the event (its `id` is ignored); returns it with the id it was given."""
        [stored] = await self.append_many([event])
        return stored

    async def append_many(self, appended: Sequence[Event]) -> list[Event]:
        """Store the events in order, in one statement; returns them with their ids."""
        if not appended:
            return []
        if not self._locked and self._connection.dialect.name == "postgresql":
            await self._connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": EVENT_APPEND_LOCK}
            )
            self._locked = True
        result = await self._connection.execute(
            insert(events).returning(events.c.id, sort_by_parameter_order=True),
            [
                {
                    "type": str(event.type),
                    "time": event.time,
                    "actor_role": event.actor_role,
                    "actor_id": event.actor_id,
                    "agent_id": event.agent_id,
                    "stack_id": event.stack_id,
                    "deployment_object_id": event.deployment_object_id,
                    "template_id": event.template_id,
                    "labels": dict(event.labels),
                    "payload": dict(event.payload),
                }
                for event in appended
            ],
        )
        ids = result.scalars().all()
        return [dataclasses.replace(event, id=str(ident)) for event, ident in zip(appended, ids, strict=True)]

    async def list_page(
        self,
        *,
        after: int,
        limit: int,
        types: Collection[str] | None = None,
        stack_id: str | None = None,
        agent_id: str | None = None,
        start_time: datetime | None = None,
        end_time: datetime | None = None,
    ) -> list[Event]:
        conditions: list[ColumnElement[bool]] = [events.c.id > after]
        if types is not None:
            conditions.append(events.c.type.in_(sorted(types)))
        if stack_id is not None:
            conditions.append(events.c.stack_id == stack_id)
        if agent_id is not None:
            conditions.append(events.c.agent_id == agent_id)
        if start_time is not None:
            conditions.append(events.c.time >= start_time)
        if end_time is not None:
            conditions.append(events.c.time < end_time)
        query = select(events).where(*conditions).order_by(events.c.id).limit(limit)
        return [_event(row) for row in await self._connection.execute(query)]

    async def last_id(self) -> int:
        """The newest event's id; 0 when there is none."""
        return int(await self._connection.scalar(select(func.coalesce(func.max(events.c.id), 0))) or 0)


def _event(row: Any) -> Event:
    return Event(
        id=str(row.id),
        type=EventType(row.type),
        time=row.time,
        actor_role=row.actor_role,
        actor_id=row.actor_id,
        agent_id=row.agent_id,
        stack_id=row.stack_id,
        deployment_object_id=row.deployment_object_id,
        template_id=row.template_id,
        labels=row.labels or {},
        payload=row.payload or {},
    )
