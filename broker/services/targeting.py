"""Which stacks reach which agents, and why: explicit targets, shared labels, shared annotations.

`broker.domain.targeting.match` is the rule; the database narrows the candidates with its indexes
(`UnitOfWork.targeting`) and the rule decides over the few that remain, so both directions stay
cheap at 10,000 agents. Deleted stacks and agents, and INACTIVE agents, are never reached.
"""

from __future__ import annotations

from collections.abc import Iterable

from broker.domain.model import Agent, AgentStatus, Principal, Role, Stack, TargetMatch
from broker.domain.ports import AgentCandidate, StackCandidate, UnitOfWork
from broker.domain.targeting import match
from broker.domain.validation import Violations
from broker.services import access, checks


async def stacks_for_agent(uow: UnitOfWork, agent_id: str) -> list[tuple[Stack, TargetMatch]]:
    """The stacks reaching an agent, ordered by name: what its session must deliver.

    For the agent session layer, which has authenticated the agent itself; no authorisation here.
    """
    async with uow:
        agent = await uow.agents.get(agent_id)
        return await stacks_reaching(uow, agent) if agent is not None else []


async def list_agent_stacks(
    uow: UnitOfWork, actor: Principal, agent_id: str
) -> list[tuple[Stack, TargetMatch]]:
    """The stacks reaching an agent, with the reason for each; a generator sees only its own stacks."""
    violations = Violations()
    agent_id = checks.resource_id(violations, "id", agent_id)
    violations.raise_if_any()
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        reached = await stacks_reaching(uow, agent)
    if actor.role is Role.GENERATOR:
        reached = [(stack, why) for stack, why in reached if stack.generator_id == actor.id]
    return reached


async def list_stack_agents(
    uow: UnitOfWork, actor: Principal, stack_id: str
) -> list[tuple[Agent, TargetMatch]]:
    """The ACTIVE agents a stack reaches, ordered by name then cluster name, with the reason for each.

    A generator sees only the agents registered with it.
    """
    violations = Violations()
    stack_id = checks.resource_id(violations, "id", stack_id)
    violations.raise_if_any()
    async with uow:
        stack = await access.owned_stack(uow, actor, stack_id)
        reached = await agents_reached(uow, stack)
    return [
        (candidate.agent, why)
        for candidate, why in reached
        if actor.role is not Role.GENERATOR or actor.id in candidate.generator_ids
    ]


async def stacks_reaching(uow: UnitOfWork, agent: Agent) -> list[tuple[Stack, TargetMatch]]:
    """Inside a transaction: the stacks reaching `agent`, ordered by name, with the reason for each."""
    if agent.deleted_at is not None or agent.status is not AgentStatus.ACTIVE:
        return []
    candidates = await uow.targeting.stack_candidates(agent)
    generator_ids = await uow.registrations.generator_ids(agent.id)
    return reaching(agent, candidates, generator_ids)


def reaching(
    agent: Agent, candidates: Iterable[StackCandidate], generator_ids: frozenset[str]
) -> list[tuple[Stack, TargetMatch]]:
    """Of the candidates, the stacks the targeting rule lets reach `agent`, with the reason for each."""
    if agent.deleted_at is not None or agent.status is not AgentStatus.ACTIVE:
        return []
    reached = []
    for candidate in candidates:
        why = match(agent, candidate.stack, explicit=candidate.explicit, agent_generator_ids=generator_ids)
        if why is not None:
            reached.append((candidate.stack, why))
    return reached


async def agents_reached(uow: UnitOfWork, stack: Stack) -> list[tuple[AgentCandidate, TargetMatch]]:
    """Inside a transaction: the ACTIVE agents `stack` reaches, with the reason for each; none once
    it is deleted. The candidate carries the agent's registrations, for callers that filter on them."""
    if stack.deleted_at is not None:
        return []
    reached = []
    for candidate in await uow.targeting.agent_candidates(stack):
        why = match(
            candidate.agent, stack, explicit=candidate.explicit, agent_generator_ids=candidate.generator_ids
        )
        if why is not None:
            reached.append((candidate, why))
    return reached
