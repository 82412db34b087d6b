"""Deployment objects and their parsed resources in SQL. Rows are only ever inserted."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import chunks
from broker.db.tables import deployment_object_resources as resources
from broker.db.tables import deployment_objects
from broker.domain.model import DeploymentObject, Provenance, Resource, ResourceKey
from broker.domain.ports import Position

_columns = deployment_objects.c
#: Everything but the content, for lists in the BASIC view.
_SUMMARY = [c for c in deployment_objects.c if c.name != "yaml_content"]


def _provenance(value: Any) -> Provenance | None:
    if value is None:
        return None
    return Provenance(value["template_id"], value["template_version"], value["parameters"])


def _deployment_object(row: Any, resources_of: Sequence[Resource]) -> DeploymentObject:
    return DeploymentObject(
        id=row.id,
        stack_id=row.stack_id,
        sequence_id=row.sequence_id,
        yaml_content=getattr(row, "yaml_content", ""),
        checksum=row.checksum,
        is_deletion_marker=bool(row.is_deletion_marker),
        created_at=row.created_at,
        resources=tuple(resources_of),
        provenance=_provenance(row.provenance),
    )


class SqlDeploymentObjectRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, deployment_object: DeploymentObject) -> None:
        provenance = deployment_object.provenance
        await self._connection.execute(
            insert(deployment_objects).values(
                id=deployment_object.id,
                stack_id=deployment_object.stack_id,
                sequence_id=deployment_object.sequence_id,
                yaml_content=deployment_object.yaml_content,
                checksum=deployment_object.checksum,
                is_deletion_marker=deployment_object.is_deletion_marker,
                provenance=None
                if provenance is None
                else {
                    "template_id": provenance.template_id,
                    "template_version": provenance.template_version,
                    "parameters": dict(provenance.parameters),
                },
                created_at=deployment_object.created_at,
            )
        )
        if deployment_object.resources:
            await self._connection.execute(
                insert(resources),
                [
                    {
                        "deployment_object_id": deployment_object.id,
                        "position": position,
                        "api_group": resource.key.group,
                        "version": resource.key.version,
                        "kind": resource.key.kind,
                        "namespace": resource.key.namespace,
                        "name": resource.key.name,
                        "content_hash": resource.content_hash,
                        "manifest_json": resource.manifest_json,
                    }
                    for position, resource in enumerate(deployment_object.resources)
                ],
            )

    async def get(self, deployment_object_id: str) -> DeploymentObject | None:
        query = select(deployment_objects).where(_columns.id == deployment_object_id)
        row = (await self._connection.execute(query)).first()
        if row is None:
            return None
        return _deployment_object(row, (await self._resources([row.id]))[row.id])

    async def get_many(self, deployment_object_ids: Sequence[str]) -> dict[str, DeploymentObject]:
        rows = []
        for batch in chunks(deployment_object_ids):
            query = select(deployment_objects).where(_columns.id.in_(batch))
            rows += (await self._connection.execute(query)).all()
        found = await self._resources([row.id for row in rows])
        return {row.id: _deployment_object(row, found[row.id]) for row in rows}

    async def list_page(
        self, stack_id: str, *, after: Position, limit: int, include_content: bool
    ) -> list[DeploymentObject]:
        query = select(*(deployment_objects.c if include_content else _SUMMARY)).where(
            _columns.stack_id == stack_id
        )
        if after:
            query = query.where(_columns.sequence_id < after[0])
        rows = (
            await self._connection.execute(query.order_by(_columns.sequence_id.desc()).limit(limit))
        ).all()
        found = await self._resources([row.id for row in rows]) if include_content else defaultdict(list)
        return [_deployment_object(row, found[row.id]) for row in rows]

    async def _resources(self, ids: Sequence[str]) -> defaultdict[str, list[Resource]]:
        found: defaultdict[str, list[Resource]] = defaultdict(list)
        for batch in chunks(ids):
            query = (
                select(resources)
                .where(resources.c.deployment_object_id.in_(batch))
                .order_by(resources.c.deployment_object_id, resources.c.position)
            )
            for row in await self._connection.execute(query):
                key = ResourceKey(row.api_group, row.version, row.kind, row.namespace, row.name)
                found[row.deployment_object_id].append(Resource(key, row.content_hash, row.manifest_json))
        return found
