"""Deployment objects on both backends: numbering (also under concurrency), content checks, views."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from broker.domain.model import ADMIN
from broker.services import deployment_objects, stacks
from brokkr_common.errors import InvalidArgument, NotFound, PermissionDenied
from tests.integration.services.builders import Builder, RowCounter, as_generator, configmap


async def test_sequence_ids_count_up_from_one_per_stack(build: Builder):
    one, two = await build.stack(), await build.stack()
    assert [(await build.submit(one)).sequence_id for _ in range(3)] == [1, 2, 3]
    assert (await build.submit(two)).sequence_id == 1


async def test_concurrent_submissions_get_distinct_gapless_sequence_ids(uow_factory, build: Builder):
    stack = await build.stack()
    created = await asyncio.gather(
        *(
            deployment_objects.create_deployment_object(
                uow_factory(), ADMIN, stack_id=stack.id, yaml_content=configmap(f"cm-{i}"), request_id=None
            )
            for i in range(12)
        )
    )
    assert sorted(d.sequence_id for d in created) == list(range(1, 13))
    page = await deployment_objects.list_deployment_objects(
        uow_factory(), ADMIN, stack_id=stack.id, page_size=0, page_token=""
    )
    assert [d.sequence_id for d in page.items] == list(range(12, 0, -1))


async def test_a_deployment_object_keeps_its_content_checksum_and_resources(uow_factory, build: Builder):
    stack = await build.stack()
    yaml_content = configmap("first") + "---\n" + configmap("second", namespace="other")
    created = await build.submit(stack, yaml_content)

    read = await deployment_objects.get_deployment_object(uow_factory(), ADMIN, created.id)

    assert read == created
    assert read.checksum == hashlib.sha256(yaml_content.encode()).hexdigest()
    assert [(str(r.key), len(r.content_hash)) for r in read.resources] == [
        ("core/v1/ConfigMap/demo/first", 64),
        ("core/v1/ConfigMap/other/second", 64),
    ]
    assert '"name":"first"' in read.resources[0].manifest_json


async def test_the_newest_deployment_object_is_the_stacks_desired_state(uow_factory, build: Builder):
    stack = await build.stack()
    await build.submit(stack)
    newest = await build.submit(stack)
    assert (await stacks.get_stack(uow_factory(), ADMIN, stack.id)).desired == newest.ref


async def test_invalid_yaml_is_refused_and_nothing_is_written(
    uow_factory, build: Builder, count_rows: RowCounter
):
    stack = await build.stack()
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await deployment_objects.create_deployment_object(
            uow_factory(),
            ADMIN,
            stack_id=stack.id,
            yaml_content="kind: ConfigMap\nmetadata: {}\n",
            request_id=None,
        )
    assert raised.value.field_violations[0].field == "deployment_object.yaml_content"
    assert await count_rows() == before


async def test_content_above_the_configured_size_is_refused(uow_factory, build: Builder):
    stack = await build.stack()
    content = configmap("big", blob="x" * 2000)
    with pytest.raises(InvalidArgument) as raised:
        await deployment_objects.create_deployment_object(
            uow_factory(), ADMIN, stack_id=stack.id, yaml_content=content, request_id=None, max_bytes=1024
        )
    assert raised.value.reason == "DEPLOYMENT_OBJECT_TOO_LARGE"
    created = await deployment_objects.create_deployment_object(
        uow_factory(), ADMIN, stack_id=stack.id, yaml_content=content, request_id=None, max_bytes=4096
    )
    assert created.sequence_id == 1


async def test_lists_leave_out_content_unless_asked(uow_factory, build: Builder):
    stack = await build.stack()
    created = await build.submit(stack)
    basic = await deployment_objects.list_deployment_objects(
        uow_factory(), ADMIN, stack_id=stack.id, page_size=0, page_token=""
    )
    full = await deployment_objects.list_deployment_objects(
        uow_factory(), ADMIN, stack_id=stack.id, page_size=0, page_token="", include_content=True
    )
    assert (basic.items[0].yaml_content, basic.items[0].resources, basic.items[0].checksum) == (
        "",
        (),
        created.checksum,
    )
    assert full.items == (created,)


async def test_only_the_owner_submits_and_outsiders_cannot_tell_what_exists(uow_factory, build: Builder):
    owner, stranger = await build.generator(), await build.generator()
    stack = await build.stack(owner)
    created = await deployment_objects.create_deployment_object(
        uow_factory(), as_generator(owner), stack_id=stack.id, yaml_content=configmap("a"), request_id=None
    )
    with pytest.raises(PermissionDenied):
        await deployment_objects.create_deployment_object(
            uow_factory(),
            as_generator(stranger),
            stack_id=stack.id,
            yaml_content=configmap("b"),
            request_id=None,
        )
    missing = "00000000-0000-4000-8000-000000000000"
    for ident in (created.id, missing):
        with pytest.raises(PermissionDenied):
            await deployment_objects.get_deployment_object(uow_factory(), as_generator(stranger), ident)
    with pytest.raises(NotFound) as raised:
        await deployment_objects.get_deployment_object(uow_factory(), ADMIN, missing)
    assert raised.value.reason == "DEPLOYMENT_OBJECT_NOT_FOUND"
