"""Explicit targets (this stack goes to that agent) and registrations (this agent works with that
generator).

The admin manages both. A generator targets its own stacks, and only at agents registered with it;
it reads its own registrations. An agent reads its own targets and registrations. Removing either
soft-deletes it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from broker.domain.changes import TargetingChanged
from broker.domain.model import Agent, Page, Principal, Registration, Role, Target
from broker.domain.ports import UnitOfWork
from broker.domain.validation import Violations
from broker.services import access, checks, paging
from brokkr_common.errors import NotFound


async def create_target(uow: UnitOfWork, actor: Principal, agent_id: str, stack_id: str) -> Target:
    """Target a stack at an agent; both must be live."""
    agent_id, stack_id = _pair(agent_id, stack_id=stack_id)
    async with uow:
        stack = await access.owned_stack(uow, actor, stack_id)
        agent = await _targetable_agent(uow, actor, agent_id)
        if stack.deleted_at is not None:
            raise access.deleted("stack", stack_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        target = Target(agent_id, stack_id, datetime.now(UTC))
        await uow.targets.add(target)
        uow.record(TargetingChanged(agent_id, stack_id))
        await uow.commit()
    return target


async def _targetable_agent(uow: UnitOfWork, actor: Principal, agent_id: str) -> Agent:
    """The agent, for the admin or a generator it is registered with."""
    if actor.role is Role.AGENT:
        raise access.denied("agent", agent_id)
    return await access.readable_agent(uow, actor, agent_id)


async def delete_target(uow: UnitOfWork, actor: Principal, agent_id: str, stack_id: str) -> None:
    """Remove an explicit target; NOT_FOUND if there is none."""
    agent_id, stack_id = _pair(agent_id, stack_id=stack_id)
    async with uow:
        await access.owned_stack(uow, actor, stack_id)
        if not await uow.targets.remove(agent_id, stack_id, datetime.now(UTC)):
            raise _missing("target", agent_id, stack_id)
        uow.record(TargetingChanged(agent_id, stack_id))
        await uow.commit()


async def list_targets(
    uow: UnitOfWork,
    actor: Principal,
    *,
    agent_id: str | None = None,
    stack_id: str | None = None,
    page_size: int,
    page_token: str,
) -> Page[Target]:
    """The explicit targets of one agent or of one stack (exactly one of the two)."""
    violations = Violations()
    _exactly_one(violations, agent_id=agent_id, stack_id=stack_id)
    if agent_id:
        agent_id = checks.resource_id(violations, "agent_id", agent_id)
    if stack_id:
        stack_id = checks.resource_id(violations, "stack_id", stack_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str),
        method="ListTargets",
        principal=actor.id,
        agent_id=agent_id,
        stack_id=stack_id,
    )
    violations.raise_if_any()
    stack_owner = None
    async with uow:
        if agent_id:
            await access.readable_agent(uow, actor, agent_id)
            stack_owner = actor.id if actor.role is Role.GENERATOR else None
        else:
            assert stack_id is not None
            await access.readable_stack(uow, actor, stack_id)
            agent_id = actor.id if actor.role is Role.AGENT else None
        return await paging.collect(
            page,
            lambda after, limit: uow.targets.list_page(
                after=after, limit=limit, agent_id=agent_id, stack_id=stack_id, stack_owner=stack_owner
            ),
            lambda target: (target.agent_id, target.stack_id),
        )


async def create_registration(
    uow: UnitOfWork, actor: Principal, agent_id: str, generator_id: str
) -> Registration:
    """Register an agent with a generator (the admin's call); both must be live."""
    access.require_admin(actor, "register agents with generators")
    agent_id, generator_id = _pair(agent_id, generator_id=generator_id)
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        generator = await access.readable_generator(uow, actor, generator_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        if generator.deleted_at is not None:
            raise access.deleted("generator", generator_id)
        registration = Registration(agent_id, generator_id, datetime.now(UTC))
        await uow.registrations.add(registration)
        uow.record(TargetingChanged(agent_id))
        await uow.commit()
    return registration


async def delete_registration(uow: UnitOfWork, actor: Principal, agent_id: str, generator_id: str) -> None:
    """Remove a registration (the admin's call); NOT_FOUND if there is none."""
    access.require_admin(actor, "remove registrations")
    agent_id, generator_id = _pair(agent_id, generator_id=generator_id)
    async with uow:
        if not await uow.registrations.remove(agent_id, generator_id, datetime.now(UTC)):
            raise _missing("registration", agent_id, generator_id)
        uow.record(TargetingChanged(agent_id))
        await uow.commit()


async def list_registrations(
    uow: UnitOfWork,
    actor: Principal,
    *,
    agent_id: str | None = None,
    generator_id: str | None = None,
    page_size: int,
    page_token: str,
) -> Page[Registration]:
    """The registrations of one agent or of one generator (exactly one of the two), as far as the
    caller may see: a generator sees its own, an agent its own."""
    violations = Violations()
    _exactly_one(violations, agent_id=agent_id, generator_id=generator_id)
    if agent_id:
        agent_id = checks.resource_id(violations, "agent_id", agent_id)
    if generator_id:
        generator_id = checks.resource_id(violations, "generator_id", generator_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str),
        method="ListRegistrations",
        principal=actor.id,
        agent_id=agent_id,
        generator_id=generator_id,
    )
    violations.raise_if_any()
    async with uow:
        if agent_id:
            await access.readable_agent(uow, actor, agent_id)
        elif actor.role is not Role.AGENT:
            assert generator_id is not None
            await access.readable_generator(uow, actor, generator_id)
        if actor.role is Role.GENERATOR:
            generator_id = actor.id
        if actor.role is Role.AGENT:
            agent_id = actor.id
        return await paging.collect(
            page,
            lambda after, limit: uow.registrations.list_page(
                after=after, limit=limit, agent_id=agent_id, generator_id=generator_id
            ),
            lambda registration: (registration.agent_id, registration.generator_id),
        )


def _pair(agent_id: str, **other: str) -> tuple[str, str]:
    """The validated agent id and the other id of a target or registration request."""
    violations = Violations()
    agent_id = checks.resource_id(violations, "agent_id", agent_id)
    [(field, value)] = other.items()
    value = checks.resource_id(violations, field, value)
    violations.raise_if_any()
    return agent_id, value


def _exactly_one(violations: Violations, **candidates: str | None) -> None:
    if sum(1 for value in candidates.values() if value) != 1:
        names = " or ".join(candidates)
        for name in candidates:
            violations.add(name, f"set exactly one of {names}", "INVALID_FILTER")


def _missing(kind: str, agent_id: str, other_id: str) -> NotFound:
    return NotFound(
        f"no {kind} between agent {agent_id!r} and {other_id!r}",
        reason=f"{kind.upper()}_NOT_FOUND",
        metadata={"agent_id": agent_id, "other_id": other_id},
    )
