"""Templates: versioned Jinja2 sources of deployment objects, and instantiating them into stacks.

Who may do what:

* admin: every template. An admin creates system templates (no generator) or templates for a
  generator it names.
* generator: creates templates it owns; reads and instantiates its own and the system's; changes
  and deletes only its own; instantiates only into stacks it owns.
* agent: nothing.

A template is checked when it is written, not when it is used: its content must compile in the
sandbox and its parameters schema must be a valid draft 2020-12 schema for an object
(`broker.domain.templating`). Updating adds a version; versions never change, so provenance
(template id + version) always names the text that was rendered.

Instantiating checks, in order: the caller may read the template and write the stack; neither is
deleted; the stack carries every label and annotation of the template version (FAILED_PRECONDITION
naming the missing ones); the parameters pass the schema once its defaults are filled in
(INVALID_ARGUMENT with every violation's JSON path); the template renders within its bounds; the
output is a valid deployment object, checked by the same `parse_manifests` as submitted YAML. Only
then is the deployment object stored, through `deployment_objects.append` like any other, so it is
numbered and pushed to agents the same way. Rendering is CPU work of up to about a second, so it
runs in a worker thread between two transactions; the second one checks everything again before
writing, so a template or stack deleted meanwhile is still refused.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from broker.domain import templating
from broker.domain.events import EventType
from broker.domain.manifests import checksum, parse_manifests
from broker.domain.model import DeploymentObject, Page, Principal, Provenance, Resource, Role, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.templates import Template
from broker.domain.validation import (
    Violations,
    validate_annotations,
    validate_description,
    validate_dns_label,
    validate_labels,
)
from broker.services import access, checks, deployment_objects, paging
from broker.services.eventing import emit
from broker.services.idempotency import IdempotentCreate, fingerprint
from brokkr_common.errors import FailedPrecondition, PermissionDenied, not_found

UPDATABLE = frozenset({"description", "content", "parameters_schema", "labels", "annotations"})
#: The schema of a template created without one: any parameters, no defaults.
EMPTY_SCHEMA: Mapping[str, Any] = {"type": "object"}
#: Where problems with rendering and with the rendered YAML are reported.
RENDERED_FIELD = "rendered_yaml"

_READERS = frozenset({Role.ADMIN, Role.GENERATOR})


def _validate(violations: Violations, fields: Mapping[str, Any]) -> None:
    """The cheap, per-field rules; `_check_source` does the expensive ones."""
    if "name" in fields:
        violations.check(validate_dns_label, "template.name", fields["name"])
    if "description" in fields:
        violations.check(validate_description, "template.description", fields["description"])
    if "content" in fields and not fields["content"]:
        violations.add("template.content", "is required", "FIELD_REQUIRED")
    if "labels" in fields:
        violations.check(validate_labels, "template.labels", fields["labels"])
    if "annotations" in fields:
        violations.check(validate_annotations, "template.annotations", fields["annotations"])


def _check_source(fields: Mapping[str, Any]) -> Violations:
    """Compile the content and check the schema (whichever `fields` holds); run in a worker thread."""
    violations = Violations()
    if fields.get("content"):
        violations.check(templating.check_template, fields["content"], "template.content")
    if "parameters_schema" in fields:
        violations.check(
            templating.check_parameters_schema, fields["parameters_schema"], "template.parameters_schema"
        )
    return violations


async def _checked(violations: Violations, fields: Mapping[str, Any]) -> None:
    """Raise every violation of the request; the expensive checks run only once the cheap ones pass."""
    violations.raise_if_any()
    found = await asyncio.to_thread(_check_source, fields)
    found.raise_if_any()


def _schema(value: Mapping[str, Any] | None) -> dict[str, Any]:
    return dict(value) if value else dict(EMPTY_SCHEMA)


async def _require_live_generator(uow: UnitOfWork, generator_id: str) -> None:
    generator = await uow.generators.get(generator_id)
    if generator is None:
        raise not_found("generator", generator_id)
    if generator.deleted_at is not None:
        raise access.deleted("generator", generator_id)


def _version(violations: Violations, field: str, version: int) -> int | None:
    """An optional version number: 0 means the newest (None)."""
    if version < 0:
        violations.add(field, f"must be a version number (1, 2, ...) or 0 for the newest (got {version})")
    return version or None


async def readable_template(
    uow: UnitOfWork, actor: Principal, template_id: str, version: int | None = None
) -> Template:
    """The template at `version` (the newest if None), for the admin, its owner and, for system
    templates, every generator. A version that does not exist is NOT_FOUND for whoever may read
    the template."""
    access.require_role(actor, _READERS, "read templates")
    found = await uow.templates.get(template_id, version)
    if found is None and version is not None:
        newest = await uow.templates.get(template_id)
        if newest is not None and _may_read(actor, newest):
            raise not_found("template version", f"{template_id}@{version}")
    if found is None:
        if actor.is_admin:
            raise not_found("template", template_id)
        raise access.denied("template", template_id)
    if not _may_read(actor, found):
        raise access.denied("template", template_id)
    return found


def _may_read(actor: Principal, template: Template) -> bool:
    return actor.is_admin or template.is_system or template.generator_id == actor.id


async def _owned_template(uow: UnitOfWork, actor: Principal, template_id: str) -> Template:
    """The template at its newest version, for who may change it: the admin or the owning generator."""
    template = await readable_template(uow, actor, template_id)
    if not actor.is_admin and template.generator_id != actor.id:
        raise PermissionDenied(
            f"template {template_id!r} is a system template: only admins may change it",
            reason="NOT_TEMPLATE_OWNER",
            metadata={"id": template_id},
        )
    return template


# Managing templates --------------------------------------------------------------------------------


async def create_template(
    uow: UnitOfWork,
    actor: Principal,
    *,
    name: str,
    description: str,
    generator_id: str | None,
    content: str,
    parameters_schema: Mapping[str, Any] | None,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    request_id: str | None,
) -> Template:
    """Version 1 of a new template, once its content compiles and its schema is valid."""
    access.require_role(actor, _READERS, "create templates")
    fields: dict[str, Any] = {
        "name": name,
        "description": description,
        "content": content,
        "parameters_schema": _schema(parameters_schema),
        "labels": dict(labels),
        "annotations": dict(annotations),
    }
    violations = Violations()
    _validate(violations, fields)
    if generator_id is not None:
        generator_id = checks.resource_id(violations, "template.generator_id", generator_id)
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    owner = access.new_owner(actor, generator_id, "template")
    await _checked(violations, fields)
    request = IdempotentCreate(actor, "CreateTemplate", request_id, fingerprint(generator_id=owner, **fields))

    async def attempt() -> Template:
        async with uow:
            if replayed := await request.replay(uow, uow.templates.get):
                return replayed
            if owner is not None:
                await _require_live_generator(uow, owner)
            now = datetime.now(UTC)
            template = Template(
                id=str(uuid.uuid4()),
                generator_id=owner,
                version=1,
                latest_version=1,
                created_at=now,
                updated_at=now,
                version_created_at=now,
                **fields,
            )
            await uow.templates.add(template)
            await request.remember(uow, template.id, now)
            await _emit(uow, EventType.TEMPLATE_CREATED, actor, template)
            await uow.commit()
        return template

    return await request.run(attempt)


async def get_template(uow: UnitOfWork, actor: Principal, template_id: str, version: int = 0) -> Template:
    """One version of a template; 0 means the newest."""
    violations = Violations()
    template_id = checks.resource_id(violations, "id", template_id)
    wanted = _version(violations, "version", version)
    violations.raise_if_any()
    async with uow:
        return await readable_template(uow, actor, template_id, wanted)


async def list_templates(
    uow: UnitOfWork,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    name: str = "",
    generator_id: str | None = None,
    show_deleted: bool = False,
) -> Page[Template]:
    """Templates at their newest version, ordered by name: all for the admin; for a generator its
    own and the system's (only its own when it names itself as `generator_id`)."""
    access.require_role(actor, _READERS, "list templates")
    violations = Violations()
    if name:
        violations.check(validate_dns_label, "name", name)
    if generator_id is not None:
        generator_id = checks.resource_id(violations, "generator_id", generator_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str),
        method="ListTemplates",
        principal=actor.id,
        name=name,
        generator_id=generator_id,
        show_deleted=show_deleted,
    )
    violations.raise_if_any()
    readable_by = None
    if not actor.is_admin:
        if generator_id not in (None, actor.id):
            raise access.denied("generator", str(generator_id))
        readable_by = None if generator_id else actor.id
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.templates.list_page(
                after=after,
                limit=limit,
                show_deleted=show_deleted,
                name=name or None,
                generator_id=generator_id,
                readable_by=readable_by,
            ),
            lambda template: (template.name, template.id),
        )


async def list_template_versions(
    uow: UnitOfWork, actor: Principal, template_id: str, *, page_size: int, page_token: str
) -> Page[Template]:
    """A template's versions, newest first."""
    violations = Violations()
    template_id = checks.resource_id(violations, "id", template_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int,),
        method="ListTemplateVersions",
        principal=actor.id,
        id=template_id,
    )
    violations.raise_if_any()
    async with uow:
        await readable_template(uow, actor, template_id)
        return await paging.collect(
            page,
            lambda after, limit: uow.templates.list_versions(template_id, after=after, limit=limit),
            lambda template: (template.version,),
        )


async def update_template(
    uow: UnitOfWork, actor: Principal, template_id: str, changes: Mapping[str, Any]
) -> Template:
    """A new version: the newest one with `changes` applied. No changes, no new version."""
    violations = Violations()
    template_id = checks.resource_id(violations, "template.id", template_id)
    checks.update_mask(violations, changes, UPDATABLE, "template")
    changes = dict(changes)
    if "parameters_schema" in changes:
        changes["parameters_schema"] = _schema(changes["parameters_schema"])
    _validate(violations, changes)
    await _checked(violations, changes)
    async with uow:
        template = await _owned_template(uow, actor, template_id)
        if template.deleted_at is not None:
            raise access.deleted("template", template_id)
        if not changes:
            return template
        version = await uow.templates.allocate_version(template_id)
        if version is None:
            raise access.deleted("template", template_id)
        # Read the newest version again under the row lock: a concurrent update may have added it.
        base = await uow.templates.get(template_id, version - 1)
        assert base is not None
        now = datetime.now(UTC)
        updated = dataclasses.replace(
            base,
            **changes,
            version=version,
            latest_version=version,
            updated_at=now,
            version_created_at=now,
        )
        await uow.templates.add_version(updated)
        await _emit(uow, EventType.TEMPLATE_UPDATED, actor, updated, changed=sorted(changes))
        await uow.commit()
    return updated


async def delete_template(uow: UnitOfWork, actor: Principal, template_id: str) -> Template:
    """Soft-delete a template and so all its versions; what was rendered from it stays."""
    violations = Violations()
    template_id = checks.resource_id(violations, "id", template_id)
    violations.raise_if_any()
    async with uow:
        template = await _owned_template(uow, actor, template_id)
        if template.deleted_at is not None:
            raise access.deleted("template", template_id)
        now = datetime.now(UTC)
        await uow.templates.mark_deleted(template_id, now)
        deleted = dataclasses.replace(template, deleted_at=now, updated_at=now)
        await _emit(uow, EventType.TEMPLATE_DELETED, actor, deleted)
        await uow.commit()
    return deleted


# Instantiating -------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Rendered:
    parameters: dict[str, Any]
    yaml_content: str
    resources: tuple[Resource, ...]


async def instantiate_template(
    uow: UnitOfWork,
    actor: Principal,
    *,
    stack_id: str,
    template_id: str,
    template_version: int,
    parameters: Mapping[str, Any],
    dry_run: bool,
    request_id: str | None,
    max_bytes: int = deployment_objects.DEFAULT_MAX_BYTES,
) -> DeploymentObject:
    """Render a template version into the stack's newest deployment object (see the module docstring).

    With `dry_run` the deployment object is returned without id or sequence id and nothing is written.
    """
    access.require_role(actor, _READERS, "instantiate templates")
    violations = Violations()
    stack_id = checks.resource_id(violations, "stack_id", stack_id)
    template_id = checks.resource_id(violations, "template_id", template_id)
    wanted = _version(violations, "template_version", template_version)
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    request = IdempotentCreate(
        actor,
        "InstantiateTemplate",
        None if dry_run else request_id,
        fingerprint(
            stack_id=stack_id, template_id=template_id, template_version=wanted, parameters=dict(parameters)
        ),
    )

    async def attempt() -> DeploymentObject:
        async with uow:
            if replayed := await request.replay(uow, uow.deployment_objects.get):
                return replayed
            _, template = await _source(uow, actor, stack_id, template_id, wanted)
        rendered = await asyncio.to_thread(_render, template, parameters, max_bytes)
        provenance = Provenance(template.id, template.version, rendered.parameters)
        now = datetime.now(UTC)
        if dry_run:
            return DeploymentObject(
                id="",
                stack_id=stack_id,
                sequence_id=0,
                yaml_content=rendered.yaml_content,
                checksum=checksum(rendered.yaml_content),
                is_deletion_marker=False,
                created_at=now,
                resources=rendered.resources,
                provenance=provenance,
            )
        async with uow:
            stack, _ = await _source(uow, actor, stack_id, template_id, template.version)
            created = await deployment_objects.append(
                uow,
                stack,
                yaml_content=rendered.yaml_content,
                resources=rendered.resources,
                at=now,
                provenance=provenance,
            )
            await request.remember(uow, created.id, now)
            await emit(
                uow,
                EventType.DEPLOYMENT_OBJECT_CREATED,
                actor=actor,
                stack_id=stack.id,
                deployment_object_id=created.id,
                template_id=template.id,
                labels=stack.labels,
                payload={
                    "sequence_id": created.sequence_id,
                    "checksum": created.checksum,
                    "template_version": template.version,
                },
                at=now,
            )
            await uow.commit()
        return created

    return await request.run(attempt)


async def _source(
    uow: UnitOfWork, actor: Principal, stack_id: str, template_id: str, version: int | None
) -> tuple[Stack, Template]:
    """The stack and template version to instantiate, once every rule but the parameters' holds."""
    template = await readable_template(uow, actor, template_id, version)
    stack = await access.owned_stack(uow, actor, stack_id)
    if template.deleted_at is not None:
        raise access.deleted("template", template_id)
    if stack.deleted_at is not None:
        raise access.deleted("stack", stack_id)
    labels, annotations = templating.required_labels_missing(
        template.labels, template.annotations, stack.labels, stack.annotations
    )
    if labels or annotations:
        missing = [f"label {item}" for item in labels] + [f"annotation {item}" for item in annotations]
        raise FailedPrecondition(
            f"stack {stack_id!r} lacks what template {template.name!r} version {template.version} "
            f"requires: {', '.join(missing)}",
            reason="TEMPLATE_LABELS_MISSING",
            metadata={
                "stack_id": stack_id,
                "template_id": template_id,
                "missing_labels": ",".join(labels),
                "missing_annotations": ",".join(annotations),
            },
        )
    return stack, template


def _render(template: Template, parameters: Mapping[str, Any], max_bytes: int) -> _Rendered:
    """Resolve the parameters, render, and check the result as a deployment object (a worker thread)."""
    resolved = templating.resolve_parameters(template.parameters_schema, parameters, "parameters")
    text = templating.render(template.content, resolved, max_bytes=max_bytes, field=RENDERED_FIELD)
    resources = parse_manifests(text, max_bytes=max_bytes, field=RENDERED_FIELD)
    return _Rendered(resolved, text, resources)


async def _emit(
    uow: UnitOfWork,
    event_type: EventType,
    actor: Principal,
    template: Template,
    *,
    changed: list[str] | None = None,
) -> None:
    payload: dict[str, Any] = {
        "name": template.name,
        "version": template.version,
        "generator_id": template.generator_id,
    }
    if changed is not None:
        payload["changed_fields"] = changed
    await emit(
        uow,
        event_type,
        actor=actor,
        template_id=template.id,
        labels=template.labels,
        payload=payload,
        at=template.updated_at,
    )
