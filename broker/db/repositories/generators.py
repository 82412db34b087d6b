"""Generators in SQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.tables import generators
from broker.domain.model import Generator
from broker.domain.ports import Position

_ORDER = (generators.c.name, generators.c.id)


def _generator(row: Any) -> Generator:
    return Generator(
        id=row.id,
        name=row.name,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


class SqlGeneratorRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, generator: Generator) -> None:
        await self._connection.execute(
            insert(generators).values(
                id=generator.id,
                name=generator.name,
                description=generator.description,
                created_at=generator.created_at,
                updated_at=generator.updated_at,
                deleted_at=generator.deleted_at,
            )
        )

    async def get(self, generator_id: str) -> Generator | None:
        row = (
            await self._connection.execute(select(generators).where(generators.c.id == generator_id))
        ).first()
        return _generator(row) if row else None

    async def update(self, generator: Generator) -> None:
        await self._connection.execute(
            update(generators)
            .where(generators.c.id == generator.id)
            .values(
                name=generator.name,
                description=generator.description,
                updated_at=generator.updated_at,
                deleted_at=generator.deleted_at,
            )
        )

    async def list_page(
        self, *, after: Position, limit: int, show_deleted: bool, only_id: str | None = None
    ) -> list[Generator]:
        query = select(generators).where(keyset_after(_ORDER, after)).order_by(*_ORDER).limit(limit)
        if not show_deleted:
            query = query.where(generators.c.deleted_at.is_(None))
        if only_id is not None:
            query = query.where(generators.c.id == only_id)
        return [_generator(row) for row in await self._connection.execute(query)]
