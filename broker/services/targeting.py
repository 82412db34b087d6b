"""Which stacks reach which agents, and why: explicit targets, shared labels, shared annotations.

`broker.domain.targeting.match` is the rule; the database narrows the candidates with its indexes
(`UnitOfWork.targeting`) and the rule decides over the few that remain, so both directions stay
cheap at 10,000 agents. Deleted stacks and agents, and INACTIVE agents, are never reached.
"""

from __future__ import annotations

from broker.domain.model import Agent, AgentStatus, Principal, Role, Stack, TargetMatch
from broker.domain.ports import UnitOfWork
from broker.domain.targeting import match
from broker.domain.validation import Violations
from broker.services import access, checks


async def stacks_for_agent(uow: UnitOfWork, agent_id: str) -> list[tuple[Stack, TargetMatch]]:
    """The stacks reaching an agent, ordered by name: what its session must deliver.

    For the agent session layer, which has authenticated the agent itself; no authorisation here.
    """
    async with uow:
        agent = await uow.agents.get(agent_id)
        return await _stacks_reaching(uow, agent) if agent is not None else []


async def list_agent_stacks(
    uow: UnitOfWork, actor: Principal, agent_id: str
) -> list[tuple[Stack, TargetMatch]]:
    """The stacks reaching an agent, with the reason for each; a generator sees only its own stacks."""
    violations = Violations()
    agent_id = checks.resource_id(violations, "id", agent_id)
    violations.raise_if_any()
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        reached = await _stacks_reaching(uow, agent)
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
        if stack.deleted_at is not None:
            return []
        candidates = await uow.targeting.agent_candidates(stack)
    reached = []
    for candidate in candidates:
        if actor.role is Role.GENERATOR and actor.id not in candidate.generator_ids:
            continue
        why = match(
            candidate.agent, stack, explicit=candidate.explicit, agent_generator_ids=candidate.generator_ids
        )
        if why is not None:
            reached.append((candidate.agent, why))
    return reached


async def _stacks_reaching(uow: UnitOfWork, agent: Agent) -> list[tuple[Stack, TargetMatch]]:
    if agent.deleted_at is not None or agent.status is not AgentStatus.ACTIVE:
        return []
    candidates = await uow.targeting.stack_candidates(agent)
    generator_ids = await uow.registrations.generator_ids(agent.id)
    reached = []
    for candidate in candidates:
        why = match(agent, candidate.stack, explicit=candidate.explicit, agent_generator_ids=generator_ids)
        if why is not None:
            reached.append((candidate.stack, why))
    return reached
