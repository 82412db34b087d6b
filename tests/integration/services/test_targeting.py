"""Which stacks reach which agents, on both backends: explicit targets, shared labels and annotations,
the registration rule, INACTIVE agents and deleted stacks."""

from __future__ import annotations

import pytest

from broker.domain.model import ADMIN, AgentStatus, TargetMatch
from broker.services import agents, deployment_objects, stacks, targeting
from brokkr_common.errors import PermissionDenied
from tests.integration.services.builders import Builder, as_agent, as_generator


async def _reasons(uow_factory, agent_id: str) -> dict[str, TargetMatch]:
    return {
        stack.name: why for stack, why in await targeting.list_agent_stacks(uow_factory(), ADMIN, agent_id)
    }


async def test_explicit_targets_labels_and_annotations_each_reach_an_agent(uow_factory, build: Builder):
    team = await build.generator()
    agent = await build.agent(labels={"env": "prod", "tier": "web"}, annotations={"region": "eu"})
    await build.register(agent, team)
    explicit = await build.stack(team, name="explicit")
    await build.target(agent, explicit)
    await build.stack(team, name="labelled", labels={"env": "prod", "tier": "db"})
    await build.stack(team, name="annotated", annotations={"region": "eu"})
    await build.stack(team, name="both", labels={"tier": "web"}, annotations={"region": "eu"})
    await build.stack(team, name="elsewhere", labels={"env": "dev"}, annotations={"region": "us"})

    reasons = await _reasons(uow_factory, agent.id)

    assert list(reasons) == ["annotated", "both", "explicit", "labelled"]
    assert (reasons["explicit"].explicit, reasons["explicit"].shared_labels) == (True, ())
    assert reasons["labelled"].shared_labels == ("env=prod",)
    assert reasons["annotated"].shared_annotations == ("region=eu",)
    assert (reasons["both"].shared_labels, reasons["both"].shared_annotations) == (
        ("tier=web",),
        ("region=eu",),
    )


async def test_shared_labels_count_only_for_agents_registered_with_the_stacks_generator(
    uow_factory, build: Builder
):
    team, other_team = await build.generator(), await build.generator()
    agent = await build.agent(labels={"env": "prod"})
    await build.register(agent, other_team)
    await build.stack(team, name="teams", labels={"env": "prod"})
    await build.stack(name="admins", labels={"env": "prod"})

    assert list(await _reasons(uow_factory, agent.id)) == ["admins"]
    await build.register(agent, team)
    assert list(await _reasons(uow_factory, agent.id)) == ["admins", "teams"]


async def test_inactive_agents_and_deleted_stacks_are_never_reached(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(name="app", labels={"env": "prod"})
    await build.target(agent, stack)
    assert list(await _reasons(uow_factory, agent.id)) == ["app"]

    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"status": AgentStatus.INACTIVE})
    assert await _reasons(uow_factory, agent.id) == {}
    assert await targeting.list_stack_agents(uow_factory(), ADMIN, stack.id) == []
    assert await targeting.stacks_for_agent(uow_factory(), agent.id) == []

    await agents.update_agent(uow_factory(), ADMIN, agent.id, {"status": AgentStatus.ACTIVE})
    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)
    assert await _reasons(uow_factory, agent.id) == {}
    assert await targeting.list_stack_agents(uow_factory(), ADMIN, stack.id) == []


async def test_a_stack_lists_the_agents_it_reaches_in_name_order(uow_factory, build: Builder):
    stack = await build.stack(labels={"env": "prod"})
    for name, cluster in (("b", "x"), ("a", "y"), ("a", "x")):
        await build.agent(name, cluster_name=cluster, labels={"env": "prod"})
    await build.agent("z", labels={"env": "dev"})
    await build.agent("c", labels={"env": "prod"}, active=False)

    reached = await targeting.list_stack_agents(uow_factory(), ADMIN, stack.id)

    assert [(agent.name, agent.cluster_name) for agent, _ in reached] == [("a", "x"), ("a", "y"), ("b", "x")]
    assert all(why.shared_labels == ("env=prod",) and why.stack_id == stack.id for _, why in reached)


async def test_the_session_layer_gets_the_stacks_with_their_desired_state(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    newest = await build.submit(stack)

    [(reached, why)] = await targeting.stacks_for_agent(uow_factory(), agent.id)

    assert (reached.id, reached.desired, why.shared_labels) == (stack.id, newest.ref, ("env=prod",))


async def test_an_agent_reads_exactly_the_stacks_that_reach_it(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    reaching = await build.stack(labels={"env": "prod"})
    other = await build.stack(labels={"env": "dev"})
    content = await build.submit(reaching)

    me = as_agent(agent)
    assert (await stacks.get_stack(uow_factory(), me, reaching.id)).id == reaching.id
    with pytest.raises(PermissionDenied):
        await stacks.get_stack(uow_factory(), me, other.id)
    assert (await deployment_objects.get_deployment_object(uow_factory(), me, content.id)) == content


async def test_a_generator_sees_only_its_part_of_targeting(uow_factory, build: Builder):
    team, other_team = await build.generator(), await build.generator()
    registered = await build.agent("registered", labels={"env": "prod"})
    stranger = await build.agent("stranger", labels={"env": "prod"})
    await build.register(registered, team)
    await build.register(registered, other_team)
    mine = await build.stack(team, name="mine", labels={"env": "prod"})
    await build.stack(other_team, name="theirs", labels={"env": "prod"})
    await build.target(stranger, mine)  # the admin may target any agent

    seen = await targeting.list_agent_stacks(uow_factory(), as_generator(team), registered.id)
    assert [stack.name for stack, _ in seen] == ["mine"]
    reached = await targeting.list_stack_agents(uow_factory(), as_generator(team), mine.id)
    assert [agent.name for agent, _ in reached] == ["registered"]
    admin_view = await targeting.list_stack_agents(uow_factory(), ADMIN, mine.id)
    assert [agent.name for agent, _ in admin_view] == ["registered", "stranger"]
    with pytest.raises(PermissionDenied):
        await targeting.list_agent_stacks(uow_factory(), as_generator(team), stranger.id)
