"""The SQL that narrows targeting candidates must agree with the targeting rule, and the number of
queries a list or a targeting answer costs must not grow with the number of rows."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from sqlalchemy import event

from broker.db import Database
from broker.domain.model import ADMIN, Agent, AgentStatus, ConnectionState, Registration, Stack, Target
from broker.domain.targeting import match
from broker.services import agents, stacks, targeting

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LONG_VALUE = "v" * 4000  # longer than a PostgreSQL B-tree entry may be: indexed by digest


def _agent(rng: random.Random, index: int) -> Agent:
    return Agent(
        id=str(uuid.uuid4()),
        name=f"agent-{index:03d}",
        cluster_name="c",
        labels={key: rng.choice("ab") for key in ("env", "tier", "region") if rng.random() < 0.5},
        annotations={"owner": rng.choice(["x", "y", LONG_VALUE])} if rng.random() < 0.5 else {},
        status=AgentStatus.ACTIVE if rng.random() < 0.8 else AgentStatus.INACTIVE,
        connection_state=ConnectionState.NEVER_CONNECTED,
        last_heartbeat_at=None,
        kubernetes_reachable=False,
        created_at=NOW,
        updated_at=NOW,
        deleted_at=NOW if rng.random() < 0.1 else None,
    )


def _stack(rng: random.Random, index: int, generator_ids: list[str]) -> Stack:
    return Stack(
        id=str(uuid.uuid4()),
        name=f"stack-{index:03d}",
        description="",
        generator_id=rng.choice([None, *generator_ids]),
        labels={key: rng.choice("ab") for key in ("env", "tier") if rng.random() < 0.5},
        annotations={"owner": rng.choice(["x", "y", LONG_VALUE])} if rng.random() < 0.4 else {},
        created_at=NOW,
        updated_at=NOW,
        deleted_at=NOW if rng.random() < 0.1 else None,
    )


async def test_candidates_never_miss_a_match_and_carry_the_right_facts(database: Database, build):
    rng = random.Random(20300101)
    generator_ids = [(await build.generator()).id for _ in range(3)]
    all_agents = [_agent(rng, i) for i in range(40)]
    all_stacks = [_stack(rng, i, generator_ids) for i in range(25)]
    registered = {(a.id, g) for a in all_agents for g in generator_ids if rng.random() < 0.4}
    targeted = {(a.id, s.id) for a in all_agents for s in all_stacks if rng.random() < 0.05}
    async with database.uow_factory()() as uow:
        for agent in all_agents:
            await uow.agents.add(agent)
        for stack in all_stacks:
            await uow.stacks.add(stack)
        for agent_id, generator_id in registered:
            await uow.registrations.add(Registration(agent_id, generator_id, NOW))
        for agent_id, stack_id in targeted:
            await uow.targets.add(Target(agent_id, stack_id, NOW))
        await uow.commit()

    def expected(agent: Agent, stack: Stack):
        generators_of_agent = {g for a, g in registered if a == agent.id}
        return match(
            agent, stack, explicit=(agent.id, stack.id) in targeted, agent_generator_ids=generators_of_agent
        )

    async with database.uow_factory()() as uow:
        for stack in all_stacks:
            found = {
                c.agent.id: match(c.agent, stack, explicit=c.explicit, agent_generator_ids=c.generator_ids)
                for c in await uow.targeting.agent_candidates(stack)
            }
            wanted = {a.id: expected(a, stack) for a in all_agents if expected(a, stack)}
            assert {k: v for k, v in found.items() if v} == wanted, stack.name
        for agent in all_agents:
            generators_of_agent = await uow.registrations.generator_ids(agent.id)
            found = {
                c.stack.id: match(
                    agent, c.stack, explicit=c.explicit, agent_generator_ids=generators_of_agent
                )
                for c in await uow.targeting.stack_candidates(agent)
            }
            wanted = {s.id: expected(agent, s) for s in all_stacks if expected(agent, s)}
            assert {k: v for k, v in found.items() if v} == wanted, agent.name
    assert any(m for a in all_agents for s in all_stacks if (m := expected(a, s)) and m.shared_annotations)


@contextmanager
def _counting(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany):
        statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)


async def test_query_counts_do_not_grow_with_the_rows_returned(database: Database, uow_factory, build):
    generator = await build.generator()
    stack = await build.stack(generator, labels={"env": "prod"}, annotations={"team": "a"})

    async def costs() -> list[int]:
        counts = []
        for call in (
            lambda: targeting.list_stack_agents(uow_factory(), ADMIN, stack.id),
            lambda: agents.list_agents(uow_factory(), ADMIN, page_size=1000, page_token=""),
            lambda: stacks.list_stacks(uow_factory(), ADMIN, page_size=1000, page_token=""),
        ):
            with _counting(database) as statements:
                await call()
            counts.append(len(statements))
        return counts

    async def add_agents(count: int) -> None:
        for _ in range(count):
            agent = await build.agent(labels={"env": "prod"}, annotations={"team": "a"})
            await build.register(agent, generator)
            await build.stack(generator, labels={"env": "prod"})

    await add_agents(2)
    few = await costs()
    await add_agents(12)
    many = await costs()
    assert few == many
    reached = await targeting.list_stack_agents(uow_factory(), ADMIN, stack.id)
    assert len(reached) == 14
