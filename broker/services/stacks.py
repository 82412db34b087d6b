"""Stacks: named collections of Kubernetes resources, owned by a generator (or by the admin).

A generator always creates stacks it owns. Stack names are unique among live stacks. Deleting a
stack soft-deletes it and appends a deletion marker as its newest deployment object, so every agent
holding it prunes what it applied; a deleted stack accepts nothing more.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from broker.domain.changes import StackChanged
from broker.domain.events import EventType
from broker.domain.manifests import checksum
from broker.domain.model import DeploymentObject, Page, Principal, Role, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.selectors import parse_label_selector
from broker.domain.validation import (
    Violations,
    validate_annotations,
    validate_description,
    validate_dns_label,
    validate_labels,
)
from broker.services import access, checks, paging
from broker.services.eventing import emit
from broker.services.idempotency import IdempotentCreate, fingerprint
from brokkr_common.errors import not_found

UPDATABLE = frozenset({"name", "description", "labels", "annotations"})


def _validate(violations: Violations, fields: Mapping[str, Any]) -> None:
    if "name" in fields:
        violations.check(validate_dns_label, "stack.name", fields["name"])
    if "description" in fields:
        violations.check(validate_description, "stack.description", fields["description"])
    if "labels" in fields:
        violations.check(validate_labels, "stack.labels", fields["labels"])
    if "annotations" in fields:
        violations.check(validate_annotations, "stack.annotations", fields["annotations"])


async def create_stack(
    uow: UnitOfWork,
    actor: Principal,
    *,
    name: str,
    description: str,
    generator_id: str | None,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    request_id: str | None,
) -> Stack:
    fields = {
        "name": name,
        "description": description,
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    violations = Violations()
    _validate(violations, fields)
    if generator_id is not None:
        generator_id = checks.resource_id(violations, "stack.generator_id", generator_id)
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    owner = access.new_owner(actor, generator_id, "stack")
    request = IdempotentCreate(actor, "CreateStack", request_id, fingerprint(generator_id=owner, **fields))

    async def attempt() -> Stack:
        async with uow:
            if replayed := await request.replay(uow, uow.stacks.get):
                return replayed
            if owner is not None:
                await _require_live_generator(uow, owner)
            now = datetime.now(UTC)
            stack = Stack(str(uuid.uuid4()), generator_id=owner, created_at=now, updated_at=now, **fields)
            await uow.stacks.add(stack)
            await request.remember(uow, stack.id, now)
            await _emit(uow, EventType.STACK_CREATED, actor, stack)
            uow.record(StackChanged(stack.id))
            await uow.commit()
        return stack

    return await request.run(attempt)


async def _require_live_generator(uow: UnitOfWork, generator_id: str) -> None:
    generator = await uow.generators.get(generator_id)
    if generator is None:
        raise not_found("generator", generator_id)
    if generator.deleted_at is not None:
        raise access.deleted("generator", generator_id)


async def get_stack(uow: UnitOfWork, actor: Principal, stack_id: str) -> Stack:
    violations = Violations()
    stack_id = checks.resource_id(violations, "id", stack_id)
    violations.raise_if_any()
    async with uow:
        return await access.readable_stack(uow, actor, stack_id)


async def list_stacks(
    uow: UnitOfWork,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    label_selector: str = "",
    generator_id: str | None = None,
    show_deleted: bool = False,
) -> Page[Stack]:
    """Stacks ordered by name: all for the admin, its own for a generator."""
    access.require_role(actor, {Role.ADMIN, Role.GENERATOR}, "list stacks")
    violations = Violations()
    selector = violations.check(parse_label_selector, "label_selector", label_selector)
    if generator_id is not None:
        generator_id = checks.resource_id(violations, "generator_id", generator_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str),
        method="ListStacks",
        principal=actor.id,
        label_selector=str(selector),
        generator_id=generator_id,
        show_deleted=show_deleted,
    )
    violations.raise_if_any()
    assert selector is not None
    if not actor.is_admin:
        if generator_id not in (None, actor.id):
            raise access.denied("generator", str(generator_id))
        generator_id = actor.id
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.stacks.list_page(
                after=after,
                limit=limit,
                show_deleted=show_deleted,
                labels=selector.equalities(),
                generator_id=generator_id,
            ),
            lambda stack: (stack.name, stack.id),
            keep=lambda stack: selector.matches(stack.labels),
        )


async def update_stack(uow: UnitOfWork, actor: Principal, stack_id: str, changes: Mapping[str, Any]) -> Stack:
    """Change the fields named in `changes` (name, description, labels, annotations)."""
    violations = Violations()
    stack_id = checks.resource_id(violations, "stack.id", stack_id)
    checks.update_mask(violations, changes, UPDATABLE, "stack")
    _validate(violations, changes)
    violations.raise_if_any()
    async with uow:
        stack = await access.owned_stack(uow, actor, stack_id)
        if stack.deleted_at is not None:
            raise access.deleted("stack", stack_id)
        if not changes:
            return stack
        updated = dataclasses.replace(stack, **changes, updated_at=datetime.now(UTC))
        await uow.stacks.update(updated)
        await _emit(uow, EventType.STACK_UPDATED, actor, updated, changed=sorted(changes))
        uow.record(StackChanged(stack_id))
        await uow.commit()
    return updated


async def delete_stack(uow: UnitOfWork, actor: Principal, stack_id: str) -> Stack:
    """Soft-delete a stack and append its deletion marker; returns it with the marker as desired state."""
    violations = Violations()
    stack_id = checks.resource_id(violations, "id", stack_id)
    violations.raise_if_any()
    async with uow:
        stack = await access.owned_stack(uow, actor, stack_id)
        sequence_id = await uow.stacks.allocate_sequence_id(stack_id)
        if sequence_id is None:
            raise access.deleted("stack", stack_id)
        now = datetime.now(UTC)
        marker = DeploymentObject(
            id=str(uuid.uuid4()),
            stack_id=stack_id,
            sequence_id=sequence_id,
            yaml_content="",
            checksum=checksum(""),
            is_deletion_marker=True,
            created_at=now,
        )
        await uow.deployment_objects.add(marker)
        deleted = dataclasses.replace(stack, updated_at=now, deleted_at=now, desired=marker.ref)
        await uow.stacks.update(deleted)
        await _emit(uow, EventType.STACK_DELETED, actor, deleted)
        uow.record(StackChanged(stack_id))
        await uow.commit()
    return deleted


async def _emit(
    uow: UnitOfWork,
    event_type: EventType,
    actor: Principal,
    stack: Stack,
    *,
    changed: list[str] | None = None,
) -> None:
    payload: dict[str, Any] = {"name": stack.name, "generator_id": stack.generator_id}
    if changed is not None:
        payload["changed_fields"] = changed
    if stack.desired is not None and stack.deleted_at is not None:
        payload["deletion_marker_id"] = stack.desired.id
    await emit(
        uow,
        event_type,
        actor=actor,
        stack_id=stack.id,
        deployment_object_id=stack.desired.id if stack.deleted_at is not None and stack.desired else None,
        labels=stack.labels,
        payload=payload,
        at=stack.updated_at,
    )
