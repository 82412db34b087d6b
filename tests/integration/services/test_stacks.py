"""Stacks on both backends: validation, live-name uniqueness, ownership, soft deletion with its marker."""

from __future__ import annotations

from datetime import UTC

import pytest

from broker.domain.changes import EventsAppended, StackChanged
from broker.domain.model import ADMIN
from broker.services import deployment_objects, generators, stacks
from brokkr_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.services.builders import Builder, RowCounter, as_generator, configmap


async def test_a_created_stack_reads_back_with_utc_times_and_no_desired_state(uow_factory, build: Builder):
    owner = await build.generator()
    created = await build.stack(owner, name="web", labels={"env": "prod"}, annotations={"team": "a"})

    read = await stacks.get_stack(uow_factory(), ADMIN, created.id)

    assert read == created
    assert (read.name, read.generator_id, dict(read.labels), dict(read.annotations)) == (
        "web",
        owner.id,
        {"env": "prod"},
        {"team": "a"},
    )
    assert read.created_at.tzinfo is UTC and read.desired is None


async def test_every_violation_is_reported_at_once_and_nothing_is_written(
    uow_factory, count_rows: RowCounter
):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await stacks.create_stack(
            uow_factory(),
            ADMIN,
            name="Not A Label",
            description="x" * 2000,
            generator_id="nope",
            labels={"bad key!": "v"},
            annotations={"/x": "y"},
            request_id="not-a-uuid",
        )
    fields = {violation.field.split("[")[0] for violation in raised.value.field_violations}
    assert fields == {
        "stack.name",
        "stack.description",
        "stack.generator_id",
        "stack.labels",
        "stack.annotations",
        "request_id",
    }
    assert await count_rows() == before


async def test_names_are_unique_among_live_stacks_only(uow_factory, build: Builder):
    first = await build.stack(name="app")
    with pytest.raises(AlreadyExists) as raised:
        await build.stack(name="app")
    assert raised.value.reason == "STACK_ALREADY_EXISTS"

    await stacks.delete_stack(uow_factory(), ADMIN, first.id)
    again = await build.stack(name="app")
    assert again.id != first.id


async def test_renaming_onto_a_live_name_is_refused(uow_factory, build: Builder):
    await build.stack(name="taken")
    mine = await build.stack(name="mine")
    with pytest.raises(AlreadyExists):
        await stacks.update_stack(uow_factory(), ADMIN, mine.id, {"name": "taken"})
    assert (await stacks.get_stack(uow_factory(), ADMIN, mine.id)).name == "mine"


async def test_update_changes_only_the_named_fields_and_replaces_labels(uow_factory, build: Builder):
    stack = await build.stack(labels={"env": "prod", "tier": "web"}, annotations={"a": "1"})
    updated = await stacks.update_stack(uow_factory(), ADMIN, stack.id, {"labels": {"env": "dev"}})

    read = await stacks.get_stack(uow_factory(), ADMIN, stack.id)
    assert read == updated
    assert dict(read.labels) == {"env": "dev"} and dict(read.annotations) == {"a": "1"}
    assert read.updated_at > stack.updated_at and read.name == stack.name


async def test_an_unknown_update_field_is_refused_on_the_update_mask(uow_factory, build: Builder):
    stack = await build.stack()
    with pytest.raises(InvalidArgument) as raised:
        await stacks.update_stack(uow_factory(), ADMIN, stack.id, {"generator_id": "x", "description": "new"})
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("update_mask", "INVALID_UPDATE_MASK")
    ]
    assert (await stacks.get_stack(uow_factory(), ADMIN, stack.id)).description == ""


async def test_deleting_a_stack_appends_a_deletion_marker_and_freezes_it(uow_factory, build: Builder):
    stack = await build.stack()
    earlier = [await build.submit(stack), await build.submit(stack)]

    deleted = await stacks.delete_stack(uow_factory(), ADMIN, stack.id)

    assert deleted.deleted_at is not None
    # Earlier versions stay as they were: deployment objects are immutable history.
    for version in earlier:
        assert await deployment_objects.get_deployment_object(uow_factory(), ADMIN, version.id) == version
    assert (
        deleted.desired is not None
        and deleted.desired.is_deletion_marker
        and deleted.desired.sequence_id == 3
    )
    assert await stacks.get_stack(uow_factory(), ADMIN, stack.id) == deleted
    marker = await deployment_objects.get_deployment_object(uow_factory(), ADMIN, deleted.desired.id)
    assert (marker.yaml_content, marker.resources, marker.is_deletion_marker) == ("", (), True)
    for attempt in (
        deployment_objects.create_deployment_object(
            uow_factory(), ADMIN, stack_id=stack.id, yaml_content=configmap("late"), request_id=None
        ),
        stacks.update_stack(uow_factory(), ADMIN, stack.id, {"description": "late"}),
        stacks.delete_stack(uow_factory(), ADMIN, stack.id),
    ):
        with pytest.raises(FailedPrecondition) as raised:
            await attempt
        assert raised.value.reason == "STACK_DELETED"


async def test_deleted_stacks_are_listed_only_when_asked(uow_factory, build: Builder):
    kept, gone = await build.stack(name="kept"), await build.stack(name="gone")
    await stacks.delete_stack(uow_factory(), ADMIN, gone.id)

    live = await stacks.list_stacks(uow_factory(), ADMIN, page_size=0, page_token="")
    everything = await stacks.list_stacks(uow_factory(), ADMIN, page_size=0, page_token="", show_deleted=True)

    assert [s.id for s in live.items] == [kept.id]
    assert [s.name for s in everything.items] == ["gone", "kept"]


async def test_a_generator_owns_what_it_creates_and_cannot_create_for_another(uow_factory, build: Builder):
    mine, other = await build.generator(), await build.generator()
    created = await stacks.create_stack(
        uow_factory(),
        as_generator(mine),
        name="owned",
        description="",
        generator_id=None,
        labels={},
        annotations={},
        request_id=None,
    )
    assert created.generator_id == mine.id
    with pytest.raises(PermissionDenied):
        await stacks.create_stack(
            uow_factory(),
            as_generator(mine),
            name="theirs",
            description="",
            generator_id=other.id,
            labels={},
            annotations={},
            request_id=None,
        )


async def test_a_stack_needs_a_live_generator(uow_factory, build: Builder):
    generator = await build.generator()
    await generators.delete_generator(uow_factory(), ADMIN, generator.id)
    with pytest.raises(FailedPrecondition):
        await build.stack(generator)
    with pytest.raises(NotFound):
        await stacks.create_stack(
            uow_factory(),
            ADMIN,
            name="orphan",
            description="",
            generator_id="00000000-0000-4000-8000-000000000000",
            labels={},
            annotations={},
            request_id=None,
        )


async def test_label_selectors_filter_lists_including_inequalities(uow_factory, build: Builder):
    await build.stack(name="a", labels={"env": "prod", "tier": "web"})
    await build.stack(name="b", labels={"env": "prod", "tier": "db"})
    await build.stack(name="c", labels={"env": "dev"})
    await build.stack(name="d")

    async def names(selector: str) -> list[str]:
        page = await stacks.list_stacks(
            uow_factory(), ADMIN, page_size=0, page_token="", label_selector=selector
        )
        return [s.name for s in page.items]

    assert await names("env=prod") == ["a", "b"]
    assert await names("env=prod,tier!=web") == ["b"]
    assert await names("env notin (prod)") == ["c", "d"]
    assert await names("!env") == ["d"]
    assert await names("tier in (web,db)") == ["a", "b"]
    with pytest.raises(InvalidArgument) as raised:
        await names("env in (prod")
    assert [v.field for v in raised.value.field_violations] == ["label_selector"]


async def test_writes_record_a_stack_change_only_once_committed(database, build: Builder):
    published = []

    async def on_commit(changes):
        published.extend(changes)

    uow = database.uow_factory(on_commit)
    stack = await build.stack()
    await stacks.update_stack(uow(), ADMIN, stack.id, {"description": "new"})
    with pytest.raises(InvalidArgument):
        await stacks.update_stack(uow(), ADMIN, stack.id, {"name": "Bad Name"})
    assert published == [EventsAppended(), StackChanged(stack.id)]  # stack.updated, then the change
