"""Each agent's connection in SQL: the columns of its row that only agent sessions write.

Statements about a session name it (`session_id`), so a late write from a session that ended on
one replica cannot undo what the agent's newer session, maybe on another replica, recorded.
Everything here is written a batch at a time (the session layer writes behind): connects, Hellos
and heartbeats as one executemany statement each, disconnects as bounded IN lists, so a reconnect
storm of thousands of agents costs a few statements per batch rather than a few per agent. The
statements are built once, at import: building and keying one costs more than running it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import String, bindparam, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import chunks
from broker.db.tables import UtcDateTime, agents
from broker.domain.deployments import Heartbeat, Hello, SessionOpened
from broker.domain.model import ConnectionState

_CONNECTED = agents.c.connection_state == ConnectionState.CONNECTED.value

_AT = bindparam("b_at", type_=UtcDateTime())
_CONNECT = (
    update(agents)
    .where(
        agents.c.id == bindparam("b_agent_id"),
        agents.c.deleted_at.is_(None),
        # Strictly older: the same session recorded twice (the sweep repairing a lost record)
        # changes nothing the second time.
        or_(agents.c.connected_at.is_(None), agents.c.connected_at < _AT),
    )
    .values(
        connection_state=ConnectionState.CONNECTED.value,
        session_id=bindparam("b_session_id"),
        replica=bindparam("b_replica"),
        peer=bindparam("b_peer"),
        connected_at=_AT,
    )
)
_RECORD_HELLO = (
    update(agents)
    .where(agents.c.id == bindparam("b_agent_id"), agents.c.session_id == bindparam("b_session_id"))
    .values(agent_version=bindparam("b_agent_version"))
)
_HEARTBEAT = (
    update(agents)
    .where(
        agents.c.id == bindparam("b_agent_id"),
        or_(agents.c.last_heartbeat_at.is_(None), agents.c.last_heartbeat_at < _AT),
    )
    .values(last_heartbeat_at=_AT, kubernetes_reachable=bindparam("b_reachable"))
)
_CURRENT_SESSIONS = select(agents.c.id, agents.c.session_id).where(
    agents.c.id.in_(bindparam("agent_ids", expanding=True, type_=String()))
)


class SqlAgentConnectionRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def connect(self, sessions: Sequence[SessionOpened]) -> list[SessionOpened]:
        if not sessions:
            return []
        newest: dict[str, SessionOpened] = {}
        for session in sessions:
            if session.agent_id not in newest or newest[session.agent_id].at < session.at:
                newest[session.agent_id] = session
        # executemany has no per-row count: which sessions took is read before and after.
        before = await self._current_sessions(list(newest))
        await self._connection.execute(
            _CONNECT,
            [
                {
                    "b_agent_id": s.agent_id,
                    "b_session_id": s.session_id,
                    "b_replica": s.replica,
                    "b_peer": s.peer,
                    "b_at": s.at,
                }
                for s in newest.values()
            ],
        )
        after = await self._current_sessions(list(newest))
        return [
            s
            for s in newest.values()
            if after.get(s.agent_id) == s.session_id and before.get(s.agent_id) != s.session_id
        ]

    async def record_hellos(self, hellos: Sequence[Hello]) -> list[Hello]:
        if not hellos:
            return []
        await self._connection.execute(
            _RECORD_HELLO,
            [
                {"b_agent_id": h.agent_id, "b_session_id": h.session_id, "b_agent_version": h.agent_version}
                for h in hellos
            ],
        )
        current = await self._current_sessions([h.agent_id for h in hellos])
        return [h for h in hellos if current.get(h.agent_id) == h.session_id]

    async def _current_sessions(self, agent_ids: Sequence[str]) -> dict[str, str | None]:
        """Agent id -> its current session id, for those of `agent_ids` that exist."""
        found: dict[str, str | None] = {}
        for batch in chunks(agent_ids):
            rows = await self._connection.execute(_CURRENT_SESSIONS, {"agent_ids": batch})
            found.update({ident: session for ident, session in rows})
        return found

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

    async def disconnect_silent(self, before: datetime, *, except_replica: str) -> list[str]:
        return list(
            await self._connection.scalars(
                update(agents)
                .where(
                    _CONNECTED,
                    agents.c.replica.is_distinct_from(except_replica),
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
        await self._connection.execute(
            _HEARTBEAT,
            [
                {"b_agent_id": beat.agent_id, "b_at": beat.at, "b_reachable": beat.kubernetes_reachable}
                for beat in heartbeats
            ],
        )
