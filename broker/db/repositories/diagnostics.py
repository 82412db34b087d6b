"""Diagnostics requests in SQL.

Every state change is a conditional UPDATE on the row's current state, so replicas and sweeps
racing over one request (a result arriving as the request expires, two sweeps expiring at once)
settle on one outcome without locks: whichever write lands first wins, the other changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.tables import diagnostics
from broker.domain.diagnostics import (
    Diagnostics,
    DiagnosticsError,
    DiagnosticsOptions,
    DiagnosticsState,
    position_time,
)
from broker.domain.ports import Position

_OPEN = (DiagnosticsState.PENDING.value, DiagnosticsState.SENT.value)
#: The requests open and unexpired at `now`, oldest first; then only those of the agent bound to
#: `agent_id`. Built once: every agent connect runs the second.
_OPEN_AT = (
    select(diagnostics)
    .where(
        diagnostics.c.state.in_(_OPEN),
        diagnostics.c.expires_at > bindparam("now", type_=diagnostics.c.expires_at.type),
    )
    .order_by(diagnostics.c.requested_at, diagnostics.c.id)
)
_OPEN_FOR_AGENT_AT = _OPEN_AT.where(diagnostics.c.agent_id == bindparam("agent_id"))
_FINISHED = (
    DiagnosticsState.COMPLETED.value,
    DiagnosticsState.FAILED.value,
    DiagnosticsState.EXPIRED.value,
)


class SqlDiagnosticsRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def add(self, request: Diagnostics) -> None:
        await self._connection.execute(
            insert(diagnostics).values(
                id=request.id,
                agent_id=request.agent_id,
                stack_id=request.stack_id,
                log_tail_lines=request.options.log_tail_lines,
                max_log_bytes=request.options.max_log_bytes,
                include_previous_logs=request.options.include_previous_logs,
                state=request.state.value,
                requested_at=request.requested_at,
                sent_at=request.sent_at,
                completed_at=request.completed_at,
                expires_at=request.expires_at,
            )
        )

    async def get(self, diagnostics_id: str) -> Diagnostics | None:
        row = (
            await self._connection.execute(select(diagnostics).where(diagnostics.c.id == diagnostics_id))
        ).first()
        return _diagnostics(row, with_report=True) if row is not None else None

    async def list_page(
        self, *, after: Position, limit: int, agent_id: str | None = None, stack_id: str | None = None
    ) -> list[Diagnostics]:
        conditions: list[ColumnElement[bool]] = []
        if after:
            micros, last_id = after
            requested = position_time(int(micros))
            conditions.append(
                or_(
                    diagnostics.c.requested_at < requested,
                    and_(diagnostics.c.requested_at == requested, diagnostics.c.id < last_id),
                )
            )
        if agent_id is not None:
            conditions.append(diagnostics.c.agent_id == agent_id)
        if stack_id is not None:
            conditions.append(diagnostics.c.stack_id == stack_id)
        columns = [column for column in diagnostics.c if column.name != "report"]
        query = (
            select(*columns)
            .where(*conditions)
            .order_by(diagnostics.c.requested_at.desc(), diagnostics.c.id.desc())
            .limit(limit)
        )
        return [_diagnostics(row, with_report=False) for row in await self._connection.execute(query)]

    async def open_for_agent(self, agent_id: str | None, now: datetime) -> list[Diagnostics]:
        if agent_id is None:
            rows = await self._connection.execute(_OPEN_AT, {"now": now})
        else:
            rows = await self._connection.execute(_OPEN_FOR_AGENT_AT, {"agent_id": agent_id, "now": now})
        return [_diagnostics(row, with_report=False) for row in rows]

    async def mark_sent(self, diagnostics_id: str, at: datetime) -> bool:
        result = await self._connection.execute(
            update(diagnostics)
            .where(diagnostics.c.id == diagnostics_id, diagnostics.c.state.in_(_OPEN))
            .values(state=DiagnosticsState.SENT.value, sent_at=at)
        )
        return bool(result.rowcount)

    async def finish(
        self,
        diagnostics_id: str,
        *,
        agent_id: str,
        state: DiagnosticsState,
        at: datetime,
        expires_at: datetime,
        error: DiagnosticsError | None = None,
        report: dict[str, Any] | None = None,
        answered: bool = False,
    ) -> bool:
        # An answer proves the request was sent, even if recording that lost the race to it.
        sent = {"sent_at": func.coalesce(diagnostics.c.sent_at, at)} if answered else {}
        result = await self._connection.execute(
            update(diagnostics)
            .where(
                diagnostics.c.id == diagnostics_id,
                diagnostics.c.agent_id == agent_id,
                diagnostics.c.state.in_(_OPEN),
            )
            .values(
                state=state.value,
                completed_at=at,
                expires_at=expires_at,
                report=report,
                **sent,
                **_error(error),
            )
        )
        return bool(result.rowcount)

    async def expire_overdue(
        self, now: datetime, *, expires_at: datetime, error: DiagnosticsError
    ) -> list[str]:
        overdue = select(diagnostics.c.id).where(
            diagnostics.c.state.in_(_OPEN), diagnostics.c.expires_at <= now
        )
        ids = list((await self._connection.execute(overdue)).scalars())
        if not ids:
            return []
        await self._connection.execute(
            update(diagnostics)
            .where(diagnostics.c.id.in_(ids), diagnostics.c.state.in_(_OPEN))
            .values(
                state=DiagnosticsState.EXPIRED.value, completed_at=now, expires_at=expires_at, **_error(error)
            )
        )
        return ids

    async def purge(self, now: datetime) -> int:
        result = await self._connection.execute(
            delete(diagnostics).where(diagnostics.c.state.in_(_FINISHED), diagnostics.c.expires_at <= now)
        )
        return int(result.rowcount or 0)


def _error(error: DiagnosticsError | None) -> dict[str, Any]:
    if error is None:
        return {"error_code": None, "error_reason": None, "error_message": None}
    return {"error_code": error.code, "error_reason": error.reason, "error_message": error.message}


def _diagnostics(row: Any, *, with_report: bool) -> Diagnostics:
    error = (
        DiagnosticsError(row.error_code, row.error_reason or "", row.error_message or "")
        if row.error_code is not None
        else None
    )
    return Diagnostics(
        id=row.id,
        agent_id=row.agent_id,
        stack_id=row.stack_id,
        options=DiagnosticsOptions(row.log_tail_lines, row.max_log_bytes, row.include_previous_logs),
        state=DiagnosticsState(row.state),
        requested_at=row.requested_at,
        expires_at=row.expires_at,
        sent_at=row.sent_at,
        completed_at=row.completed_at,
        error=error,
        report=row.report if with_report else None,
    )
