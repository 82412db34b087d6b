"""The candidates of the targeting rule, narrowed in SQL by the label and annotation indexes.

`broker.domain.targeting.match` defines when a stack reaches an agent; these queries must never
leave out a pair it would accept, and they leave out nearly everything it would refuse, so the
rule runs in Python over a handful of rows even at 10,000 agents. Each direction is one query for
the candidates plus bulk loads of their labels, annotations (and, for agents, registrations).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.agents import load_agents
from broker.db.repositories.common import chunks
from broker.db.repositories.labels import AGENT_ANNOTATIONS, AGENT_LABELS, STACK_ANNOTATIONS, STACK_LABELS
from broker.db.repositories.registrations import registered_agent_ids
from broker.db.repositories.stacks import STACK_ROWS, load_stacks
from broker.db.tables import agents, registrations, stacks, targets
from broker.domain.model import Agent, AgentStatus, Stack
from broker.domain.ports import AgentCandidate, AgentStackCandidates, StackCandidate

_LIVE_TARGET = targets.c.deleted_at.is_(None)
_LIVE_REGISTRATION = registrations.c.deleted_at.is_(None)


def _stack_candidates_query() -> Select[Any]:
    """The candidate stacks of the agent bound to `agent_id`, each with whether it targets the agent
    explicitly. Built once: every agent connect runs it, and building and keying a statement this
    size costs more than running it."""
    agent_id = bindparam("agent_id", type_=String())
    explicit = select(targets.c.stack_id).where(targets.c.agent_id == agent_id, _LIVE_TARGET)
    registered = select(registrations.c.generator_id).where(
        registrations.c.agent_id == agent_id, _LIVE_REGISTRATION
    )
    shared = and_(
        or_(stacks.c.generator_id.is_(None), stacks.c.generator_id.in_(registered)),
        or_(
            stacks.c.id.in_(STACK_LABELS.shared_with(AGENT_LABELS, agent_id)),
            stacks.c.id.in_(STACK_ANNOTATIONS.shared_with(AGENT_ANNOTATIONS, agent_id)),
        ),
    )
    return (
        STACK_ROWS.add_columns(stacks.c.id.in_(explicit).label("explicit"))
        .where(stacks.c.deleted_at.is_(None), or_(stacks.c.id.in_(explicit), shared))
        .order_by(stacks.c.name, stacks.c.id)
    )


_STACK_CANDIDATES = _stack_candidates_query()


class SqlTargetingQueries:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def agent_candidates(self, stack: Stack) -> list[AgentCandidate]:
        explicit = select(targets.c.agent_id).where(targets.c.stack_id == stack.id, _LIVE_TARGET)
        shared: ColumnElement[bool] = or_(
            agents.c.id.in_(AGENT_LABELS.shared_with(STACK_LABELS, stack.id)),
            agents.c.id.in_(AGENT_ANNOTATIONS.shared_with(STACK_ANNOTATIONS, stack.id)),
        )
        if stack.generator_id is not None:
            shared = and_(agents.c.id.in_(registered_agent_ids(stack.generator_id)), shared)
        query = (
            select(agents, agents.c.id.in_(explicit).label("explicit"))
            .where(
                agents.c.deleted_at.is_(None),
                agents.c.status == AgentStatus.ACTIVE.value,
                or_(agents.c.id.in_(explicit), shared),
            )
            .order_by(agents.c.name, agents.c.cluster_name, agents.c.id)
        )
        found = await load_agents(self._connection, query)
        generator_ids = await self._generator_ids([agent.id for agent, _ in found])
        return [
            AgentCandidate(agent, bool(row.explicit), frozenset(generator_ids[agent.id]))
            for agent, row in found
        ]

    async def stack_candidates(self, agent: Agent) -> list[StackCandidate]:
        return [
            StackCandidate(stack, bool(row.explicit))
            for stack, row in await load_stacks(self._connection, _STACK_CANDIDATES, {"agent_id": agent.id})
        ]

    async def stack_candidates_of(self, agent_ids: Sequence[str]) -> dict[str, AgentStackCandidates]:
        # In bulk the indexes do not pay: one query for the agents, one for their explicit targets
        # and registrations, one for every live stack, then an index of label and annotation pairs
        # in Python, so each agent meets only the stacks it shares a pair with.
        found: list[Agent] = []
        for batch in chunks(agent_ids):
            found += [
                agent
                for agent, _ in await load_agents(
                    self._connection, select(agents).where(agents.c.id.in_(batch))
                )
            ]
        ids = [agent.id for agent in found]
        generator_ids = await self._generator_ids(ids)
        explicit: defaultdict[str, set[str]] = defaultdict(set)
        for batch in chunks(ids):
            query = select(targets.c.agent_id, targets.c.stack_id).where(
                targets.c.agent_id.in_(batch), _LIVE_TARGET
            )
            for agent_id, stack_id in await self._connection.execute(query):
                explicit[agent_id].add(stack_id)
        live = [
            stack
            for stack, _ in await load_stacks(
                self._connection,
                STACK_ROWS.where(stacks.c.deleted_at.is_(None)).order_by(stacks.c.name, stacks.c.id),
            )
        ]
        by_id = {stack.id: stack for stack in live}
        by_label: defaultdict[tuple[str, str], list[Stack]] = defaultdict(list)
        by_annotation: defaultdict[tuple[str, str], list[Stack]] = defaultdict(list)
        for stack in live:
            for pair in stack.labels.items():
                by_label[pair].append(stack)
            for pair in stack.annotations.items():
                by_annotation[pair].append(stack)
        order = {stack.id: position for position, stack in enumerate(live)}
        result = {}
        for agent in found:
            chosen = {stack_id for stack_id in explicit[agent.id] if stack_id in by_id}
            for pair in agent.labels.items():
                chosen.update(stack.id for stack in by_label.get(pair, ()))
            for pair in agent.annotations.items():
                chosen.update(stack.id for stack in by_annotation.get(pair, ()))
            result[agent.id] = AgentStackCandidates(
                agent,
                frozenset(generator_ids[agent.id]),
                [
                    StackCandidate(by_id[stack_id], stack_id in explicit[agent.id])
                    for stack_id in sorted(chosen, key=order.__getitem__)
                ],
            )
        return result

    async def _generator_ids(self, agent_ids: Sequence[str]) -> defaultdict[str, set[str]]:
        found: defaultdict[str, set[str]] = defaultdict(set)
        for batch in chunks(agent_ids):
            query = select(registrations.c.agent_id, registrations.c.generator_id).where(
                registrations.c.agent_id.in_(batch), _LIVE_REGISTRATION
            )
            for agent_id, generator_id in await self._connection.execute(query):
                found[agent_id].add(generator_id)
        return found
