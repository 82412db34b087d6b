"""API keys in SQL, keyed by their short token; revoking keeps the row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.tables import agents, api_keys, generators
from broker.domain.model import Role
from broker.domain.ports import ApiKeyRecord, KeyOwner

_ACTIVE = api_keys.c.revoked_at.is_(None)
#: A key with its owner's name and whether the owner is deleted. Built once: every call's
#: authentication runs it.
_WITH_OWNER = (
    select(
        api_keys,
        func.coalesce(agents.c.name, generators.c.name).label("owner_name"),
        func.coalesce(agents.c.deleted_at, generators.c.deleted_at).label("owner_deleted_at"),
    )
    .outerjoin(agents, and_(api_keys.c.role == Role.AGENT.value, agents.c.id == api_keys.c.principal_id))
    .outerjoin(
        generators,
        and_(api_keys.c.role == Role.GENERATOR.value, generators.c.id == api_keys.c.principal_id),
    )
    .where(api_keys.c.short_token == bindparam("short_token"))
)


def _key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        short_token=row.short_token,
        long_hash=row.long_hash,
        role=Role(row.role),
        principal_id=row.principal_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


class SqlKeyRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, key: ApiKeyRecord) -> None:
        await self._connection.execute(
            insert(api_keys).values(
                short_token=key.short_token,
                long_hash=key.long_hash,
                role=key.role.value,
                principal_id=key.principal_id,
                created_at=key.created_at,
                revoked_at=key.revoked_at,
            )
        )

    async def find(self, short_token: str) -> ApiKeyRecord | None:
        row = (
            await self._connection.execute(select(api_keys).where(api_keys.c.short_token == short_token))
        ).first()
        return _key(row) if row else None

    async def find_with_owner(self, short_token: str) -> tuple[ApiKeyRecord, KeyOwner | None] | None:
        row = (await self._connection.execute(_WITH_OWNER, {"short_token": short_token})).first()
        if row is None:
            return None
        owner = KeyOwner(row.owner_name, row.owner_deleted_at is not None) if row.owner_name else None
        return _key(row), owner

    async def active_admin_keys(self) -> list[ApiKeyRecord]:
        query = select(api_keys).where(api_keys.c.role == Role.ADMIN.value, _ACTIVE)
        return [_key(row) for row in await self._connection.execute(query)]

    async def revoke(self, role: Role, principal_id: str | None, at: datetime) -> None:
        owner = (
            api_keys.c.role == role.value if role is Role.ADMIN else api_keys.c.principal_id == principal_id
        )
        await self._connection.execute(update(api_keys).where(owner, _ACTIVE).values(revoked_at=at))

    async def reinstate(self, key: ApiKeyRecord) -> None:
        await self._connection.execute(
            update(api_keys)
            .where(api_keys.c.short_token == key.short_token)
            .values(
                long_hash=key.long_hash, role=key.role.value, principal_id=key.principal_id, revoked_at=None
            )
        )
