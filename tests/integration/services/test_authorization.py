"""Resource-level authorisation on both backends (AIP-211): a non-admin asking for something that is not
theirs gets PERMISSION_DENIED whether or not it exists, so ids cannot be probed; the admin gets
NOT_FOUND for what does not exist; owners get what they own."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from broker.domain.model import ADMIN, Principal
from broker.services import agents, deployment_objects, generators, stacks, targeting
from brokkr_common.errors import NotFound, PermissionDenied
from tests.integration.services.builders import Builder, as_agent, as_generator

MISSING = "00000000-0000-4000-8000-000000000000"


@dataclass
class World:
    owner: Principal
    stranger: Principal
    agent: Principal
    other_agent: Principal
    ids: dict[str, str]


@pytest.fixture
async def world(build: Builder) -> World:
    owner, stranger = await build.generator(), await build.generator()
    agent = await build.agent(labels={"env": "prod"})
    other_agent = await build.agent(labels={"env": "dev"})
    await build.register(agent, owner)
    stack = await build.stack(owner, labels={"env": "prod"})
    content = await build.submit(stack)
    return World(
        as_generator(owner),
        as_generator(stranger),
        as_agent(agent),
        as_agent(other_agent),
        {"generator": owner.id, "agent": agent.id, "stack": stack.id, "deployment_object": content.id},
    )


Call = Callable[[Any, Principal, str], Awaitable[object]]

#: (what is asked for, the call, who may, besides the admin)
CASES: list[tuple[str, str, Call, set[str]]] = [
    ("GetAgent", "agent", agents.get_agent, {"owner", "agent"}),
    ("GetGenerator", "generator", generators.get_generator, {"owner"}),
    ("RotateGeneratorKey", "generator", generators.rotate_generator_key, {"owner"}),
    ("GetStack", "stack", stacks.get_stack, {"owner", "agent"}),
    (
        "UpdateStack",
        "stack",
        lambda uow, who, ident: stacks.update_stack(uow, who, ident, {"description": "x"}),
        {"owner"},
    ),
    ("DeleteStack", "stack", stacks.delete_stack, {"owner"}),
    ("ListStackAgents", "stack", targeting.list_stack_agents, {"owner"}),
    ("ListAgentStacks", "agent", targeting.list_agent_stacks, {"owner", "agent"}),
    (
        "GetDeploymentObject",
        "deployment_object",
        deployment_objects.get_deployment_object,
        {"owner", "agent"},
    ),
    (
        "ListDeploymentObjects",
        "stack",
        lambda uow, who, ident: deployment_objects.list_deployment_objects(
            uow, who, stack_id=ident, page_size=0, page_token=""
        ),
        {"owner", "agent"},
    ),
]


@pytest.mark.parametrize(("kind", "call", "allowed"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_outsiders_cannot_tell_missing_from_forbidden(uow_factory, world: World, kind, call, allowed):
    callers = {
        "owner": world.owner,
        "stranger": world.stranger,
        "agent": world.agent,
        "other": world.other_agent,
    }
    for name, caller in callers.items():
        if name in allowed:
            await call(uow_factory(), caller, world.ids[kind])
            continue
        for ident in (world.ids[kind], MISSING):
            with pytest.raises(PermissionDenied):
                await call(uow_factory(), caller, ident)
    with pytest.raises(NotFound):
        await call(uow_factory(), ADMIN, MISSING)


async def test_lists_are_filtered_to_what_a_generator_may_see(uow_factory, build: Builder, world: World):
    seen_agents = await agents.list_agents(uow_factory(), world.owner, page_size=0, page_token="")
    assert [agent.id for agent in seen_agents.items] == [world.ids["agent"]]
    assert (await agents.list_agents(uow_factory(), world.stranger, page_size=0, page_token="")).items == ()
    seen_stacks = await stacks.list_stacks(uow_factory(), world.owner, page_size=0, page_token="")
    assert [stack.id for stack in seen_stacks.items] == [world.ids["stack"]]
    assert (await stacks.list_stacks(uow_factory(), world.stranger, page_size=0, page_token="")).items == ()
    with pytest.raises(PermissionDenied):
        await stacks.list_stacks(
            uow_factory(), world.stranger, page_size=0, page_token="", generator_id=world.ids["generator"]
        )


async def test_agents_cannot_list_or_change_anything(uow_factory, world: World):
    for attempt in (
        agents.list_agents(uow_factory(), world.agent, page_size=0, page_token=""),
        stacks.list_stacks(uow_factory(), world.agent, page_size=0, page_token=""),
        generators.list_generators(
            uow_factory(), world.agent, page_size=0, page_token="", show_deleted=False
        ),
        agents.update_agent(uow_factory(), world.agent, world.ids["agent"], {"labels": {}}),
        stacks.create_stack(
            uow_factory(),
            world.agent,
            name="mine",
            description="",
            generator_id=None,
            labels={},
            annotations={},
            request_id=None,
        ),
    ):
        with pytest.raises(PermissionDenied):
            await attempt
