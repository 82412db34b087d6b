"""Idempotent creates (AIP-155) on both backends, including identical requests racing each other."""

from __future__ import annotations

import asyncio

import pytest

from broker.domain.model import ADMIN
from broker.services import agents, deployment_objects, generators, stacks
from brokkr_common.errors import AlreadyExists
from tests.integration.services.builders import Builder, RowCounter, as_generator, configmap

REQUEST = "6f1c1a1e-4a55-4a6b-9b0e-5c1f0e4d2a10"


def _create_stack(uow_factory, actor=ADMIN, *, name="once", description="", request_id=REQUEST):
    return stacks.create_stack(
        uow_factory(),
        actor,
        name=name,
        description=description,
        generator_id=None,
        labels={"a": "b"},
        annotations={},
        request_id=request_id,
    )


async def test_a_repeated_request_returns_the_first_result_and_writes_nothing(
    uow_factory, count_rows: RowCounter
):
    first = await _create_stack(uow_factory)
    rows = await count_rows()
    again = await _create_stack(uow_factory)
    assert again == first
    assert await count_rows() == rows


async def test_the_same_request_id_with_a_different_request_is_refused(uow_factory):
    await _create_stack(uow_factory)
    with pytest.raises(AlreadyExists) as raised:
        await _create_stack(uow_factory, description="changed")
    assert raised.value.reason == "REQUEST_ID_REUSED"


async def test_request_ids_belong_to_their_caller(uow_factory, build: Builder):
    generator = await build.generator()
    mine = await _create_stack(uow_factory, as_generator(generator), name="mine")
    admins = await _create_stack(uow_factory, name="admins")
    assert mine.id != admins.id


async def test_keys_are_shown_only_the_first_time(uow_factory):
    first = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=REQUEST
    )
    again = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=REQUEST
    )
    assert first.key is not None and again.key is None
    assert again.resource == first.resource

    agent = await agents.create_agent(
        uow_factory(), ADMIN, name="edge", cluster_name="c", labels={}, annotations={}, request_id=REQUEST
    )
    repeat = await agents.create_agent(
        uow_factory(), ADMIN, name="edge", cluster_name="c", labels={}, annotations={}, request_id=REQUEST
    )
    assert (repeat.resource, repeat.key) == (agent.resource, None)


async def test_a_repeated_submission_does_not_make_a_new_version(uow_factory, build: Builder):
    stack = await build.stack()

    def submit():
        return deployment_objects.create_deployment_object(
            uow_factory(), ADMIN, stack_id=stack.id, yaml_content=configmap("a"), request_id=REQUEST
        )

    first = await submit()
    assert await submit() == first
    assert first.sequence_id == 1


async def test_identical_requests_racing_each_other_create_one_stack(uow_factory):
    results = await asyncio.gather(*(_create_stack(uow_factory) for _ in range(5)))
    assert len({stack.id for stack in results}) == 1
    listed = await stacks.list_stacks(uow_factory(), ADMIN, page_size=0, page_token="")
    assert [s.name for s in listed.items] == ["once"]
