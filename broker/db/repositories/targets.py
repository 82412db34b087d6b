"""Explicit targets (stack to agent) in SQL; removing one soft-deletes it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.tables import stacks, targets
from broker.domain.model import Target
from broker.domain.ports import Position

_ORDER = (targets.c.agent_id, targets.c.stack_id)
_LIVE = targets.c.deleted_at.is_(None)


def _target(row: Any) -> Target:
    return Target(agent_id=row.agent_id, stack_id=row.stack_id, created_at=row.created_at)


class SqlTargetRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, target: Target) -> None:
        await self._connection.execute(
            insert(targets).values(
                id=str(uuid.uuid4()),
                agent_id=target.agent_id,
                stack_id=target.stack_id,
                created_at=target.created_at,
            )
        )

    async def exists(self, agent_id: str, stack_id: str) -> bool:
        query = select(exists().where(targets.c.agent_id == agent_id, targets.c.stack_id == stack_id, _LIVE))
        return bool(await self._connection.scalar(query))

    async def remove(self, agent_id: str, stack_id: str, at: datetime) -> bool:
        result = await self._connection.execute(
            update(targets)
            .where(targets.c.agent_id == agent_id, targets.c.stack_id == stack_id, _LIVE)
            .values(deleted_at=at)
        )
        return result.rowcount > 0

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        agent_id: str | None = None,
        stack_id: str | None = None,
        stack_owner: str | None = None,
    ) -> list[Target]:
        query = select(targets).where(_LIVE, keyset_after(_ORDER, after)).order_by(*_ORDER).limit(limit)
        if agent_id is not None:
            query = query.where(targets.c.agent_id == agent_id)
        if stack_id is not None:
            query = query.where(targets.c.stack_id == stack_id)
        if stack_owner is not None:
            query = query.where(
                targets.c.stack_id.in_(select(stacks.c.id).where(stacks.c.generator_id == stack_owner))
            )
        return [_target(row) for row in await self._connection.execute(query)]
