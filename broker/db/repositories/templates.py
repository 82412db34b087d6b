"""Templates and their versions in SQL.

A template row carries the identity (name, owner, deletion) and the version counter; each version
row its content. Reads join a version to its template, so every `Template` returned is complete.
Version rows are only ever inserted.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Select, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.tables import template_versions as versions
from broker.db.tables import templates
from broker.domain.ports import Position
from broker.domain.templates import Template

_ORDER = (templates.c.name, templates.c.id)

#: A template joined with each of its versions; narrow with `.where()`.
_ROWS: Select[Any] = select(
    templates,
    versions.c.version,
    versions.c.description,
    versions.c.content,
    versions.c.parameters_schema,
    versions.c.labels,
    versions.c.annotations,
    versions.c.created_at.label("version_created_at"),
).select_from(templates.join(versions, versions.c.template_id == templates.c.id))


def _template(row: Any) -> Template:
    return Template(
        id=row.id,
        name=row.name,
        generator_id=row.generator_id,
        version=row.version,
        latest_version=row.latest_version,
        description=row.description,
        content=row.content,
        parameters_schema=row.parameters_schema,
        labels=row.labels,
        annotations=row.annotations,
        created_at=row.created_at,
        updated_at=row.updated_at,
        version_created_at=row.version_created_at,
        deleted_at=row.deleted_at,
    )


class SqlTemplateRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, template: Template) -> None:
        await self._connection.execute(
            insert(templates).values(
                id=template.id,
                name=template.name,
                generator_id=template.generator_id,
                latest_version=template.version,
                created_at=template.created_at,
                updated_at=template.updated_at,
                deleted_at=template.deleted_at,
            )
        )
        await self.add_version(template)

    async def allocate_version(self, template_id: str) -> int | None:
        result = await self._connection.execute(
            update(templates)
            .where(templates.c.id == template_id, templates.c.deleted_at.is_(None))
            .values(latest_version=templates.c.latest_version + 1)
            .returning(templates.c.latest_version)
        )
        return result.scalar_one_or_none()

    async def add_version(self, template: Template) -> None:
        await self._connection.execute(
            insert(versions).values(
                template_id=template.id,
                version=template.version,
                description=template.description,
                content=template.content,
                parameters_schema=dict(template.parameters_schema),
                labels=dict(template.labels),
                annotations=dict(template.annotations),
                created_at=template.version_created_at,
            )
        )
        await self._connection.execute(
            update(templates)
            .where(templates.c.id == template.id)
            .values(updated_at=template.version_created_at)
        )

    async def get(self, template_id: str, version: int | None = None) -> Template | None:
        wanted = templates.c.latest_version if version is None else version
        query = _ROWS.where(templates.c.id == template_id, versions.c.version == wanted)
        row = (await self._connection.execute(query)).first()
        return _template(row) if row else None

    async def mark_deleted(self, template_id: str, at: datetime) -> None:
        await self._connection.execute(
            update(templates).where(templates.c.id == template_id).values(deleted_at=at, updated_at=at)
        )

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        name: str | None = None,
        generator_id: str | None = None,
        readable_by: str | None = None,
    ) -> list[Template]:
        query = _ROWS.where(versions.c.version == templates.c.latest_version, keyset_after(_ORDER, after))
        if not show_deleted:
            query = query.where(templates.c.deleted_at.is_(None))
        if name is not None:
            query = query.where(templates.c.name == name)
        if generator_id is not None:
            query = query.where(templates.c.generator_id == generator_id)
        if readable_by is not None:
            query = query.where(
                or_(templates.c.generator_id == readable_by, templates.c.generator_id.is_(None))
            )
        rows = await self._connection.execute(query.order_by(*_ORDER).limit(limit))
        return [_template(row) for row in rows]

    async def list_versions(self, template_id: str, *, after: Position, limit: int) -> list[Template]:
        query = _ROWS.where(templates.c.id == template_id)
        if after:
            query = query.where(versions.c.version < after[0])
        rows = await self._connection.execute(query.order_by(versions.c.version.desc()).limit(limit))
        return [_template(row) for row in rows]
