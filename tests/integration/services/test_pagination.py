"""Pagination (AIP-158) on both backends: every row exactly once in a stable order, full pages even when
filtering in Python, and tokens that only continue the query they came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from broker.domain.model import ADMIN, Page
from broker.services import agents, deployment_objects, generators, paging, stacks, targets
from brokkr_common.errors import InvalidArgument
from tests.integration.services.builders import Builder


async def _walk(list_page: Callable[[str], Awaitable[Page]]) -> list[list]:
    pages, token = [], ""
    while True:
        page = await list_page(token)
        pages.append(list(page.items))
        token = page.next_page_token
        if not token:
            return pages


async def test_stacks_page_by_name_each_exactly_once(uow_factory, build: Builder):
    names = [f"stack-{i:02d}" for i in range(11)]
    for name in reversed(names):
        await build.stack(name=name)

    pages = await _walk(lambda token: stacks.list_stacks(uow_factory(), ADMIN, page_size=4, page_token=token))

    assert [len(page) for page in pages] == [4, 4, 3]
    assert [stack.name for page in pages for stack in page] == names


async def test_agents_generators_and_deployment_objects_page_in_their_documented_order(
    uow_factory, build: Builder
):
    for name, cluster in (("b", "x"), ("a", "z"), ("a", "y"), ("c", "x"), ("a", "x")):
        await build.agent(name, cluster_name=cluster)
    for name in ("g3", "g1", "g2"):
        await build.generator(name)
    stack = await build.stack()
    for _ in range(5):
        await build.submit(stack)

    agent_pages = await _walk(lambda t: agents.list_agents(uow_factory(), ADMIN, page_size=2, page_token=t))
    generator_pages = await _walk(
        lambda t: generators.list_generators(
            uow_factory(), ADMIN, page_size=2, page_token=t, show_deleted=False
        )
    )
    version_pages = await _walk(
        lambda t: deployment_objects.list_deployment_objects(
            uow_factory(), ADMIN, stack_id=stack.id, page_size=2, page_token=t
        )
    )

    assert [(a.name, a.cluster_name) for page in agent_pages for a in page] == [
        ("a", "x"),
        ("a", "y"),
        ("a", "z"),
        ("b", "x"),
        ("c", "x"),
    ]
    assert [g.name for page in generator_pages for g in page] == ["g1", "g2", "g3"]
    assert [d.sequence_id for page in version_pages for d in page] == [5, 4, 3, 2, 1]


async def test_targets_page_through_every_one(uow_factory, build: Builder):
    stack = await build.stack()
    agent_ids = []
    for _ in range(7):
        agent = await build.agent()
        await build.target(agent, stack)
        agent_ids.append(agent.id)

    pages = await _walk(
        lambda t: targets.list_targets(uow_factory(), ADMIN, stack_id=stack.id, page_size=3, page_token=t)
    )

    assert [target.agent_id for page in pages for target in page] == sorted(agent_ids)


async def test_rows_added_between_pages_do_not_repeat_or_shift_rows(uow_factory, build: Builder):
    for name in ("b", "d", "f"):
        await build.stack(name=name)
    first = await stacks.list_stacks(uow_factory(), ADMIN, page_size=2, page_token="")
    await build.stack(name="a")
    await build.stack(name="e")
    rest = await stacks.list_stacks(uow_factory(), ADMIN, page_size=2, page_token=first.next_page_token)
    assert [s.name for s in first.items] == ["b", "d"]
    assert [s.name for s in rest.items] == ["e", "f"]


async def test_filtering_in_python_still_fills_every_page(uow_factory, build: Builder, monkeypatch):
    monkeypatch.setattr(paging, "SCAN_BATCH", 3)  # read few rows per query, so filtering spans queries
    for i in range(12):
        await build.stack(name=f"s-{i:02d}", labels={"tier": "db" if i % 3 else "web"})

    pages = await _walk(
        lambda t: stacks.list_stacks(
            uow_factory(), ADMIN, page_size=3, page_token=t, label_selector="tier!=db"
        )
    )

    assert [[s.name for s in page] for page in pages] == [["s-00", "s-03", "s-06"], ["s-09"]]


async def test_a_token_only_continues_its_own_query(uow_factory, build: Builder):
    for i in range(3):
        await build.stack(name=f"s-{i}", labels={"env": "prod"})
    first = await stacks.list_stacks(
        uow_factory(), ADMIN, page_size=1, page_token="", label_selector="env=prod"
    )
    # page_size may change between pages (AIP-158); filters may not.
    second = await stacks.list_stacks(
        uow_factory(), ADMIN, page_size=5, page_token=first.next_page_token, label_selector="env=prod"
    )
    assert [s.name for s in second.items] == ["s-1", "s-2"]
    for bad in (
        dict(page_token=first.next_page_token, label_selector="env=dev"),
        dict(page_token=first.next_page_token, show_deleted=True),
        dict(page_token="garbage!"),
    ):
        with pytest.raises(InvalidArgument) as raised:
            await stacks.list_stacks(uow_factory(), ADMIN, page_size=1, **bad)
        assert raised.value.reason == "INVALID_PAGE_TOKEN"


async def test_a_token_from_another_list_is_refused(uow_factory, build: Builder):
    stack = await build.stack()
    for _ in range(3):
        await build.submit(stack)
    versions = await deployment_objects.list_deployment_objects(
        uow_factory(), ADMIN, stack_id=stack.id, page_size=1, page_token=""
    )
    with pytest.raises(InvalidArgument) as raised:
        await stacks.list_stacks(uow_factory(), ADMIN, page_size=1, page_token=versions.next_page_token)
    assert raised.value.field_violations[0].field == "page_token"


async def test_page_sizes_are_checked_and_capped(uow_factory, build: Builder):
    await build.stack()
    with pytest.raises(InvalidArgument) as raised:
        await stacks.list_stacks(uow_factory(), ADMIN, page_size=-1, page_token="")
    assert raised.value.field_violations[0].field == "page_size"
    huge = await stacks.list_stacks(uow_factory(), ADMIN, page_size=1_000_000, page_token="")
    assert len(huge.items) == 1 and huge.next_page_token == ""
