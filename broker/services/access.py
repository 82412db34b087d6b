"""Who may see and change which resource: the resource-level half of authorisation.

The role-level half (which role may call which RPC) is a table at the gRPC edge; these rules decide
about one resource:

* admin: everything.
* generator: its own stacks, their deployment objects and targets; the agents registered with it
  (read); its own registrations; itself.
* agent: itself, and the stacks that reach it (read) with their deployment objects.

A non-admin asking for something that is not theirs gets PERMISSION_DENIED whether or not it exists,
so ids cannot be probed (AIP-211); an admin gets NOT_FOUND for what does not exist. Each function
loads the resource inside the caller's unit of work and returns it when allowed.
"""

from __future__ import annotations

from collections.abc import Collection

from broker.domain.model import Agent, Generator, Principal, Role, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.targeting import match
from brokkr_common.errors import FailedPrecondition, PermissionDenied, not_found


def denied(kind: str, ident: str) -> PermissionDenied:
    return PermissionDenied(
        f"permission denied on {kind} {ident!r} (or it does not exist)",
        reason="RESOURCE_ACCESS_DENIED",
        metadata={"kind": kind, "id": ident},
    )


def deleted(kind: str, ident: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"{kind} {ident!r} is deleted",
        reason=f"{kind.upper().replace(' ', '_')}_DELETED",
        metadata={"id": ident},
    )


def require_admin(actor: Principal, action: str) -> None:
    require_role(actor, {Role.ADMIN}, action)


def require_role(actor: Principal, roles: Collection[Role], action: str) -> None:
    """The role-level rule again, for callers that reach a service without the gRPC edge."""
    if actor.role not in roles:
        allowed = " or ".join(sorted(role.value for role in roles))
        raise PermissionDenied(f"only {allowed} keys may {action}", reason="ROLE_NOT_ALLOWED")


def new_owner(actor: Principal, generator_id: str | None, kind: str) -> str | None:
    """Who will own a new `kind` (a stack, a template): the generator creating it, or whichever
    generator the admin names (or none). PERMISSION_DENIED for a generator naming another one."""
    if actor.is_admin:
        return generator_id
    if actor.role is Role.GENERATOR and generator_id in (None, actor.id):
        return actor.id
    raise PermissionDenied(
        f"a generator may only create {kind}s it owns",
        reason=f"NOT_{kind.upper()}_OWNER",
        metadata={"role": actor.role.value},
    )


async def readable_agent(uow: UnitOfWork, actor: Principal, agent_id: str) -> Agent:
    """The agent, for the admin, a generator it is registered with, or itself."""
    agent = await uow.agents.get(agent_id)
    if actor.is_admin:
        if agent is None:
            raise not_found("agent", agent_id)
        return agent
    if agent is None or not await _may_read_agent(uow, actor, agent_id):
        raise denied("agent", agent_id)
    return agent


async def _may_read_agent(uow: UnitOfWork, actor: Principal, agent_id: str) -> bool:
    if actor.role is Role.AGENT:
        return actor.id == agent_id
    return actor.id is not None and await uow.registrations.exists(agent_id, actor.id)


async def readable_generator(uow: UnitOfWork, actor: Principal, generator_id: str) -> Generator:
    """The generator, for the admin or itself."""
    generator = await uow.generators.get(generator_id)
    if actor.is_admin:
        if generator is None:
            raise not_found("generator", generator_id)
        return generator
    if generator is None or actor.role is not Role.GENERATOR or actor.id != generator_id:
        raise denied("generator", generator_id)
    return generator


async def owned_stack(uow: UnitOfWork, actor: Principal, stack_id: str) -> Stack:
    """The stack, for the admin or the generator owning it: who may change it and target it."""
    stack = await uow.stacks.get(stack_id)
    if actor.is_admin:
        if stack is None:
            raise not_found("stack", stack_id)
        return stack
    if stack is None or actor.role is not Role.GENERATOR or stack.generator_id != actor.id:
        raise denied("stack", stack_id)
    return stack


async def readable_stack(uow: UnitOfWork, actor: Principal, stack_id: str) -> Stack:
    """The stack, for whoever owns it and for the agents it reaches."""
    if actor.role is not Role.AGENT:
        return await owned_stack(uow, actor, stack_id)
    stack = await uow.stacks.get(stack_id)
    if stack is None or actor.id is None or not await _reaches(uow, stack, actor.id):
        raise denied("stack", stack_id)
    return stack


async def _reaches(uow: UnitOfWork, stack: Stack, agent_id: str) -> bool:
    """Whether the stack reaches the agent now (`broker.domain.targeting.match`)."""
    agent = await uow.agents.get(agent_id)
    if agent is None:
        return False
    explicit = await uow.targets.exists(agent_id, stack.id)
    generator_ids = await uow.registrations.generator_ids(agent_id)
    return match(agent, stack, explicit=explicit, agent_generator_ids=generator_ids) is not None
