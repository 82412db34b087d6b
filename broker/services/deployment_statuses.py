"""Deployment statuses: which deployment object every agent runs of every stack, without asking agents.

A status joins two things per agent x stack: what the agent should hold, which follows from the
targeting rule and the stack's newest deployment object at the time of reading (so it never goes
stale), and the newest of what the agent reported (`DeploymentRecord`, stored by the session layer).
`deployment_state` compares them.

One stack's statuses cover the agents it reaches now (those that never reported are PENDING) and
those that reported on it before, such as agents still to remove it; one agent's cover the stacks
that reach it and those it reported on. Who sees what follows the targeting views: a generator sees
its own stacks on the agents registered with it, an agent only its own statuses (by agent).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence

from broker.domain.deployments import DeploymentRecord, DeploymentStatus, deployment_state
from broker.domain.model import DeploymentObjectRef, Page, Principal, Role
from broker.domain.ports import Position, UnitOfWork
from broker.domain.validation import Violations
from broker.services import checks, paging, targeting


async def list_deployment_statuses(
    uow: UnitOfWork,
    actor: Principal,
    *,
    stack_id: str = "",
    agent_id: str = "",
    page_size: int,
    page_token: str,
) -> Page[DeploymentStatus]:
    """The statuses of one stack, ordered by agent id, or of one agent, ordered by stack id."""
    violations = Violations()
    if not stack_id and not agent_id:
        violations.add("stack_id", "is required unless agent_id is set", "FIELD_REQUIRED")
    elif stack_id and agent_id:
        violations.add("agent_id", "must be empty when stack_id is set", "INVALID_FIELD")
    elif stack_id:
        stack_id = checks.resource_id(violations, "stack_id", stack_id)
    else:
        agent_id = checks.resource_id(violations, "agent_id", agent_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str,),
        method="ListDeploymentStatuses",
        principal=actor.id,
        stack_id=stack_id,
        agent_id=agent_id,
    )
    violations.raise_if_any()
    if stack_id:
        return await _of_stack(uow, actor, stack_id, page)
    return await _of_agent(uow, actor, agent_id, page)


async def _of_stack(
    uow: UnitOfWork, actor: Principal, stack_id: str, page: paging.PagePlan
) -> Page[DeploymentStatus]:
    reached = await targeting.list_stack_agents(uow, actor, stack_id)  # authorises the caller
    async with uow:
        stack = await uow.stacks.get(stack_id)
        desired = stack.desired if stack is not None else None
        return await _page(
            page,
            reached={agent.id: desired for agent, _ in reached},
            reported=await uow.deployment_statuses.agent_ids(
                stack_id, registered_with=None if actor.is_admin else actor.id
            ),
            records=lambda agent_ids: uow.deployment_statuses.for_stack(stack_id, agent_ids),
            status=lambda agent_id, wanted, recorded: _status(agent_id, stack_id, wanted, recorded),
            position=lambda status: status.agent_id,
        )


async def _of_agent(
    uow: UnitOfWork, actor: Principal, agent_id: str, page: paging.PagePlan
) -> Page[DeploymentStatus]:
    reached = await targeting.list_agent_stacks(uow, actor, agent_id)  # authorises the caller
    async with uow:
        return await _page(
            page,
            reached={stack.id: stack.desired for stack, _ in reached},
            reported=await uow.deployment_statuses.stack_ids(
                agent_id, stack_owner=actor.id if actor.role is Role.GENERATOR else None
            ),
            records=lambda stack_ids: uow.deployment_statuses.for_agent(agent_id, stack_ids),
            status=lambda stack_id, wanted, recorded: _status(agent_id, stack_id, wanted, recorded),
            position=lambda status: status.stack_id,
        )


async def _page(
    page: paging.PagePlan,
    *,
    reached: Mapping[str, DeploymentObjectRef | None],
    reported: Sequence[str],
    records: Callable[[Sequence[str]], Awaitable[Mapping[str, DeploymentRecord]]],
    status: Callable[[str, DeploymentObjectRef | None, DeploymentRecord | None], DeploymentStatus],
    position: Callable[[DeploymentStatus], str],
) -> Page[DeploymentStatus]:
    """One page over the ids of the other side: those `reached` (id -> desired deployment object)
    and those `reported` on, in id order; `records` loads a page's records by id."""
    ids = sorted({*reached, *reported})

    async def fetch(after: Position, limit: int) -> list[DeploymentStatus]:
        chosen = [ident for ident in ids if not after or ident > str(after[0])][:limit]
        found = await records(chosen)
        return [status(ident, reached.get(ident), found.get(ident)) for ident in chosen]

    return await paging.collect(page, fetch, lambda item: (position(item),))


def _status(
    agent_id: str, stack_id: str, desired: DeploymentObjectRef | None, recorded: DeploymentRecord | None
) -> DeploymentStatus:
    return DeploymentStatus(agent_id, stack_id, desired, deployment_state(desired, recorded), recorded)
