"""Agent sessions as the database sees them: connections, what each agent should hold, what it reports.

The stream layer (`broker.stream`) authenticates the agent and drives the protocol; these use cases
are its data source. They record the agent's connection (only its newest session may change it, so
replicas do not fight over an agent that moved), read what the agent should hold (the targeting rule
of `services.targeting` over live stacks, nothing for an INACTIVE or deleted agent), and store what
agents report, in batches, keeping the newest report per agent x stack.

What an agent should hold is read as stacks carrying a reference to their newest deployment object,
not the deployment objects themselves: deployment objects are immutable, so the stream layer keeps
the ones it has seen and loads (`deployment_objects`) only those it has not, once per replica.

No authorisation here: the caller has authenticated the agent itself. Nothing here records a
`Change` either: connection writes happen at every connect and heartbeat, and fanning them out to
every session would cost far more than it tells. Events are written, in the same transactions:
agent.connected and agent.disconnected, deployment.applied and deployment.failed for every ack and
nack, and health.changed when an agent x stack's health state differs from the one stored.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from broker.domain.deployments import (
    ApplyReport,
    HealthReport,
    HealthState,
    Heartbeat,
    Hello,
    Report,
    SessionClosed,
    SessionOpened,
)
from broker.domain.diagnostics import Diagnostics
from broker.domain.events import Event, EventType
from broker.domain.model import Agent, ConnectionState, DeploymentObject, Principal, Role, Stack
from broker.domain.ports import UnitOfWork
from broker.services import access, targeting
from broker.services.eventing import draft, emit_many
from brokkr_common.errors import not_found

R = TypeVar("R", ApplyReport, HealthReport, Heartbeat)


@dataclass(frozen=True)
class SessionStart:
    """What a new session starts from: the agent, what it should hold, what it nacked last, and
    the diagnostics requests waiting for it."""

    agent: Agent
    #: Each stack reaching the agent that has a deployment object (`Stack.desired`), by name.
    desired: list[Stack]
    #: Stack id -> the deployment object the agent last nacked there, not to be resent.
    parked: dict[str, str]
    #: Diagnostics requests still to be sent or answered, oldest first.
    diagnostics: list[Diagnostics] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class StackReach:
    """A stack as sessions must see it now."""

    #: None if there is no such stack. `desired` refers to its newest deployment object (a deletion
    #: marker once the stack is deleted).
    stack: Stack | None
    #: The ACTIVE agents the stack reaches; none once it is deleted.
    agent_ids: frozenset[str]


async def start_session(uow: UnitOfWork, agent_id: str) -> SessionStart:
    """What a new session of the agent starts from: NOT_FOUND for an unknown agent,
    FAILED_PRECONDITION (AGENT_DELETED) for a deleted one.

    It only reads: the stream layer records the session (`SessionOpened`, with `record_reports`)
    once it is live, in a batch with others, so that a reconnect storm costs one write
    transaction per batch instead of one per agent.
    """
    async with uow:
        agent = await uow.agents.get(agent_id)
        if agent is None:
            raise not_found("agent", agent_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        desired = await _desired(uow, agent)
        parked = await uow.deployment_statuses.parked(agent_id)
        waiting = await uow.diagnostics.open_for_agent(agent_id, datetime.now(UTC))
    return SessionStart(
        dataclasses.replace(agent, connection_state=ConnectionState.CONNECTED), desired, parked, waiting
    )


async def record_reports(uow: UnitOfWork, reports: Sequence[Report]) -> None:
    """Store a batch of reports from any number of agents in one transaction.

    Of several reports of one kind about the same agent x stack (or agent, for heartbeats and
    hellos) only the newest counts, except that an ack followed by a nack keeps both (what runs,
    what failed since); a report older than the stored one changes nothing.

    Sessions come first and last: the sessions opened are recorded first (each session's
    Hello and reports need it to be the agent's current one), then hellos (what an agent held
    when its session began is older than what it reported on it), then the reports, and the
    sessions closed last. An opened session older than the agent's recorded one (a late batch
    from another replica) changes nothing.
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
    hellos = _newest((r for r in reports if isinstance(r, Hello)), lambda r: r.agent_id)
    opened = [r for r in reports if isinstance(r, SessionOpened)]
    closed = [(r.agent_id, r.session_id) for r in reports if isinstance(r, SessionClosed)]
    async with uow:
        connected = await uow.agent_connections.connect(opened)
        await uow.deployment_statuses.record_held(await uow.agent_connections.record_hellos(hellos))
        applied = await uow.deployment_statuses.record_applies(applies)
        changed = await uow.deployment_statuses.record_health(health)
        await uow.agent_connections.record_heartbeats(heartbeats)
        disconnected = await uow.agent_connections.disconnect(closed)
        labels = await uow.stacks.labels_of(
            list({r.stack_id for r in applied} | {r.stack_id for r, _ in changed})
        )
        agent_labels = await uow.agents.labels_of([s.agent_id for s in connected])
        drafts = [
            draft(
                EventType.AGENT_CONNECTED,
                actor=_agent(session.agent_id),
                agent_id=session.agent_id,
                labels=agent_labels[session.agent_id],
                payload={"session_id": session.session_id, "replica": session.replica, "peer": session.peer},
                at=session.at,
            )
            for session in connected
        ]
        drafts += [
            draft(
                EventType.DEPLOYMENT_APPLIED if report.succeeded else EventType.DEPLOYMENT_FAILED,
                actor=_agent(report.agent_id),
                agent_id=report.agent_id,
                stack_id=report.stack_id,
                deployment_object_id=report.deployment_object_id,
                labels=labels[report.stack_id],
                payload=_apply_payload(report),
                at=report.at,
            )
            for report in applied
        ]
        drafts += [
            draft(
                EventType.HEALTH_CHANGED,
                actor=_agent(report.agent_id),
                agent_id=report.agent_id,
                stack_id=report.stack_id,
                deployment_object_id=report.deployment_object_id,
                labels=labels[report.stack_id],
                payload={
                    "health": report.health.value,
                    "previous": previous,
                    "unhealthy_resources": [
                        {"key": r.key, "health": r.health.value, "reason": r.reason}
                        for r in report.resources
                        if r.health is not HealthState.HEALTHY
                    ][:_MAX_LISTED],
                },
                at=report.at,
            )
            for report, previous in changed
        ]
        drafts += await _disconnected(uow, disconnected, "stream ended")
        await emit_many(uow, drafts)
        await uow.commit()


async def desired_for_agent(uow: UnitOfWork, agent_id: str) -> list[Stack] | None:
    """What the agent should hold now, as in `SessionStart.desired`; None if it was deleted."""
    async with uow:
        agent = await uow.agents.get(agent_id)
        if agent is None or agent.deleted_at is not None:
            return None
        return await _desired(uow, agent)


async def desired_for_agents(uow: UnitOfWork, agent_ids: Sequence[str]) -> dict[str, list[Stack] | None]:
    """`desired_for_agent` for many agents, in a few queries whatever their number (the sweep)."""
    async with uow:
        found = await uow.targeting.stack_candidates_of(agent_ids)
    desired: dict[str, list[Stack] | None] = {}
    for agent_id in agent_ids:
        candidates = found.get(agent_id)
        if candidates is None or candidates.agent.deleted_at is not None:
            desired[agent_id] = None
            continue
        reached = targeting.reaching(candidates.agent, candidates.stacks, candidates.generator_ids)
        desired[agent_id] = [stack for stack, _ in reached if stack.desired is not None]
    return desired


async def stack_reach(uow: UnitOfWork, stack_id: str) -> StackReach:
    """The stack, with a reference to its newest deployment object, and the agents it reaches now."""
    async with uow:
        stack = await uow.stacks.get(stack_id)
        if stack is None:
            return StackReach(None, frozenset())
        reached = await targeting.agents_reached(uow, stack)
    return StackReach(stack, frozenset(candidate.agent.id for candidate, _ in reached))


async def stack(uow: UnitOfWork, stack_id: str) -> Stack | None:
    """The stack, with a reference to its newest deployment object; None if there is none."""
    async with uow:
        return await uow.stacks.get(stack_id)


async def deployment_objects(uow: UnitOfWork, ids: Sequence[str]) -> Mapping[str, DeploymentObject]:
    """The deployment objects with these ids, resources included; unknown ids are left out."""
    if not ids:
        return {}
    async with uow:
        return await uow.deployment_objects.get_many(ids)


async def mark_stale_sessions(
    uow: UnitOfWork,
    replica: str,
    live_session_ids: Collection[str],
    *,
    heartbeat_timeout: float,
    now: datetime | None = None,
) -> set[str]:
    """Record DISCONNECTED the agents this replica holds no session for, and every agent of another
    replica not heard from for `heartbeat_timeout` seconds before `now`; return the ids of the
    sessions recorded CONNECTED to this replica (before this call), so that the caller can record
    again a live session whose record was lost.

    This replica's own live sessions are never judged by their recorded heartbeats: each closes
    itself after `heartbeat_timeout` of silence, and their records are written behind, so in a
    reconnect storm a live agent's heartbeat may reach the database later than the timeout.

    `live_session_ids` is read after the database is: pass a collection that the stream layer
    keeps up to date, so a session recorded while this runs counts as live.

    Run at start (sessions of a previous run of this replica are gone) and by the periodic sweep
    (a replica that died cannot record its agents' disconnects itself).
    """
    now = now or datetime.now(UTC)
    async with uow:
        recorded = await uow.agent_connections.sessions_on(replica)
        # Read now, not before the query: a session recorded meanwhile is live by then.
        lost = await uow.agent_connections.disconnect(
            [(a, s) for a, s in recorded.items() if s not in live_session_ids]
        )
        silent = await uow.agent_connections.disconnect_silent(
            now - timedelta(seconds=heartbeat_timeout), except_replica=replica
        )
        # Events last: on PostgreSQL the first one takes the event log's lock until commit.
        await emit_many(
            uow,
            await _disconnected(uow, lost, "session lost by its replica")
            + await _disconnected(uow, silent, "heartbeats stopped"),
        )
        await uow.commit()
    return set(recorded.values())


async def _desired(uow: UnitOfWork, agent: Agent) -> list[Stack]:
    """Inside a transaction: the stacks reaching the agent that have a deployment object."""
    return [stack for stack, _ in await targeting.stacks_reaching(uow, agent) if stack.desired is not None]


#: At most this many resources are listed in an event's payload; the API has them all.
_MAX_LISTED = 20


def _agent(agent_id: str) -> Principal:
    """The agent as the actor of what it reports."""
    return Principal(Role.AGENT, agent_id, agent_id)


async def _disconnected(uow: UnitOfWork, agent_ids: Sequence[str], why: str) -> list[Event]:
    """The `agent.disconnected` events of these agents."""
    if not agent_ids:
        return []
    labels = await uow.agents.labels_of(agent_ids)
    return [
        draft(
            EventType.AGENT_DISCONNECTED,
            actor=None,
            agent_id=agent_id,
            labels=labels[agent_id],
            payload={"reason": why},
        )
        for agent_id in agent_ids
    ]


def _apply_payload(report: ApplyReport) -> dict[str, object]:
    if report.succeeded:
        outcomes: dict[str, int] = {}
        for resource in report.resources:
            outcomes[resource.outcome.lower()] = outcomes.get(resource.outcome.lower(), 0) + 1
        return {"removed": report.deployment_object_id is None, "resources": outcomes}
    return {
        "code": report.error_code,
        "message": report.error_message,
        "failed_resources": [
            {"key": r.key, "message": r.message} for r in report.resources if r.outcome == "FAILED"
        ][:_MAX_LISTED],
    }


def _newest(reports: Iterable[R], key: Callable[[R], Hashable]) -> list[R]:
    """The newest report per key (the later one on equal times)."""
    newest: dict[Hashable, R] = {}
    for report in reports:
        kept = newest.get(key(report))
        if kept is None or report.at >= kept.at:
            newest[key(report)] = report
    return list(newest.values())
