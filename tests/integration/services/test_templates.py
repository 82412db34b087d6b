"""Templates on both backends: checks on write, versions, visibility, and instantiation into stacks
(parameters, labels, rendering, provenance, dry runs), with refused requests writing nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from broker.domain.changes import StackChanged
from broker.domain.model import ADMIN, Generator, Principal, Stack
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.templates import Template
from broker.services import deployment_objects, stacks, templates
from brokkr_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.services.builders import Builder, RowCounter, as_agent, as_generator, unique

CONTENT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
data:
  replicas: "{{ replicas }}"
{%- for port in ports %}
  port-{{ port.name }}: "{{ port.number }}"
{%- endfor %}
"""
SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string", "default": "demo"},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 20, "default": 2},
        "ports": {
            "type": "array",
            "default": [],
            "items": {
                "type": "object",
                "required": ["name", "number"],
                "properties": {"name": {"type": "string"}, "number": {"type": "integer"}},
            },
        },
    },
}


async def _create(
    uow_factory: UnitOfWorkFactory,
    actor: Principal = ADMIN,
    *,
    name: str | None = None,
    owner: Generator | None = None,
    content: str = CONTENT,
    schema: dict[str, Any] | None = SCHEMA,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    request_id: str | None = None,
) -> Template:
    return await templates.create_template(
        uow_factory(),
        actor,
        name=name or unique("tpl"),
        description="a config map",
        generator_id=owner.id if owner else None,
        content=content,
        parameters_schema=schema,
        labels=labels or {},
        annotations=annotations or {},
        request_id=request_id,
    )


async def _instantiate(
    uow_factory: UnitOfWorkFactory,
    stack: Stack,
    template: Template,
    parameters: dict[str, Any],
    actor: Principal = ADMIN,
    *,
    version: int = 0,
    dry_run: bool = False,
    request_id: str | None = None,
):
    return await templates.instantiate_template(
        uow_factory(),
        actor,
        stack_id=stack.id,
        template_id=template.id,
        template_version=version,
        parameters=parameters,
        dry_run=dry_run,
        request_id=request_id,
    )


# Writing templates ----------------------------------------------------------------------------------


async def test_a_created_template_is_version_one_and_reads_back(uow_factory):
    created = await _create(uow_factory, name="web-service", labels={"env": "prod"})

    read = await templates.get_template(uow_factory(), ADMIN, created.id)

    assert read == created
    assert (read.name, read.version, read.latest_version, read.generator_id) == ("web-service", 1, 1, None)
    assert read.parameters_schema == SCHEMA and dict(read.labels) == {"env": "prod"}


async def test_a_template_without_a_schema_takes_any_object(uow_factory):
    created = await _create(uow_factory, schema=None)
    assert created.parameters_schema == {"type": "object"}


async def test_bad_content_and_schema_are_all_reported_and_nothing_is_written(
    uow_factory, count_rows: RowCounter
):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await _create(
            uow_factory,
            content="name: {{ name }\n{% include 'other' %}",
            schema={"type": "array", "properties": {"n": {"minimum": "one"}}},
        )
    fields = {(v.field, v.reason) for v in raised.value.field_violations}
    assert fields == {
        ("template.content", "INVALID_TEMPLATE"),
        ("template.parameters_schema.properties.n.minimum", "INVALID_PARAMETERS_SCHEMA"),
    }
    assert await count_rows() == before


async def test_a_schema_for_something_other_than_an_object_is_refused(uow_factory):
    with pytest.raises(InvalidArgument) as raised:
        await _create(uow_factory, schema={"type": "array"})
    assert [v.field for v in raised.value.field_violations] == ["template.parameters_schema.type"]


async def test_loading_other_templates_is_refused_on_create(uow_factory):
    with pytest.raises(InvalidArgument) as raised:
        await _create(uow_factory, content="{% include 'secrets.yaml' %}")
    assert raised.value.field_violations[0].reason == "TEMPLATE_FEATURE_NOT_ALLOWED"


async def test_cheap_field_rules_are_all_reported(uow_factory, count_rows: RowCounter):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await _create(uow_factory, name="Not_A_Label", content="", labels={"bad key!": "v"})
    assert {v.field for v in raised.value.field_violations} == {
        "template.name",
        "template.content",
        'template.labels["bad key!"]',
    }
    assert await count_rows() == before


async def test_names_are_unique_per_owner_among_live_templates(uow_factory, build: Builder):
    one, two = await build.generator(), await build.generator()
    first = await _create(uow_factory, name="web", owner=one)
    await _create(uow_factory, name="web", owner=two)
    await _create(uow_factory, name="web")  # the system's own namespace of names
    with pytest.raises(AlreadyExists) as raised:
        await _create(uow_factory, as_generator(one), name="web")
    assert raised.value.reason == "TEMPLATE_ALREADY_EXISTS"
    with pytest.raises(AlreadyExists):
        await _create(uow_factory, name="web")

    await templates.delete_template(uow_factory(), ADMIN, first.id)
    assert (await _create(uow_factory, name="web", owner=one)).id != first.id


async def test_a_generator_owns_what_it_creates_and_cannot_create_for_another(uow_factory, build: Builder):
    mine, other = await build.generator(), await build.generator()
    created = await _create(uow_factory, as_generator(mine))
    assert created.generator_id == mine.id
    with pytest.raises(PermissionDenied) as raised:
        await _create(uow_factory, as_generator(mine), owner=other)
    assert raised.value.reason == "NOT_TEMPLATE_OWNER"


async def test_agents_may_not_touch_templates(uow_factory, build: Builder):
    agent = await build.agent()
    system = await _create(uow_factory)
    with pytest.raises(PermissionDenied):
        await _create(uow_factory, as_agent(agent))
    with pytest.raises(PermissionDenied):
        await templates.get_template(uow_factory(), as_agent(agent), system.id)


async def test_create_with_a_request_id_is_idempotent(uow_factory, count_rows: RowCounter):
    request_id = "2f1c7a52-4a8b-4c2e-9d0e-5b7f3c1a9e01"
    first = await _create(uow_factory, name="once", request_id=request_id)
    rows = await count_rows()
    again = await _create(uow_factory, name="once", request_id=request_id)
    assert again == first and await count_rows() == rows


# Visibility ---------------------------------------------------------------------------------------


async def test_generators_read_their_own_and_system_templates_only(uow_factory, build: Builder):
    mine, other = await build.generator(), await build.generator()
    system = await _create(uow_factory, name="shared")
    own = await _create(uow_factory, name="own", owner=mine)
    foreign = await _create(uow_factory, name="foreign", owner=other)
    me = as_generator(mine)

    assert (await templates.get_template(uow_factory(), me, system.id)).id == system.id
    assert (await templates.get_template(uow_factory(), me, own.id)).id == own.id
    with pytest.raises(PermissionDenied):
        await templates.get_template(uow_factory(), me, foreign.id)

    listed = await templates.list_templates(uow_factory(), me, page_size=0, page_token="")
    assert [t.name for t in listed.items] == ["own", "shared"]
    only_mine = await templates.list_templates(
        uow_factory(), me, page_size=0, page_token="", generator_id=mine.id
    )
    assert [t.name for t in only_mine.items] == ["own"]
    with pytest.raises(PermissionDenied):
        await templates.list_templates(uow_factory(), me, page_size=0, page_token="", generator_id=other.id)

    everything = await templates.list_templates(uow_factory(), ADMIN, page_size=0, page_token="")
    assert [t.name for t in everything.items] == ["foreign", "own", "shared"]
    by_name = await templates.list_templates(uow_factory(), ADMIN, page_size=0, page_token="", name="own")
    assert [t.id for t in by_name.items] == [own.id]


async def test_a_generator_reads_but_cannot_change_a_system_template(uow_factory, build: Builder):
    generator = await build.generator()
    system = await _create(uow_factory)
    with pytest.raises(PermissionDenied) as raised:
        await templates.update_template(
            uow_factory(), as_generator(generator), system.id, {"description": "x"}
        )
    assert raised.value.reason == "NOT_TEMPLATE_OWNER"
    with pytest.raises(PermissionDenied):
        await templates.delete_template(uow_factory(), as_generator(generator), system.id)


async def test_listing_pages_through_every_template(uow_factory):
    names = sorted(f"page-{i:02d}" for i in range(7))
    for name in names:
        await _create(uow_factory, name=name)
    seen: list[str] = []
    token = ""
    while True:
        page = await templates.list_templates(uow_factory(), ADMIN, page_size=3, page_token=token)
        seen += [t.name for t in page.items]
        token = page.next_page_token
        if not token:
            break
    assert seen == names


# Versions -------------------------------------------------------------------------------------------


async def test_an_update_adds_a_version_and_keeps_the_old_one(uow_factory, count_rows: RowCounter):
    created = await _create(uow_factory, labels={"env": "prod"})
    updated = await templates.update_template(
        uow_factory(), ADMIN, created.id, {"content": CONTENT + "  extra: x\n", "labels": {}}
    )

    assert (updated.id, updated.version, updated.latest_version) == (created.id, 2, 2)
    assert updated.description == created.description and dict(updated.labels) == {}
    old = await templates.get_template(uow_factory(), ADMIN, created.id, 1)
    assert (old.content, old.version, old.latest_version, dict(old.labels)) == (
        CONTENT,
        1,
        2,
        {"env": "prod"},
    )
    versions = await templates.list_template_versions(
        uow_factory(), ADMIN, created.id, page_size=0, page_token=""
    )
    assert [t.version for t in versions.items] == [2, 1]

    rows = await count_rows()
    unchanged = await templates.update_template(uow_factory(), ADMIN, created.id, {})
    assert unchanged.version == 2 and await count_rows() == rows


async def test_an_update_with_a_broken_schema_writes_nothing(uow_factory, count_rows: RowCounter):
    created = await _create(uow_factory)
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await templates.update_template(uow_factory(), ADMIN, created.id, {"parameters_schema": {"type": 7}})
    assert raised.value.field_violations[0].field.startswith("template.parameters_schema")
    assert await count_rows() == before
    with pytest.raises(InvalidArgument) as raised:
        await templates.update_template(uow_factory(), ADMIN, created.id, {"name": "renamed"})
    assert raised.value.field_violations[0].field == "update_mask"


async def test_a_version_that_does_not_exist_is_not_found(uow_factory):
    created = await _create(uow_factory)
    with pytest.raises(NotFound):
        await templates.get_template(uow_factory(), ADMIN, created.id, 3)
    with pytest.raises(InvalidArgument):
        await templates.get_template(uow_factory(), ADMIN, created.id, -1)


async def test_a_deleted_template_cannot_change_or_be_instantiated(uow_factory, build: Builder):
    created = await _create(uow_factory)
    stack = await build.stack()
    rendered = await _instantiate(uow_factory, stack, created, {"name": "before"})
    deleted = await templates.delete_template(uow_factory(), ADMIN, created.id)
    assert deleted.deleted_at is not None

    with pytest.raises(FailedPrecondition) as raised:
        await _instantiate(uow_factory, stack, created, {"name": "after"})
    assert raised.value.reason == "TEMPLATE_DELETED"
    with pytest.raises(FailedPrecondition):
        await templates.update_template(uow_factory(), ADMIN, created.id, {"description": "x"})
    assert (await deployment_objects.get_deployment_object(uow_factory(), ADMIN, rendered.id)).provenance
    listed = await templates.list_templates(uow_factory(), ADMIN, page_size=0, page_token="")
    assert listed.items == ()
    shown = await templates.list_templates(
        uow_factory(), ADMIN, page_size=0, page_token="", show_deleted=True
    )
    assert [t.id for t in shown.items] == [created.id]


# Instantiating --------------------------------------------------------------------------------------


async def test_instantiating_renders_with_defaults_and_records_provenance(uow_factory, build: Builder):
    template = await _create(uow_factory)
    stack = await build.stack()

    created = await _instantiate(
        uow_factory, stack, template, {"name": "web", "ports": [{"name": "http", "number": 8080}]}
    )

    assert created.sequence_id == 1
    assert created.yaml_content == (
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\n  namespace: demo\n"
        'data:\n  replicas: "2"\n  port-http: "8080"\n'
    )
    assert [str(r.key) for r in created.resources] == ["core/v1/ConfigMap/demo/web"]
    read = await deployment_objects.get_deployment_object(uow_factory(), ADMIN, created.id)
    assert read == created
    assert read.provenance is not None
    assert (read.provenance.template_id, read.provenance.template_version) == (template.id, 1)
    assert read.provenance.parameters == {
        "name": "web",
        "namespace": "demo",
        "replicas": 2,
        "ports": [{"name": "http", "number": 8080}],
    }
    assert (await stacks.get_stack(uow_factory(), ADMIN, stack.id)).desired == created.ref


async def test_an_old_version_stays_instantiable(uow_factory, build: Builder):
    template = await _create(uow_factory)
    await templates.update_template(uow_factory(), ADMIN, template.id, {"content": "not: {{ kubernetes }}\n"})
    stack = await build.stack()

    old = await _instantiate(uow_factory, stack, template, {"name": "old"}, version=1)

    assert old.provenance is not None and old.provenance.template_version == 1
    assert "name: old" in old.yaml_content
    with pytest.raises(NotFound):
        await _instantiate(uow_factory, stack, template, {"name": "x"}, version=5)


async def test_a_dry_run_returns_the_rendering_and_writes_nothing(
    uow_factory, build: Builder, count_rows: RowCounter
):
    template = await _create(uow_factory)
    stack = await build.stack()
    before = await count_rows()

    preview = await _instantiate(uow_factory, stack, template, {"name": "preview"}, dry_run=True)

    assert (preview.id, preview.sequence_id) == ("", 0)
    assert "name: preview" in preview.yaml_content and len(preview.checksum) == 64
    assert preview.provenance is not None and preview.provenance.parameters["replicas"] == 2
    assert await count_rows() == before


async def test_bad_parameters_report_every_violation_with_its_path_and_write_nothing(
    uow_factory, build: Builder, count_rows: RowCounter
):
    template = await _create(uow_factory)
    stack = await build.stack()
    before = await count_rows()

    with pytest.raises(InvalidArgument) as raised:
        await _instantiate(
            uow_factory, stack, template, {"replicas": 100, "ports": [{"name": "http", "number": "80"}]}
        )

    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("parameters", "INVALID_PARAMETER"),
        ("parameters.ports[0].number", "INVALID_PARAMETER"),
        ("parameters.replicas", "INVALID_PARAMETER"),
    ]
    assert "'name' is a required property" in raised.value.field_violations[0].description
    assert await count_rows() == before


async def test_a_stack_missing_the_templates_labels_is_a_failed_precondition(
    uow_factory, build: Builder, count_rows: RowCounter
):
    template = await _create(uow_factory, labels={"env": "prod", "tier": "web"}, annotations={"team": "a"})
    stack = await build.stack(labels={"env": "prod", "tier": "db"})
    before = await count_rows()

    with pytest.raises(FailedPrecondition) as raised:
        await _instantiate(uow_factory, stack, template, {"name": "web"})

    error = raised.value
    assert error.reason == "TEMPLATE_LABELS_MISSING"
    assert error.metadata["missing_labels"] == "tier=web"
    assert error.metadata["missing_annotations"] == "team=a"
    assert "label tier=web" in error.message and "annotation team=a" in error.message
    assert await count_rows() == before

    fitting = await build.stack(
        labels={"env": "prod", "tier": "web", "extra": "ok"}, annotations={"team": "a"}
    )
    assert (await _instantiate(uow_factory, fitting, template, {"name": "web"})).sequence_id == 1


async def test_output_that_is_not_a_valid_deployment_object_is_refused(
    uow_factory, build: Builder, count_rows: RowCounter
):
    stack = await build.stack()
    broken = await _create(
        uow_factory, content="apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"
    )
    undefined = await _create(uow_factory, content="{{ nowhere }}\n", schema=None)
    before = await count_rows()

    with pytest.raises(InvalidArgument) as raised:
        await _instantiate(uow_factory, stack, broken, {"name": "Upper_Case"})
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("rendered_yaml", "INVALID_MANIFEST")
    ]
    with pytest.raises(InvalidArgument) as raised:
        await _instantiate(uow_factory, stack, undefined, {})
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("rendered_yaml", "TEMPLATE_RENDER_FAILED")
    ]
    assert "nowhere" in raised.value.field_violations[0].description
    assert await count_rows() == before


async def test_a_generator_instantiates_readable_templates_into_its_own_stacks_only(
    uow_factory, build: Builder
):
    mine, other = await build.generator(), await build.generator()
    me = as_generator(mine)
    system = await _create(uow_factory)
    foreign = await _create(uow_factory, owner=other)
    own_stack, other_stack = await build.stack(mine), await build.stack(other)

    created = await _instantiate(uow_factory, own_stack, system, {"name": "ok"}, me)
    assert created.stack_id == own_stack.id
    with pytest.raises(PermissionDenied):
        await _instantiate(uow_factory, other_stack, system, {"name": "no"}, me)
    with pytest.raises(PermissionDenied):
        await _instantiate(uow_factory, own_stack, foreign, {"name": "no"}, me)


async def test_a_deleted_stack_accepts_no_instantiation(uow_factory, build: Builder):
    template = await _create(uow_factory)
    stack = await build.stack()
    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)
    with pytest.raises(FailedPrecondition) as raised:
        await _instantiate(uow_factory, stack, template, {"name": "web"})
    assert raised.value.reason == "STACK_DELETED"


async def test_instantiating_with_a_request_id_is_idempotent(
    uow_factory, build: Builder, count_rows: RowCounter
):
    template = await _create(uow_factory)
    stack = await build.stack()
    request_id = "6c0b3f8e-2d1a-4f5b-8e9c-7a6d5c4b3a21"
    first = await _instantiate(uow_factory, stack, template, {"name": "web"}, request_id=request_id)
    rows = await count_rows()
    again = await _instantiate(uow_factory, stack, template, {"name": "web"}, request_id=request_id)
    assert again == first and await count_rows() == rows
    with pytest.raises(AlreadyExists):
        await _instantiate(uow_factory, stack, template, {"name": "other"}, request_id=request_id)


async def test_concurrent_updates_get_distinct_versions_and_lose_no_change(uow_factory):
    created = await _create(uow_factory)
    changes = [{"description": "described"}, {"labels": {"env": "prod"}}, {"annotations": {"team": "a"}}]

    updated = await asyncio.gather(
        *(templates.update_template(uow_factory(), ADMIN, created.id, change) for change in changes)
    )

    assert sorted(t.version for t in updated) == [2, 3, 4]
    newest = await templates.get_template(uow_factory(), ADMIN, created.id)
    assert (newest.version, newest.description, dict(newest.labels), dict(newest.annotations)) == (
        4,
        "described",
        {"env": "prod"},
        {"team": "a"},
    )


async def test_an_instantiation_reaches_agents_like_any_new_version(uow_factory, build: Builder):
    template = await _create(uow_factory)
    stack = await build.stack()
    uow = uow_factory()

    created = await templates.instantiate_template(
        uow,
        ADMIN,
        stack_id=stack.id,
        template_id=template.id,
        template_version=0,
        parameters={"name": "web"},
        dry_run=False,
        request_id=None,
    )

    assert created.sequence_id == 1
    assert [c for c in uow.committed_changes if isinstance(c, StackChanged)] == [StackChanged(stack.id)]


async def test_template_changes_and_instantiations_are_events(uow_factory, build: Builder):
    template = await _create(uow_factory, labels={"team": "shop"})
    stack = await build.stack(labels={"team": "shop"})
    await templates.update_template(uow_factory(), ADMIN, template.id, {"description": "v2"})
    await _instantiate(uow_factory, stack, template, {"name": "web"}, dry_run=True)
    created = await _instantiate(uow_factory, stack, template, {"name": "web"})
    await templates.delete_template(uow_factory(), ADMIN, template.id)

    async with uow_factory() as uow:
        found = await uow.events.list_page(after=0, limit=100)
    mine = [e for e in found if e.template_id == template.id]
    assert [(e.type.value, e.payload.get("version") or e.payload.get("template_version")) for e in mine] == [
        ("template.created", 1),
        ("template.updated", 2),
        ("deployment_object.created", 2),  # the dry run wrote no event
        ("template.deleted", 2),
    ]
    assert mine[1].payload["changed_fields"] == ["description"]
    assert mine[2].deployment_object_id == created.id and mine[2].stack_id == stack.id
    assert all(dict(e.labels) == {"team": "shop"} for e in mine)
