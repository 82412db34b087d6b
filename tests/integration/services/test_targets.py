"""Explicit targets and registrations on both backends: who may make them, duplicates, removal, lists."""

from __future__ import annotations

import pytest

from broker.domain.changes import TargetingChanged
from broker.domain.model import ADMIN
from broker.services import agents, stacks, targets
from brokkr_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.services.builders import Builder, as_agent, as_generator


async def test_a_target_is_created_once_and_removed_once(database, uow_factory, build: Builder):
    published = []

    async def on_commit(changes):
        published.extend(changes)

    agent, stack = await build.agent(), await build.stack()
    created = await targets.create_target(database.uow_factory(on_commit)(), ADMIN, agent.id, stack.id)
    assert (created.agent_id, created.stack_id) == (agent.id, stack.id)
    with pytest.raises(AlreadyExists) as raised:
        await targets.create_target(uow_factory(), ADMIN, agent.id, stack.id)
    assert raised.value.reason == "TARGET_ALREADY_EXISTS"

    await targets.delete_target(database.uow_factory(on_commit)(), ADMIN, agent.id, stack.id)
    with pytest.raises(NotFound):
        await targets.delete_target(uow_factory(), ADMIN, agent.id, stack.id)
    assert published == [TargetingChanged(agent.id, stack.id)] * 2
    # Removed targets may be made again: uniqueness holds among live ones only.
    await targets.create_target(uow_factory(), ADMIN, agent.id, stack.id)


async def test_a_generator_targets_its_own_stacks_at_agents_registered_with_it(uow_factory, build: Builder):
    owner, stranger = await build.generator(), await build.generator()
    stack = await build.stack(owner)
    registered, unregistered = await build.agent(), await build.agent()
    await build.register(registered, owner)

    await targets.create_target(uow_factory(), as_generator(owner), registered.id, stack.id)
    with pytest.raises(PermissionDenied):
        await targets.create_target(uow_factory(), as_generator(owner), unregistered.id, stack.id)
    with pytest.raises(PermissionDenied):
        await targets.create_target(uow_factory(), as_generator(stranger), registered.id, stack.id)
    with pytest.raises(PermissionDenied):
        await targets.delete_target(uow_factory(), as_generator(stranger), registered.id, stack.id)


async def test_deleted_agents_and_stacks_cannot_be_targeted(uow_factory, build: Builder):
    agent, stack = await build.agent(), await build.stack()
    gone_agent, gone_stack = await build.agent(), await build.stack()
    await agents.delete_agent(uow_factory(), ADMIN, gone_agent.id)
    await stacks.delete_stack(uow_factory(), ADMIN, gone_stack.id)
    for agent_id, stack_id in ((gone_agent.id, stack.id), (agent.id, gone_stack.id)):
        with pytest.raises(FailedPrecondition):
            await targets.create_target(uow_factory(), ADMIN, agent_id, stack_id)


async def test_registrations_are_the_admins_and_unique_among_live_ones(uow_factory, build: Builder):
    agent, generator = await build.agent(), await build.generator()
    registration = await targets.create_registration(uow_factory(), ADMIN, agent.id, generator.id)
    assert (registration.agent_id, registration.generator_id) == (agent.id, generator.id)
    with pytest.raises(AlreadyExists) as raised:
        await targets.create_registration(uow_factory(), ADMIN, agent.id, generator.id)
    assert raised.value.reason == "REGISTRATION_ALREADY_EXISTS"
    with pytest.raises(PermissionDenied):
        await targets.create_registration(uow_factory(), as_generator(generator), agent.id, generator.id)
    await targets.delete_registration(uow_factory(), ADMIN, agent.id, generator.id)
    with pytest.raises(NotFound):
        await targets.delete_registration(uow_factory(), ADMIN, agent.id, generator.id)


async def test_lists_show_each_caller_only_its_own_part(uow_factory, build: Builder):
    team_a, team_b = await build.generator(), await build.generator()
    agent, other_agent = await build.agent(), await build.agent()
    for generator in (team_a, team_b):
        await build.register(agent, generator)
    stack_a, stack_b = await build.stack(team_a), await build.stack(team_b)
    await build.target(agent, stack_a)
    await build.target(agent, stack_b)
    await build.target(other_agent, stack_a)

    async def listed_targets(actor, **which):
        page = await targets.list_targets(uow_factory(), actor, page_size=0, page_token="", **which)
        return {(t.agent_id, t.stack_id) for t in page.items}

    async def listed_registrations(actor, **which):
        page = await targets.list_registrations(uow_factory(), actor, page_size=0, page_token="", **which)
        return {(r.agent_id, r.generator_id) for r in page.items}

    assert await listed_targets(ADMIN, agent_id=agent.id) == {(agent.id, stack_a.id), (agent.id, stack_b.id)}
    assert await listed_targets(as_generator(team_a), agent_id=agent.id) == {(agent.id, stack_a.id)}
    assert await listed_targets(as_generator(team_a), stack_id=stack_a.id) == {
        (agent.id, stack_a.id),
        (other_agent.id, stack_a.id),
    }
    assert await listed_targets(as_agent(agent), stack_id=stack_a.id) == {(agent.id, stack_a.id)}
    assert await listed_targets(as_agent(agent), agent_id=agent.id) == {
        (agent.id, stack_a.id),
        (agent.id, stack_b.id),
    }
    with pytest.raises(PermissionDenied):
        await listed_targets(as_agent(other_agent), agent_id=agent.id)
    with pytest.raises(PermissionDenied):
        await listed_targets(as_generator(team_b), stack_id=stack_a.id)

    assert await listed_registrations(ADMIN, agent_id=agent.id) == {
        (agent.id, team_a.id),
        (agent.id, team_b.id),
    }
    assert await listed_registrations(as_generator(team_a), agent_id=agent.id) == {(agent.id, team_a.id)}
    assert await listed_registrations(as_agent(agent), generator_id=team_b.id) == {(agent.id, team_b.id)}
    with pytest.raises(PermissionDenied):
        await listed_registrations(as_generator(team_a), generator_id=team_b.id)
    with pytest.raises(PermissionDenied):
        await listed_registrations(as_generator(team_a), agent_id=other_agent.id)


async def test_a_list_needs_exactly_one_of_agent_and_stack(uow_factory):
    with pytest.raises(InvalidArgument) as raised:
        await targets.list_targets(uow_factory(), ADMIN, page_size=0, page_token="")
    assert {v.field for v in raised.value.field_violations} == {"agent_id", "stack_id"}
