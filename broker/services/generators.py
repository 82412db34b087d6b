"""Generators: the identities of CI/CD pipelines and tenants, each with its own key.

The admin manages them; a generator reads itself and rotates its own key. Deleting one revokes its
key, and is refused while it still owns live stacks, so no stack is left without an owner.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from broker.domain.changes import KeyRevoked
from broker.domain.model import CreatedWithKey, Generator, Page, Principal, Role
from broker.domain.ports import UnitOfWork
from broker.domain.validation import Violations, validate_description, validate_dns_label
from broker.services import access, checks, paging
from broker.services.idempotency import IdempotentCreate, fingerprint
from broker.services.keys import issue_key
from brokkr_common.errors import FailedPrecondition

UPDATABLE = frozenset({"name", "description"})


def _validate(violations: Violations, fields: Mapping[str, Any]) -> None:
    if "name" in fields:
        violations.check(validate_dns_label, "generator.name", fields["name"])
    if "description" in fields:
        violations.check(validate_description, "generator.description", fields["description"])


async def create_generator(
    uow: UnitOfWork, actor: Principal, *, name: str, description: str, request_id: str | None
) -> CreatedWithKey[Generator]:
    """A new generator and its key (None when replaying an earlier identical request)."""
    access.require_admin(actor, "create generators")
    violations = Violations()
    _validate(violations, {"name": name, "description": description})
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    request = IdempotentCreate(
        actor, "CreateGenerator", request_id, fingerprint(name=name, description=description)
    )

    async def attempt() -> CreatedWithKey[Generator]:
        async with uow:
            if replayed := await request.replay(uow, uow.generators.get):
                return CreatedWithKey(replayed, None)
            now = datetime.now(UTC)
            generator = Generator(str(uuid.uuid4()), name, description, created_at=now, updated_at=now)
            await uow.generators.add(generator)
            key = await issue_key(uow, Role.GENERATOR, generator.id, now)
            await request.remember(uow, generator.id, now)
            await uow.commit()
        return CreatedWithKey(generator, key)

    return await request.run(attempt)


async def get_generator(uow: UnitOfWork, actor: Principal, generator_id: str) -> Generator:
    violations = Violations()
    generator_id = checks.resource_id(violations, "id", generator_id)
    violations.raise_if_any()
    async with uow:
        return await access.readable_generator(uow, actor, generator_id)


async def list_generators(
    uow: UnitOfWork, actor: Principal, *, page_size: int, page_token: str, show_deleted: bool
) -> Page[Generator]:
    """Generators ordered by name: all of them for the admin, itself for a generator."""
    access.require_role(actor, {Role.ADMIN, Role.GENERATOR}, "list generators")
    violations = Violations()
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str),
        method="ListGenerators",
        principal=actor.id,
        show_deleted=show_deleted,
    )
    violations.raise_if_any()
    only_id = None if actor.is_admin else actor.id
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.generators.list_page(
                after=after, limit=limit, show_deleted=show_deleted, only_id=only_id
            ),
            lambda generator: (generator.name, generator.id),
        )


async def update_generator(
    uow: UnitOfWork, actor: Principal, generator_id: str, changes: Mapping[str, Any]
) -> Generator:
    """Change the fields named in `changes` (proto field names: name, description)."""
    access.require_admin(actor, "update generators")
    violations = Violations()
    generator_id = checks.resource_id(violations, "generator.id", generator_id)
    checks.update_mask(violations, changes, UPDATABLE, "generator")
    _validate(violations, changes)
    violations.raise_if_any()
    async with uow:
        generator = await access.readable_generator(uow, actor, generator_id)
        if generator.deleted_at is not None:
            raise access.deleted("generator", generator_id)
        if not changes:
            return generator
        updated = dataclasses.replace(generator, **changes, updated_at=datetime.now(UTC))
        await uow.generators.update(updated)
        await uow.commit()
    return updated


async def delete_generator(uow: UnitOfWork, actor: Principal, generator_id: str) -> Generator:
    """Soft-delete a generator and revoke its key; FAILED_PRECONDITION while it owns live stacks."""
    access.require_admin(actor, "delete generators")
    violations = Violations()
    generator_id = checks.resource_id(violations, "id", generator_id)
    violations.raise_if_any()
    async with uow:
        generator = await access.readable_generator(uow, actor, generator_id)
        if generator.deleted_at is not None:
            raise access.deleted("generator", generator_id)
        if await uow.stacks.generator_has_live_stacks(generator_id):
            raise FailedPrecondition(
                f"generator {generator_id!r} still owns live stacks; delete them first",
                reason="GENERATOR_HAS_STACKS",
                metadata={"id": generator_id},
            )
        now = datetime.now(UTC)
        deleted = dataclasses.replace(generator, updated_at=now, deleted_at=now)
        await uow.generators.update(deleted)
        await uow.keys.revoke(Role.GENERATOR, generator_id, now)
        uow.record(KeyRevoked(Role.GENERATOR, generator_id))
        await uow.commit()
    return deleted


async def rotate_generator_key(uow: UnitOfWork, actor: Principal, generator_id: str) -> str:
    """A new key for the generator (the admin's or its own call); the old one stops working at once."""
    violations = Violations()
    generator_id = checks.resource_id(violations, "id", generator_id)
    violations.raise_if_any()
    async with uow:
        generator = await access.readable_generator(uow, actor, generator_id)
        if generator.deleted_at is not None:
            raise access.deleted("generator", generator_id)
        key = await issue_key(uow, Role.GENERATOR, generator_id, datetime.now(UTC))
        uow.record(KeyRevoked(Role.GENERATOR, generator_id))
        await uow.commit()
    return key
