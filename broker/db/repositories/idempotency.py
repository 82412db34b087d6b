"""Idempotency records of creates that carried a request_id (AIP-155), in SQL."""

from __future__ import annotations

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.tables import idempotency_records as records
from broker.domain.ports import IdempotencyRecord


class SqlIdempotencyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def find(self, principal: str, method: str, request_id: str) -> IdempotencyRecord | None:
        query = select(records).where(
            records.c.principal == principal, records.c.method == method, records.c.request_id == request_id
        )
        row = (await self._connection.execute(query)).first()
        if row is None:
            return None
        return IdempotencyRecord(
            principal=row.principal,
            method=row.method,
            request_id=row.request_id,
            request_fingerprint=row.request_fingerprint,
            resource_id=row.resource_id,
            created_at=row.created_at,
        )

    async def add(self, record: IdempotencyRecord) -> None:
        await self._connection.execute(
            insert(records).values(
                principal=record.principal,
                method=record.method,
                request_id=record.request_id,
                request_fingerprint=record.request_fingerprint,
                resource_id=record.resource_id,
                created_at=record.created_at,
            )
        )
