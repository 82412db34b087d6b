"""Generators on both backends: unique live names, updates, and deletion rules."""

from __future__ import annotations

import pytest

from broker.domain.model import ADMIN
from broker.services import generators, stacks
from brokkr_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.services.builders import Builder, RowCounter, as_generator


async def test_create_then_read_back(uow_factory):
    created = await generators.create_generator(
        uow_factory(), ADMIN, name="team-a", description="the A team", request_id=None
    )
    assert created.key is not None and created.key.startswith("brokkr_")
    assert await generators.get_generator(uow_factory(), ADMIN, created.resource.id) == created.resource


async def test_invalid_generators_are_refused_whole_and_nothing_is_written(
    uow_factory, count_rows: RowCounter
):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await generators.create_generator(uow_factory(), ADMIN, name="", description="\x00", request_id=None)
    assert {v.field for v in raised.value.field_violations} == {"generator.name", "generator.description"}
    assert await count_rows() == before


async def test_names_are_unique_among_live_generators(uow_factory, build: Builder):
    first = await build.generator("team-a")
    with pytest.raises(AlreadyExists) as raised:
        await build.generator("team-a")
    assert raised.value.reason == "GENERATOR_ALREADY_EXISTS"
    await generators.delete_generator(uow_factory(), ADMIN, first.id)
    assert (await build.generator("team-a")).id != first.id


async def test_update_renames_and_describes(uow_factory, build: Builder):
    generator = await build.generator("old")
    updated = await generators.update_generator(
        uow_factory(), ADMIN, generator.id, {"name": "new", "description": "renamed"}
    )
    assert (updated.name, updated.description) == ("new", "renamed")
    assert await generators.get_generator(uow_factory(), ADMIN, generator.id) == updated


async def test_a_generator_owning_live_stacks_cannot_be_deleted(uow_factory, build: Builder):
    generator = await build.generator()
    stack = await build.stack(generator)
    with pytest.raises(FailedPrecondition) as raised:
        await generators.delete_generator(uow_factory(), ADMIN, generator.id)
    assert raised.value.reason == "GENERATOR_HAS_STACKS"

    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)
    deleted = await generators.delete_generator(uow_factory(), ADMIN, generator.id)
    assert deleted.deleted_at is not None
    with pytest.raises(FailedPrecondition):
        await generators.update_generator(uow_factory(), ADMIN, generator.id, {"description": "late"})


async def test_a_generator_reads_only_itself(uow_factory, build: Builder):
    mine, other = await build.generator(), await build.generator()
    me = as_generator(mine)
    assert await generators.get_generator(uow_factory(), me, mine.id) == mine
    with pytest.raises(PermissionDenied):
        await generators.get_generator(uow_factory(), me, other.id)
    listed = await generators.list_generators(
        uow_factory(), me, page_size=0, page_token="", show_deleted=False
    )
    assert listed.items == (mine,)
    with pytest.raises(PermissionDenied):
        await generators.rotate_generator_key(uow_factory(), me, other.id)


async def test_admin_gets_not_found_for_a_missing_generator(uow_factory):
    with pytest.raises(NotFound) as raised:
        await generators.get_generator(uow_factory(), ADMIN, "00000000-0000-4000-8000-000000000000")
    assert raised.value.reason == "GENERATOR_NOT_FOUND"
