"""Stacks in SQL, each with its labels, annotations and desired deployment object.

The desired deployment object is the one whose sequence id is the stack's `latest_sequence_id`,
joined in the same query through the (stack_id, sequence_id) unique index, without its content.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, and_, exists, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.repositories.labels import STACK_ANNOTATIONS, STACK_LABELS, STACK_METADATA
from broker.db.tables import deployment_objects, stacks
from broker.domain.model import DeploymentObjectRef, Stack
from broker.domain.ports import Position

_ORDER = (stacks.c.name, stacks.c.id)
_desired = deployment_objects.alias("desired")

#: Stack rows with their desired deployment object's reference; extend with `.where()`.
STACK_ROWS: Select[Any] = select(
    stacks,
    _desired.c.id.label("desired_id"),
    _desired.c.sequence_id.label("desired_sequence_id"),
    _desired.c.checksum.label("desired_checksum"),
    _desired.c.is_deletion_marker.label("desired_is_deletion_marker"),
).select_from(
    stacks.outerjoin(
        _desired,
        and_(_desired.c.stack_id == stacks.c.id, _desired.c.sequence_id == stacks.c.latest_sequence_id),
    )
)


async def load_stacks(
    connection: AsyncConnection, query: Select[Any], params: Mapping[str, Any] | None = None
) -> list[tuple[Stack, Any]]:
    """Run a query built on `STACK_ROWS` (with `params` for its bind parameters); each stack comes
    with its row, for any extra columns."""
    rows = (await connection.execute(query, params)).all()
    ids = [row.id for row in rows]
    labels, annotations = await STACK_METADATA.load(connection, ids)
    return [(_stack(row, labels[row.id], annotations[row.id]), row) for row in rows]


def _stack(row: Any, labels: Mapping[str, str], annotations: Mapping[str, str]) -> Stack:
    desired = None
    if row.desired_id is not None:
        desired = DeploymentObjectRef(
            row.desired_id,
            row.desired_sequence_id,
            row.desired_checksum,
            bool(row.desired_is_deletion_marker),
        )
    return Stack(
        id=row.id,
        name=row.name,
        description=row.description,
        generator_id=row.generator_id,
        labels=labels,
        annotations=annotations,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
        desired=desired,
    )


class SqlStackRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, stack: Stack) -> None:
        await self._connection.execute(
            insert(stacks).values(
                id=stack.id,
                name=stack.name,
                description=stack.description,
                generator_id=stack.generator_id,
                latest_sequence_id=0,
                created_at=stack.created_at,
                updated_at=stack.updated_at,
                deleted_at=stack.deleted_at,
            )
        )
        await STACK_LABELS.add(self._connection, stack.id, stack.labels)
        await STACK_ANNOTATIONS.add(self._connection, stack.id, stack.annotations)

    async def get(self, stack_id: str) -> Stack | None:
        found = await load_stacks(self._connection, STACK_ROWS.where(stacks.c.id == stack_id))
        return found[0][0] if found else None

    async def labels_of(self, stack_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return await STACK_LABELS.load(self._connection, stack_ids)

    async def update(self, stack: Stack) -> None:
        await self._connection.execute(
            update(stacks)
            .where(stacks.c.id == stack.id)
            .values(
                name=stack.name,
                description=stack.description,
                updated_at=stack.updated_at,
                deleted_at=stack.deleted_at,
            )
        )
        await STACK_LABELS.replace(self._connection, stack.id, stack.labels)
        await STACK_ANNOTATIONS.replace(self._connection, stack.id, stack.annotations)

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        labels: Mapping[str, str],
        generator_id: str | None = None,
    ) -> list[Stack]:
        conditions = [keyset_after(_ORDER, after), *STACK_LABELS.has_all(stacks.c.id, labels)]
        if not show_deleted:
            conditions.append(stacks.c.deleted_at.is_(None))
        if generator_id is not None:
            conditions.append(stacks.c.generator_id == generator_id)
        query = STACK_ROWS.where(*conditions).order_by(*_ORDER).limit(limit)
        return [stack for stack, _ in await load_stacks(self._connection, query)]

    async def allocate_sequence_id(self, stack_id: str) -> int | None:
        result = await self._connection.execute(
            update(stacks)
            .where(stacks.c.id == stack_id, stacks.c.deleted_at.is_(None))
            .values(latest_sequence_id=stacks.c.latest_sequence_id + 1)
            .returning(stacks.c.latest_sequence_id)
        )
        return result.scalar_one_or_none()

    async def generator_has_live_stacks(self, generator_id: str) -> bool:
        query = select(exists().where(stacks.c.generator_id == generator_id, stacks.c.deleted_at.is_(None)))
        return bool(await self._connection.scalar(query))
