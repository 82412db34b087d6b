"""Registrations (agent with generator) in SQL; removing one soft-deletes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Select, bindparam, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.tables import registrations
from broker.domain.model import Registration
from broker.domain.ports import Position

_ORDER = (registrations.c.agent_id, registrations.c.generator_id)
_LIVE = registrations.c.deleted_at.is_(None)
#: Built once: every agent connect reads them.
_GENERATOR_IDS = select(registrations.c.generator_id).where(
    registrations.c.agent_id == bindparam("agent_id"), _LIVE
)


def registered_agent_ids(generator_id: str) -> Select[tuple[str]]:
    """The ids of the agents registered with a generator, as a subquery."""
    return select(registrations.c.agent_id).where(registrations.c.generator_id == generator_id, _LIVE)


def _registration(row: Any) -> Registration:
    return Registration(agent_id=row.agent_id, generator_id=row.generator_id, created_at=row.created_at)


class SqlRegistrationRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, registration: Registration) -> None:
        await self._connection.execute(
            insert(registrations).values(
                id=str(uuid.uuid4()),
                agent_id=registration.agent_id,
                generator_id=registration.generator_id,
                created_at=registration.created_at,
            )
        )

    async def exists(self, agent_id: str, generator_id: str) -> bool:
        query = select(
            exists().where(
                registrations.c.agent_id == agent_id, registrations.c.generator_id == generator_id, _LIVE
            )
        )
        return bool(await self._connection.scalar(query))

    async def remove(self, agent_id: str, generator_id: str, at: datetime) -> bool:
        result = await self._connection.execute(
            update(registrations)
            .where(registrations.c.agent_id == agent_id, registrations.c.generator_id == generator_id, _LIVE)
            .values(deleted_at=at)
        )
        return result.rowcount > 0

    async def generator_ids(self, agent_id: str) -> frozenset[str]:
        return frozenset((await self._connection.scalars(_GENERATOR_IDS, {"agent_id": agent_id})).all())

    async def list_page(
        self, *, after: Position, limit: int, agent_id: str | None = None, generator_id: str | None = None
    ) -> list[Registration]:
        query = select(registrations).where(_LIVE, keyset_after(_ORDER, after)).order_by(*_ORDER).limit(limit)
        if agent_id is not None:
            query = query.where(registrations.c.agent_id == agent_id)
        if generator_id is not None:
            query = query.where(registrations.c.generator_id == generator_id)
        return [_registration(row) for row in await self._connection.execute(query)]
