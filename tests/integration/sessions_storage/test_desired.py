"""What a session must deliver, on both backends: for an agent, the newest version of every live
stack reaching it (loaded with its resources only when asked); for a stack, the ACTIVE agents it
reaches now."""

from __future__ import annotations

import uuid

from broker.domain.model import ADMIN
from broker.services import agents, sessions, stacks
from tests.integration.services.builders import Builder, configmap


async def test_an_agent_should_hold_the_newest_version_of_each_live_stack_reaching_it(
    uow_factory, build: Builder
):
    agent = await build.agent(labels={"env": "prod"})
    labelled = await build.stack(name="labelled", labels={"env": "prod"})
    await build.submit(labelled, configmap("old"))
    newest = await build.submit(labelled, configmap("new") + "---\n" + configmap("more"))
    explicit = await build.stack(name="explicit")
    await build.target(agent, explicit)
    explicit_version = await build.submit(explicit)
    await build.stack(name="empty", labels={"env": "prod"})  # reaches it, nothing to deliver yet
    await build.submit(await build.stack(name="elsewhere", labels={"env": "dev"}))
    deleted = await build.stack(name="deleted", labels={"env": "prod"})
    await build.submit(deleted)
    await stacks.delete_stack(uow_factory(), ADMIN, deleted.id)

    desired = await sessions.desired_for_agent(uow_factory(), agent.id)

    assert desired is not None
    assert [(stack.name, stack.desired and stack.desired.id) for stack in desired] == [
        ("explicit", explicit_version.id),
        ("labelled", newest.id),
    ]
    loaded = await sessions.deployment_objects(uow_factory(), [newest.id, explicit_version.id])
    assert set(loaded) == {newest.id, explicit_version.id}
    resources = loaded[newest.id].resources
    assert [r.key.name for r in resources] == ["new", "more"]
    assert all(r.manifest_json.startswith("{") and len(r.content_hash) == 64 for r in resources)


async def test_inactive_agents_should_hold_nothing_and_deleted_ones_are_gone(uow_factory, build: Builder):
    inactive = await build.agent(labels={"env": "prod"}, active=False)
    deleted = await build.agent(labels={"env": "prod"})
    await build.submit(await build.stack(labels={"env": "prod"}))
    await agents.delete_agent(uow_factory(), ADMIN, deleted.id)

    assert await sessions.desired_for_agent(uow_factory(), inactive.id) == []
    assert await sessions.desired_for_agent(uow_factory(), deleted.id) is None
    assert await sessions.desired_for_agent(uow_factory(), str(uuid.uuid4())) is None


async def test_a_session_starts_from_what_the_agent_should_hold(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    version = await build.submit(await build.stack(labels={"env": "prod"}))

    start = await sessions.start_session(uow_factory(), agent.id)

    assert start.agent.id == agent.id
    assert [(stack.id, stack.desired and stack.desired.id) for stack in start.desired] == [
        (version.stack_id, version.id)
    ]
    assert start.parked == {}


async def test_a_stack_reaches_the_active_agents_it_targets_now(uow_factory, build: Builder):
    reached = await build.agent(labels={"env": "prod"})
    explicit = await build.agent()
    await build.agent(labels={"env": "prod"}, active=False)
    await build.agent(labels={"env": "dev"})
    stack = await build.stack(labels={"env": "prod"})
    await build.target(explicit, stack)
    version = await build.submit(stack)

    reach = await sessions.stack_reach(uow_factory(), stack.id)

    assert reach.stack is not None and reach.stack.id == stack.id
    assert reach.stack.desired is not None and reach.stack.desired.id == version.id
    assert reach.agent_ids == {reached.id, explicit.id}


async def test_a_deleted_stack_reaches_nobody_and_its_newest_version_is_the_deletion_marker(
    uow_factory, build: Builder
):
    await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    await build.submit(stack)
    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)

    reach = await sessions.stack_reach(uow_factory(), stack.id)
    unknown = await sessions.stack_reach(uow_factory(), str(uuid.uuid4()))

    assert reach.stack is not None and reach.stack.desired is not None
    assert reach.stack.desired.is_deletion_marker
    assert reach.agent_ids == frozenset()
    assert (unknown.stack, unknown.agent_ids) == (None, frozenset())
    assert await sessions.deployment_objects(uow_factory(), [str(uuid.uuid4())]) == {}


async def test_read_in_bulk_every_agent_should_hold_what_it_would_read_alone(uow_factory, build: Builder):
    # The sweep reads many agents at once by another route than a connect does; both must agree
    # on every kind of reach: labels, annotations, explicit targets, registrations, status.
    shop = await build.generator(name="shop")
    registered = await build.agent(name="registered", labels={"env": "prod"})
    await build.register(registered, shop)
    unregistered = await build.agent(name="unregistered", labels={"env": "prod"})
    annotated = await build.agent(name="annotated", annotations={"team": "pay"})
    explicit = await build.agent(name="explicit")
    inactive = await build.agent(name="inactive", labels={"env": "prod"}, active=False)
    deleted = await build.agent(name="deleted", labels={"env": "prod"})
    await agents.delete_agent(uow_factory(), ADMIN, deleted.id)

    owned = await build.stack(shop, name="owned", labels={"env": "prod"})
    free = await build.stack(name="free", labels={"env": "prod"})
    paid = await build.stack(name="paid", annotations={"team": "pay"})
    targeted = await build.stack(name="targeted")
    empty = await build.stack(name="empty", labels={"env": "prod"})  # no version: nothing to hold
    gone = await build.stack(name="gone", labels={"env": "prod"})
    for stack in (owned, free, paid, targeted, gone):
        await build.submit(stack)
    await build.target(explicit, targeted)
    await stacks.delete_stack(uow_factory(), ADMIN, gone.id)
    del empty

    fleet = [registered, unregistered, annotated, explicit, inactive, deleted]
    ids = [agent.id for agent in fleet] + [str(uuid.uuid4())]
    bulk = await sessions.desired_for_agents(uow_factory(), ids)
    alone = {agent_id: await sessions.desired_for_agent(uow_factory(), agent_id) for agent_id in ids}

    assert bulk == alone
    names = {agent.name: [stack.name for stack in bulk[agent.id] or []] for agent in fleet}
    assert names == {
        "registered": ["free", "owned"],
        "unregistered": ["free"],
        "annotated": ["paid"],
        "explicit": ["targeted"],
        "inactive": [],
        "deleted": [],
    }
    assert bulk[deleted.id] is None and bulk[ids[-1]] is None
