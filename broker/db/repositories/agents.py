"""Agents in SQL, with their labels and annotations loaded in bulk (two queries per page, not per agent).

The connection columns are read here but written only by `agent_connections`: an update of an
agent's fields must not overwrite a heartbeat or a connect that committed since the agent was read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Select, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import keyset_after
from broker.db.repositories.labels import AGENT_ANNOTATIONS, AGENT_LABELS, AGENT_METADATA
from broker.db.repositories.registrations import registered_agent_ids
from broker.db.tables import agents
from broker.domain.model import Agent, AgentStatus, ConnectionState
from broker.domain.ports import Position

_ORDER = (agents.c.name, agents.c.cluster_name, agents.c.id)
#: Built once, as every agent connect reads its agent.
_BY_ID = select(agents).where(agents.c.id == bindparam("agent_id"))


def _columns(agent: Agent) -> dict[str, Any]:
    """The fields the admin manages."""
    return {
        "name": agent.name,
        "cluster_name": agent.cluster_name,
        "status": agent.status.value,
        "updated_at": agent.updated_at,
        "deleted_at": agent.deleted_at,
    }


async def load_agents(
    connection: AsyncConnection, query: Select[Any], params: Mapping[str, Any] | None = None
) -> list[tuple[Agent, Any]]:
    """Run a query selecting agent rows (with `params` for its bind parameters); each agent (labels
    and annotations included) comes with its row, for any extra columns."""
    rows = (await connection.execute(query, params)).all()
    ids = [row.id for row in rows]
    labels, annotations = await AGENT_METADATA.load(connection, ids)
    return [(_agent(row, labels[row.id], annotations[row.id]), row) for row in rows]


def _agent(row: Any, labels: Mapping[str, str], annotations: Mapping[str, str]) -> Agent:
    return Agent(
        id=row.id,
        name=row.name,
        cluster_name=row.cluster_name,
        labels=labels,
        annotations=annotations,
        status=AgentStatus(row.status),
        connection_state=ConnectionState(row.connection_state),
        last_heartbeat_at=row.last_heartbeat_at,
        kubernetes_reachable=row.kubernetes_reachable,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


class SqlAgentRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, agent: Agent) -> None:
        await self._connection.execute(
            insert(agents).values(
                id=agent.id,
                created_at=agent.created_at,
                connection_state=agent.connection_state.value,
                last_heartbeat_at=agent.last_heartbeat_at,
                kubernetes_reachable=agent.kubernetes_reachable,
                **_columns(agent),
            )
        )
        await AGENT_LABELS.add(self._connection, agent.id, agent.labels)
        await AGENT_ANNOTATIONS.add(self._connection, agent.id, agent.annotations)

    async def get(self, agent_id: str) -> Agent | None:
        found = await load_agents(self._connection, _BY_ID, {"agent_id": agent_id})
        return found[0][0] if found else None

    async def labels_of(self, agent_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        return await AGENT_LABELS.load(self._connection, agent_ids)

    async def update(self, agent: Agent) -> None:
        await self._connection.execute(
            update(agents).where(agents.c.id == agent.id).values(**_columns(agent))
        )
        await AGENT_LABELS.replace(self._connection, agent.id, agent.labels)
        await AGENT_ANNOTATIONS.replace(self._connection, agent.id, agent.annotations)

    async def list_page(
        self,
        *,
        after: Position,
        limit: int,
        show_deleted: bool,
        labels: Mapping[str, str],
        registered_with: str | None = None,
    ) -> list[Agent]:
        conditions = [keyset_after(_ORDER, after), *AGENT_LABELS.has_all(agents.c.id, labels)]
        if not show_deleted:
            conditions.append(agents.c.deleted_at.is_(None))
        if registered_with is not None:
            conditions.append(agents.c.id.in_(registered_agent_ids(registered_with)))
        query = select(agents).where(*conditions).order_by(*_ORDER).limit(limit)
        return [agent for agent, _ in await load_agents(self._connection, query)]
