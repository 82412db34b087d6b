"""Deployment objects: immutable versions of a stack's YAML, numbered 1, 2, 3 ... per stack.

Creating one parses and checks the YAML first (nothing is stored when any object is invalid), then
takes the stack's next sequence id under the stack's row lock, so concurrent submissions to one
stack get distinct, gapless numbers. The newest one is the stack's desired state. Who may write a
stack may submit to it; whoever may read a stack may read its deployment objects.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from broker.domain.changes import StackChanged
from broker.domain.events import EventType
from broker.domain.manifests import checksum, parse_manifests
from broker.domain.model import DeploymentObject, Page, Principal, Provenance, Resource, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.validation import Violations
from broker.services import access, checks, paging
from broker.services.eventing import emit
from broker.services.idempotency import IdempotentCreate, fingerprint
from brokkr_common.errors import PermissionDenied, not_found

#: The default bound on a deployment object's YAML, in UTF-8 bytes.
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


async def create_deployment_object(
    uow: UnitOfWork,
    actor: Principal,
    *,
    stack_id: str,
    yaml_content: str,
    request_id: str | None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> DeploymentObject:
    """Store `yaml_content` as the stack's newest version; FAILED_PRECONDITION if the stack is deleted."""
    violations = Violations()
    stack_id = checks.resource_id(violations, "stack_id", stack_id)
    resources = violations.check(parse_manifests, yaml_content, max_bytes=max_bytes)
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    assert resources is not None
    content_checksum = checksum(yaml_content)
    request = IdempotentCreate(
        actor, "CreateDeploymentObject", request_id, fingerprint(stack_id=stack_id, checksum=content_checksum)
    )

    async def attempt() -> DeploymentObject:
        async with uow:
            if replayed := await request.replay(uow, uow.deployment_objects.get):
                return replayed
            stack = await access.owned_stack(uow, actor, stack_id)
            now = datetime.now(UTC)
            deployment_object = await append(
                uow, stack, yaml_content=yaml_content, resources=resources, at=now
            )
            sequence_id = deployment_object.sequence_id
            await request.remember(uow, deployment_object.id, now)
            await emit(
                uow,
                EventType.DEPLOYMENT_OBJECT_CREATED,
                actor=actor,
                stack_id=stack_id,
                deployment_object_id=deployment_object.id,
                labels=stack.labels,
                payload={"sequence_id": sequence_id, "checksum": content_checksum},
                at=now,
            )
            await uow.commit()
        return deployment_object

    return await request.run(attempt)


async def append(
    uow: UnitOfWork,
    stack: Stack,
    *,
    yaml_content: str,
    resources: tuple[Resource, ...],
    at: datetime,
    provenance: Provenance | None = None,
) -> DeploymentObject:
    """Store checked content (`parse_manifests` gave `resources`) as the stack's newest deployment
    object, in the caller's transaction, and note the change for agent sessions.

    Every way of creating a deployment object goes through here (templates too), so numbering and
    delivery are the same for all. FAILED_PRECONDITION if the stack is deleted.
    """
    sequence_id = await uow.stacks.allocate_sequence_id(stack.id)
    if sequence_id is None:
        raise access.deleted("stack", stack.id)
    deployment_object = DeploymentObject(
        id=str(uuid.uuid4()),
        stack_id=stack.id,
        sequence_id=sequence_id,
        yaml_content=yaml_content,
        checksum=checksum(yaml_content),
        is_deletion_marker=False,
        created_at=at,
        resources=resources,
        provenance=provenance,
    )
    await uow.deployment_objects.add(deployment_object)
    uow.record(StackChanged(stack.id, new_version_only=stack.desired is not None))
    return deployment_object


async def get_deployment_object(
    uow: UnitOfWork, actor: Principal, deployment_object_id: str
) -> DeploymentObject:
    """One deployment object with its content and resources."""
    violations = Violations()
    deployment_object_id = checks.resource_id(violations, "id", deployment_object_id)
    violations.raise_if_any()
    async with uow:
        found = await uow.deployment_objects.get(deployment_object_id)
        if found is None:
            if actor.is_admin:
                raise not_found("deployment object", deployment_object_id)
            raise access.denied("deployment object", deployment_object_id)
        try:
            await access.readable_stack(uow, actor, found.stack_id)
        except PermissionDenied:
            raise access.denied("deployment object", deployment_object_id) from None
    return found


async def list_deployment_objects(
    uow: UnitOfWork,
    actor: Principal,
    *,
    stack_id: str,
    page_size: int,
    page_token: str,
    include_content: bool = False,
) -> Page[DeploymentObject]:
    """A stack's deployment objects, newest first; content and resources only with `include_content`."""
    violations = Violations()
    stack_id = checks.resource_id(violations, "stack_id", stack_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int,),
        method="ListDeploymentObjects",
        principal=actor.id,
        stack_id=stack_id,
    )
    violations.raise_if_any()
    async with uow:
        await access.readable_stack(uow, actor, stack_id)
        return await paging.collect(
            page,
            lambda after, limit: uow.deployment_objects.list_page(
                stack_id, after=after, limit=limit, include_content=include_content
            ),
            lambda deployment_object: (deployment_object.sequence_id,),
        )
