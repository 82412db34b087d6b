"""The event log on SQLite and PostgreSQL: written with the change it describes (and only then),
listed with filters and pages, and watched with no gap and no duplicate, concurrent writers included."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.changes import EventsAppended
from broker.domain.events import EventType
from broker.domain.model import ADMIN, AgentStatus, Principal, Role
from broker.domain.ports import UnitOfWorkFactory
from broker.services import agents, deployment_objects, events, stacks
from broker.services.eventing import emit
from brokkr_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied
from tests.integration.services.builders import Builder, RowCounter, as_generator, configmap, unique


async def all_events(uow_factory: UnitOfWorkFactory) -> list:
    uow = uow_factory()
    async with uow:
        return await uow.events.list_page(after=0, limit=10_000)


async def test_admin_changes_write_their_events_in_the_same_transaction(build: Builder, uow_factory):
    generator = await build.generator()
    owner = as_generator(generator)
    agent = await build.agent(labels={"env": "prod"}, active=False)
    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"status": AgentStatus.ACTIVE})
    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"labels": {"env": "dev"}})  # no event
    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"status": AgentStatus.INACTIVE})
    stack = await stacks.create_stack(
        uow_factory(),
        owner,
        name=unique("stack"),
        description="",
        generator_id=None,
        labels={"app": "web"},
        annotations={},
        request_id=None,
    )
    await stacks.update_stack(uow_factory(), owner, stack.id, {"description": "new"})
    deployment_object = await build.submit(stack)
    await stacks.delete_stack(uow_factory(), owner, stack.id)
    await agents.delete_agent(uow_factory(), ADMIN, agent.id)

    written = await all_events(uow_factory)

    assert [event.type for event in written] == [
        EventType.AGENT_REGISTERED,
        EventType.AGENT_ACTIVATED,
        EventType.AGENT_DEACTIVATED,
        EventType.STACK_CREATED,
        EventType.STACK_UPDATED,
        EventType.DEPLOYMENT_OBJECT_CREATED,
        EventType.STACK_DELETED,
        EventType.AGENT_DEREGISTERED,
    ]
    ids = [int(event.id) for event in written]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    registered, activated, deactivated, created, updated, submitted, deleted, deregistered = written
    assert (registered.actor_role, registered.actor_id, registered.agent_id) == ("admin", None, agent.id)
    assert registered.labels == {"env": "prod"}
    assert registered.payload["status"] == "INACTIVE"
    assert activated.payload["status"] == "ACTIVE"
    assert deactivated.labels == {"env": "dev"}
    assert (created.actor_role, created.actor_id, created.stack_id) == ("generator", generator.id, stack.id)
    assert created.labels == {"app": "web"}
    assert updated.payload["changed_fields"] == ["description"]
    assert (submitted.stack_id, submitted.deployment_object_id) == (stack.id, deployment_object.id)
    assert submitted.payload == {"sequence_id": 1, "checksum": deployment_object.checksum}
    assert deleted.deployment_object_id is not None and deleted.payload["deletion_marker_id"] == (
        deleted.deployment_object_id
    )
    assert deregistered.agent_id == agent.id


async def test_a_refused_change_writes_no_event(build: Builder, uow_factory, count_rows: RowCounter):
    stack = await build.stack(name=unique("taken"))
    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)
    taken = await build.stack()
    before = await count_rows()

    with pytest.raises(FailedPrecondition):
        await stacks.delete_stack(uow_factory(), ADMIN, stack.id)
    with pytest.raises(FailedPrecondition):
        await deployment_objects.create_deployment_object(
            uow_factory(), ADMIN, stack_id=stack.id, yaml_content=configmap("cm"), request_id=None
        )
    with pytest.raises(AlreadyExists):
        await build.stack(name=taken.name)  # fails at INSERT, before the event

    assert await count_rows() == before


async def test_an_event_emitted_in_a_transaction_that_rolls_back_is_gone(build: Builder, uow_factory):
    stack = await build.stack()
    uow = uow_factory()
    emitted = []

    async def failing_change() -> None:
        async with uow:
            emitted.append(await emit(uow, EventType.STACK_UPDATED, actor=ADMIN, stack_id=stack.id))
            raise RuntimeError("the change failed after its event was written")

    with pytest.raises(RuntimeError):
        await failing_change()

    assert emitted[0].id  # it had an id inside the transaction

    assert [event.type for event in await all_events(uow_factory)] == [EventType.STACK_CREATED]
    assert uow.committed_changes == ()


async def test_emitting_announces_appended_events_on_commit(build: Builder, uow_factory):
    stack = await build.stack()
    uow = uow_factory()
    async with uow:
        await emit(uow, EventType.STACK_UPDATED, actor=None, stack_id=stack.id, payload={"why": "test"})
        await uow.commit()

    assert EventsAppended() in uow.committed_changes
    last = (await all_events(uow_factory))[-1]
    assert (last.actor_role, last.actor_id, last.payload) == ("system", None, {"why": "test"})


async def _list(uow_factory, **filters):
    """Every page of a ListEvents query (page size 2), as event types."""
    found, token = [], ""
    while True:
        page = await events.list_events(uow_factory, ADMIN, page_size=2, page_token=token, **filters)
        found.extend(page.items)
        if not (token := page.next_page_token):
            return found


async def test_list_events_filters_by_type_pattern_subject_and_time_across_pages(build: Builder, uow_factory):
    agent = await build.agent()
    first, second = await build.stack(), await build.stack()
    await build.submit(first)
    await build.submit(first)
    await build.submit(second)
    everything = await all_events(uow_factory)

    assert [e.id for e in await _list(uow_factory)] == [e.id for e in everything]
    assert [e.type for e in await _list(uow_factory, types=["stack.*"])] == [EventType.STACK_CREATED] * 2
    assert [e.type for e in await _list(uow_factory, types=["agent.registered", "deployment_object.*"])] == [
        EventType.AGENT_REGISTERED,
        *[EventType.DEPLOYMENT_OBJECT_CREATED] * 3,
    ]
    assert [e.type for e in await _list(uow_factory, stack_id=first.id)] == [
        EventType.STACK_CREATED,
        EventType.DEPLOYMENT_OBJECT_CREATED,
        EventType.DEPLOYMENT_OBJECT_CREATED,
    ]
    assert [e.agent_id for e in await _list(uow_factory, agent_id=agent.id)] == [agent.id]
    later = everything[-1].time + timedelta(seconds=1)
    assert await _list(uow_factory, start_time=later) == []
    assert len(await _list(uow_factory, end_time=later)) == len(everything)
    assert len(await _list(uow_factory, types=["*"], start_time=everything[0].time)) == len(everything)


async def test_list_events_refuses_bad_filters_and_other_roles(uow_factory):
    now = datetime.now(UTC)
    with pytest.raises(InvalidArgument) as raised:
        await events.list_events(
            uow_factory,
            ADMIN,
            page_size=-1,
            page_token="",
            types=["stack.*", "stacks.*", "deploy*"],
            stack_id="not-a-uuid",
            start_time=now,
            end_time=now,
        )
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("types[1]", "INVALID_EVENT_TYPE_PATTERN"),
        ("types[2]", "INVALID_EVENT_TYPE_PATTERN"),
        ("stack_id", "INVALID_UUID"),
        ("end_time", "INVALID_TIME_RANGE"),
        ("page_size", "INVALID_PAGE_SIZE"),
    ]
    page = await events.list_events(uow_factory, ADMIN, page_size=1, page_token="", types=["stack.*"])
    assert page.next_page_token == ""
    generator = Principal(Role.GENERATOR, "00000000-0000-4000-8000-000000000001", "gen")
    with pytest.raises(PermissionDenied):
        await events.list_events(uow_factory, generator, page_size=0, page_token="")


async def test_a_page_token_only_continues_its_own_query(build: Builder, uow_factory):
    for _ in range(3):
        await build.stack()
    page = await events.list_events(uow_factory, ADMIN, page_size=1, page_token="", types=["stack.*"])
    with pytest.raises(InvalidArgument) as raised:
        await events.list_events(
            uow_factory, ADMIN, page_size=1, page_token=page.next_page_token, types=["agent.*"]
        )
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


async def _take(stream, count: int, timeout: float = 10) -> list:
    taken = []
    async with asyncio.timeout(timeout):
        async for event in stream:
            taken.append(event)
            if len(taken) == count:
                return taken
    return taken


async def test_watch_sends_the_backlog_then_live_events_and_resumes_without_gap_or_duplicate(
    build: Builder, uow_factory
):
    signal = events.EventSignal()
    first = await build.stack()
    await build.submit(first)
    watch = await events.watch_events(uow_factory, ADMIN, signal, after_event_id="0", poll_seconds=30)

    backlog = await _take(watch, 2)
    assert [e.type for e in backlog] == [EventType.STACK_CREATED, EventType.DEPLOYMENT_OBJECT_CREATED]

    second = await build.stack()
    signal.notify()  # what the composition root does when the commit is announced
    [live] = await _take(watch, 1, timeout=5)  # far below the 30 s poll: the wake-up did it
    assert (live.type, live.stack_id) == (EventType.STACK_CREATED, second.id)
    await watch.aclose()

    await build.submit(second)  # written while nobody watched
    resumed = await events.watch_events(uow_factory, ADMIN, signal, after_event_id=live.id, poll_seconds=30)
    [missed] = await _take(resumed, 1)
    assert missed.type is EventType.DEPLOYMENT_OBJECT_CREATED
    assert int(missed.id) > int(live.id)
    await resumed.aclose()


async def test_watch_without_a_cursor_starts_now_filters_types_and_ends_when_closed(
    build: Builder, uow_factory
):
    signal = events.EventSignal()
    await build.stack()  # before the watch: not sent
    watch = await events.watch_events(uow_factory, ADMIN, signal, types=["agent.*"], poll_seconds=0.05)
    await build.stack()  # not an agent event
    agent = await build.agent()  # found by the poll, no wake-up needed

    [event] = await _take(watch, 1)
    assert (event.type, event.agent_id) == (EventType.AGENT_REGISTERED, agent.id)

    signal.close()
    async with asyncio.timeout(5):
        assert [e async for e in watch] == []


async def test_watch_refuses_bad_cursors_and_patterns_before_streaming(uow_factory):
    signal = events.EventSignal()
    with pytest.raises(InvalidArgument) as raised:
        await events.watch_events(uow_factory, ADMIN, signal, types=["nope"], after_event_id="-1")
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("types[0]", "INVALID_EVENT_TYPE_PATTERN"),
        ("after_event_id", "INVALID_EVENT_ID"),
    ]


async def test_concurrent_writers_never_make_a_watcher_miss_or_repeat_an_event(build: Builder, uow_factory):
    """Many transactions append events at once while a watcher follows (polling only, so it reads
    between commits at arbitrary moments): it must see every event exactly once, in id order."""
    signal = events.EventSignal()
    watch = await events.watch_events(uow_factory, ADMIN, signal, poll_seconds=0.01)
    writers = 8
    per_writer = 6

    async def writer() -> None:
        for _ in range(per_writer):
            stack = await build.stack()
            uow = uow_factory()
            async with uow:
                # Take the id, then make the commit slow, so later ids would commit first without
                # the append lock (on PostgreSQL).
                await emit(uow, EventType.STACK_UPDATED, actor=ADMIN, stack_id=stack.id)
                await asyncio.sleep(0.01)
                await uow.commit()

    expected = writers * per_writer * 2
    seen_task = asyncio.create_task(_take(watch, expected, timeout=120))
    await asyncio.gather(*(writer() for _ in range(writers)))
    seen = await seen_task
    await watch.aclose()

    stored = await all_events(uow_factory)
    assert len(stored) == expected
    assert [e.id for e in seen] == [e.id for e in stored]


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
async def test_on_postgres_an_append_waits_for_the_previous_event_writer_to_commit(
    build: Builder, uow_factory
):
    """The commit-order guarantee itself: the second appender takes its id only after the first
    transaction has committed, so a higher id is never visible before a lower one. (SQLite has one
    writer at a time, so the question does not arise there.)"""
    stack = await build.stack()
    slow = uow_factory()
    async with slow:
        first = await emit(slow, EventType.STACK_UPDATED, actor=ADMIN, stack_id=stack.id)

        async def second_append():
            uow = uow_factory()
            async with uow:
                event = await emit(uow, EventType.STACK_UPDATED, actor=ADMIN, stack_id=stack.id)
                await uow.commit()
            return event

        second = asyncio.create_task(second_append())
        await asyncio.sleep(0.3)
        assert not second.done()  # blocked behind the open transaction's lock
        await slow.commit()
    later = await asyncio.wait_for(second, 10)
    assert int(later.id) > int(first.id)
    assert [e.id for e in await all_events(uow_factory)][-2:] == [first.id, later.id]
