"""Agent sessions as the database sees them: connections, what each agent should hold, what it reports.

The stream layer (`broker.stream`) authenticates the agent and drives the protocol; these use cases
are its data source. They record the agent's connection (only its newest session may change it, so
replicas do not fight over an agent that moved), read what the agent should hold (the targeting rule
over live stacks, newest deployment object each, nothing for an INACTIVE or deleted agent), and
store what agents report, in batches, keeping the newest report per agent x stack.

No authorisation here: the caller has authenticated the agent itself. Nothing here records a
`Change` either: connection writes happen at every connect and heartbeat, and fanning them out to
every session would cost far more than it tells.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from broker.domain.deployments import ApplyReport, HealthReport, Heartbeat, Report
from broker.domain.model import Agent, AgentStatus, ConnectionState, DeploymentObject, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.targeting import match
from broker.services import access
from brokkr_common.errors import not_found

R = TypeVar("R", ApplyReport, HealthReport, Heartbeat)


@dataclass(frozen=True)
class SessionStart:
    """What a new session starts from: the agent, what it should hold, and what it nacked last."""

    agent: Agent
    #: Each stack reaching the agent that has a deployment object, with the newest one (resources
    #: included), in stack name order.
    desired: list[tuple[Stack, DeploymentObject]]
    #: Stack id -> the deployment object the agent last nacked there, not to be resent.
    parked: dict[str, str]


@dataclass(frozen=True)
class StackReach:
    """A stack as sessions must see it now."""

    stack: Stack | None
    #: The newest deployment object with its resources (a deletion marker once the stack is deleted).
    deployment_object: DeploymentObject | None
    #: The ACTIVE agents the stack reaches; none once it is deleted.
    agent_ids: frozenset[str]


async def open_session(
    uow: UnitOfWork, agent_id: str, *, session_id: str, replica: str, peer: str
) -> SessionStart:
    """Record the agent CONNECTED through this session and return what the session starts from.

    NOT_FOUND for an unknown agent, FAILED_PRECONDITION (AGENT_DELETED) for a deleted one.
    """
    async with uow:
        agent = await uow.agents.get(agent_id)
        if agent is None:
            raise not_found("agent", agent_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        now = datetime.now(UTC)
        await uow.agent_connections.connect(
            agent_id, session_id=session_id, replica=replica, peer=peer, at=now
        )
        desired = await _desired(uow, agent)
        parked = await uow.deployment_statuses.parked(agent_id)
        await uow.commit()
    return SessionStart(
        dataclasses.replace(agent, connection_state=ConnectionState.CONNECTED), desired, parked
    )


async def record_hello(
    uow: UnitOfWork, agent_id: str, session_id: str, *, agent_version: str, held: Mapping[str, str | None]
) -> None:
    """Store the agent's version and what it says it holds (stack id -> deployment object id, None
    when it cannot tell which), unless a newer session of the agent has replaced this one."""
    async with uow:
        if not await uow.agent_connections.record_hello(agent_id, session_id, agent_version):
            return
        await uow.deployment_statuses.record_held(agent_id, held, datetime.now(UTC))
        await uow.commit()


async def close_session(uow: UnitOfWork, agent_id: str, session_id: str) -> None:
    """Record the agent DISCONNECTED, if this session is still its current one."""
    async with uow:
        await uow.agent_connections.disconnect([(agent_id, session_id)])
        await uow.commit()


async def record_reports(uow: UnitOfWork, reports: Sequence[Report]) -> None:
    """Store a batch of reports from any number of agents in one transaction.

    Of several reports of one kind about the same agent x stack (or agent, for heartbeats) only the
    newest counts, except that an ack followed by a nack keeps both (what runs, what failed since);
    a report older than the stored one changes nothing.
    """

    def pair(report: ApplyReport | HealthReport) -> Hashable:
        return report.agent_id, report.stack_id

    # An ack and a later nack of the same stack both matter: the ack says what was applied, the
    # nack what failed since. A nack older than the newest ack is superseded by it.
    acks = _newest((r for r in reports if isinstance(r, ApplyReport) and r.succeeded), pair)
    acked_at = {pair(ack): ack.at for ack in acks}
    nacks = [
        nack
        for nack in _newest((r for r in reports if isinstance(r, ApplyReport) and not r.succeeded), pair)
        if pair(nack) not in acked_at or nack.at >= acked_at[pair(nack)]
    ]
    applies = [*acks, *nacks]
    health = _newest((r for r in reports if isinstance(r, HealthReport)), pair)
    heartbeats = _newest((r for r in reports if isinstance(r, Heartbeat)), lambda r: r.agent_id)
    async with uow:
        await uow.deployment_statuses.record_applies(applies)
        await uow.deployment_statuses.record_health(health)
        await uow.agent_connections.record_heartbeats(heartbeats)
        await uow.commit()


async def desired_for_agent(uow: UnitOfWork, agent_id: str) -> list[tuple[Stack, DeploymentObject]] | None:
    """What the agent should hold now, as in `SessionStart.desired`; None if it was deleted."""
    async with uow:
        agent = await uow.agents.get(agent_id)
        if agent is None or agent.deleted_at is not None:
            return None
        return await _desired(uow, agent)


async def stack_reach(uow: UnitOfWork, stack_id: str) -> StackReach:
    """The stack, its newest deployment object and the agents it reaches now."""
    async with uow:
        stack = await uow.stacks.get(stack_id)
        if stack is None:
            return StackReach(None, None, frozenset())
        deployment_object = await uow.deployment_objects.get(stack.desired.id) if stack.desired else None
        if stack.deleted_at is not None:
            return StackReach(stack, deployment_object, frozenset())
        candidates = await uow.targeting.agent_candidates(stack)
    reached = frozenset(
        c.agent.id
        for c in candidates
        if match(c.agent, stack, explicit=c.explicit, agent_generator_ids=c.generator_ids) is not None
    )
    return StackReach(stack, deployment_object, reached)


async def mark_stale_sessions(
    uow: UnitOfWork,
    replica: str,
    live_session_ids: Collection[str],
    *,
    heartbeat_timeout: float,
    now: datetime | None = None,
) -> None:
    """Record DISCONNECTED the agents this replica holds no session for, and every agent (on any
    replica) not heard from for `heartbeat_timeout` seconds before `now`.

    Run at start (sessions of a previous run of this replica are gone) and by the periodic sweep
    (a replica that died cannot record its agents' disconnects itself).
    """
    now = now or datetime.now(UTC)
    live = set(live_session_ids)
    async with uow:
        recorded = await uow.agent_connections.sessions_on(replica)
        await uow.agent_connections.disconnect([(a, s) for a, s in recorded.items() if s not in live])
        await uow.agent_connections.disconnect_silent(now - timedelta(seconds=heartbeat_timeout))
        await uow.commit()


async def _desired(uow: UnitOfWork, agent: Agent) -> list[tuple[Stack, DeploymentObject]]:
    """Inside a transaction: the stacks reaching the agent with their newest deployment object."""
    if agent.status is not AgentStatus.ACTIVE:
        return []
    generator_ids = await uow.registrations.generator_ids(agent.id)
    stacks = [
        c.stack
        for c in await uow.targeting.stack_candidates(agent)
        if c.stack.desired is not None
        and match(agent, c.stack, explicit=c.explicit, agent_generator_ids=generator_ids) is not None
    ]
    found = await uow.deployment_objects.get_many([stack.desired.id for stack in stacks if stack.desired])
    return [(stack, found[stack.desired.id]) for stack in stacks if stack.desired]


def _newest(reports: Iterable[R], key: Callable[[R], Hashable]) -> list[R]:
    """The newest report per key (the later one on equal times)."""
    newest: dict[Hashable, R] = {}
    for report in reports:
        kept = newest.get(key(report))
        if kept is None or report.at >= kept.at:
            newest[key(report)] = report
    return list(newest.values())
