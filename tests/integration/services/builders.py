"""Builders for service tests: generators, agents, stacks and their relations made through the
services themselves, and a row counter to prove that a refused request wrote nothing."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import func, select

from broker.db import Database
from broker.db import tables as t
from broker.domain.model import ADMIN, Agent, AgentStatus, DeploymentObject, Generator, Principal, Role, Stack
from broker.domain.ports import UnitOfWorkFactory
from broker.services import agents, deployment_objects, generators, stacks, targets


def configmap(name: str, namespace: str = "demo", **data: str) -> str:
    entries = "".join(f"\n  {key}: {value}" for key, value in (data or {"key": "value"}).items())
    metadata = f"metadata:\n  name: {name}\n  namespace: {namespace}\n"
    return f"apiVersion: v1\nkind: ConfigMap\n{metadata}data:{entries}\n"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def as_generator(generator: Generator) -> Principal:
    return Principal(Role.GENERATOR, generator.id, generator.name)


def as_agent(agent: Agent) -> Principal:
    return Principal(Role.AGENT, agent.id, agent.name)


@dataclass
class Builder:
    uow: UnitOfWorkFactory

    async def generator(self, name: str | None = None) -> Generator:
        created = await generators.create_generator(
            self.uow(), ADMIN, name=name or unique("gen"), description="", request_id=None
        )
        return created.resource

    async def agent(
        self,
        name: str | None = None,
        *,
        cluster_name: str = "cluster",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        active: bool = True,
    ) -> Agent:
        created = await agents.create_agent(
            self.uow(),
            ADMIN,
            name=name or unique("agent"),
            cluster_name=cluster_name,
            labels=labels or {},
            annotations=annotations or {},
            status=AgentStatus.ACTIVE if active else AgentStatus.INACTIVE,
            request_id=None,
        )
        return created.resource

    async def stack(
        self,
        owner: Generator | None = None,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> Stack:
        return await stacks.create_stack(
            self.uow(),
            ADMIN,
            name=name or unique("stack"),
            description="",
            generator_id=owner.id if owner else None,
            labels=labels or {},
            annotations=annotations or {},
            request_id=None,
        )

    async def register(self, agent: Agent, generator: Generator) -> None:
        await targets.create_registration(self.uow(), ADMIN, agent.id, generator.id)

    async def target(self, agent: Agent, stack: Stack) -> None:
        await targets.create_target(self.uow(), ADMIN, agent.id, stack.id)

    async def submit(self, stack: Stack, yaml_content: str | None = None) -> DeploymentObject:
        return await deployment_objects.create_deployment_object(
            self.uow(),
            ADMIN,
            stack_id=stack.id,
            yaml_content=yaml_content or configmap(unique("cm")),
            request_id=None,
        )


@dataclass
class RowCounter:
    database: Database

    async def __call__(self) -> dict[str, int]:
        """Rows per table, to compare before and after a refused request."""
        async with self.database.engine.connect() as connection:
            return {
                name: await connection.scalar(select(func.count()).select_from(table))
                for name, table in t.metadata.tables.items()
            }
