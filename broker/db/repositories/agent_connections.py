"""Each agent's connection in SQL: the columns of its row that only agent sessions write.

Statements about a session name it (`session_id`), so a late write from a session that ended on
one replica cannot undo what the agent's newer session, maybe on another replica, recorded.
Disconnects and heartbeats are executemany statements: one round trip for a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import bindparam, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import chunks
from broker.db.tables import UtcDateTime, agents
from broker.domain.deployments import Heartbeat
from broker.domain.model import ConnectionState

_CONNECTED = agents.c.connection_state == ConnectionState.CONNECTED.value


class SqlAgentConnectionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def connect(self, agent_id: str, *, session_id: str, replica: str, peer: str, at: datetime) -> bool:
        result = await self._connection.execute(
            update(agents)
            .where(
                agents.c.id == agent_id,
                agents.c.deleted_at.is_(None),
                # Strictly older: the same session recorded twice (the sweep repairing a lost
                # record) changes nothing the second time.
                or_(agents.c.connected_at.is_(None), agents.c.connected_at < at),
            )
            .values(
                connection_state=ConnectionState.CONNECTED.value,
                session_id=session_id,
                replica=replica,
                peer=peer,
                connected_at=at,
            )
        )
        return result.rowcount == 1

    async def record_hello(self, agent_id: str, session_id: str, agent_version: str) -> bool:
        result = await self._connection.execute(
            update(agents)
            .where(agents.c.id == agent_id, agents.c.session_id == session_id)
            .values(agent_version=agent_version)
        )
        return result.rowcount == 1

    async def disconnect(self, sessions: Sequence[tuple[str, str]]) -> list[str]:
        disconnected: list[str] = []
        for batch in chunks(list(sessions)):
            disconnected += await self._connection.scalars(
                update(agents)
                .where(tuple_(agents.c.id, agents.c.session_id).in_(batch), _CONNECTED)
                .values(connection_state=ConnectionState.DISCONNECTED.value)
                .returning(agents.c.id)
            )
        return disconnected

    async def sessions_on(self, replica: str) -> dict[str, str]:
        rows = await self._connection.execute(
            select(agents.c.id, agents.c.session_id).where(_CONNECTED, agents.c.replica == replica)
        )
        return {agent_id: session_id for agent_id, session_id in rows}

    async def disconnect_silent(self, before: datetime) -> list[str]:
        return list(
            await self._connection.scalars(
                update(agents)
                .where(
                    _CONNECTED,
                    agents.c.connected_at < before,
                    or_(agents.c.last_heartbeat_at.is_(None), agents.c.last_heartbeat_at < before),
                )
                .values(connection_state=ConnectionState.DISCONNECTED.value)
                .returning(agents.c.id)
            )
        )

    async def record_heartbeats(self, heartbeats: Sequence[Heartbeat]) -> None:
        if not heartbeats:
            return
        at = bindparam("b_at", type_=UtcDateTime())
        await self._connection.execute(
            update(agents)
            .where(
                agents.c.id == bindparam("b_agent_id"),
                or_(agents.c.last_heartbeat_at.is_(None), agents.c.last_heartbeat_at < at),
            )
            .values(last_heartbeat_at=at, kubernetes_reachable=bindparam("b_reachable")),
            [
                {"b_agent_id": beat.agent_id, "b_at": beat.at, "b_reachable": beat.kubernetes_reachable}
                for beat in heartbeats
            ],
        )
