"""What agents reported per agent x stack, in SQL: bulk upserts that keep the newest report.

Acks, nacks and health reports arrive in batches of up to ~1,000 (the session layer writes them
behind), so each kind is one executemany `INSERT ... ON CONFLICT DO UPDATE ... WHERE`, built with
the dialect's own insert construct on SQLite and PostgreSQL alike. The WHERE clause lets a report
through only if it is at least as new as the stored one, so a report flushed late (by a replica the
agent has since left) cannot undo a newer one. Reports naming an agent or a stack that does not
exist are dropped first, so one bad report cannot fail a whole batch on a foreign key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, String, Table, bindparam, case, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import chunks
from broker.db.repositories.registrations import registered_agent_ids
from broker.db.tables import UtcDateTime, agents, deployment_objects, stacks
from broker.db.tables import deployment_statuses as statuses
from broker.domain.deployments import (
    ApplyReport,
    DeploymentRecord,
    DeploymentState,
    HealthReport,
    HealthState,
    Hello,
    ResourceHealthReport,
    ResourceOutcome,
)
from broker.domain.model import DeploymentObjectRef

_Report = TypeVar("_Report", ApplyReport, HealthReport)

_APPLIED = deployment_objects.alias("applied")
_FAILED = deployment_objects.alias("failed")
_KEY = [statuses.c.agent_id, statuses.c.stack_id]

#: Records with the references of their applied and failed deployment objects.
_RECORDS = select(
    statuses,
    _APPLIED.c.sequence_id.label("applied_sequence_id"),
    _APPLIED.c.checksum.label("applied_checksum"),
    _APPLIED.c.is_deletion_marker.label("applied_is_deletion_marker"),
    _FAILED.c.sequence_id.label("failed_sequence_id"),
    _FAILED.c.checksum.label("failed_checksum"),
    _FAILED.c.is_deletion_marker.label("failed_is_deletion_marker"),
).select_from(
    statuses.outerjoin(_APPLIED, _APPLIED.c.id == statuses.c.applied_deployment_object_id).outerjoin(
        _FAILED, _FAILED.c.id == statuses.c.failed_deployment_object_id
    )
)

#: Stack id and failed version of the agent's parked stacks. Built once: every agent connect reads them.
_PARKED = select(statuses.c.stack_id, statuses.c.failed_deployment_object_id).where(
    statuses.c.agent_id == bindparam("agent_id"),
    statuses.c.outcome == DeploymentState.FAILED.value,
    statuses.c.failed_deployment_object_id.is_not(None),
)

#: A row before anything was reported; each write fills in its own columns.
_NOTHING_REPORTED: dict[str, Any] = {
    "outcome": None,
    "applied_deployment_object_id": None,
    "failed_deployment_object_id": None,
    "error_code": "",
    "error_message": "",
    "resources": [],
    "reported_at": None,
    "health": None,
    "health_resources": [],
    "health_reported_at": None,
}
#: The columns each kind of report owns.
_ACK = (
    "outcome",
    "applied_deployment_object_id",
    "failed_deployment_object_id",
    "error_code",
    "error_message",
    "resources",
    "reported_at",
    "updated_at",
)
_NACK = tuple(column for column in _ACK if column != "applied_deployment_object_id")
_HEALTH = ("health", "health_resources", "health_reported_at", "updated_at")
_HELD = ("outcome", "applied_deployment_object_id", "reported_at", "updated_at")


def _ack(report: ApplyReport) -> dict[str, Any]:
    removed = report.deployment_object_id is None
    return {
        **_NOTHING_REPORTED,
        "agent_id": report.agent_id,
        "stack_id": report.stack_id,
        "outcome": (DeploymentState.REMOVED if removed else DeploymentState.APPLIED).value,
        "applied_deployment_object_id": report.deployment_object_id,
        "resources": [_outcome_json(outcome) for outcome in report.resources],
        "reported_at": report.at,
        "updated_at": report.at,
    }


def _nack(report: ApplyReport) -> dict[str, Any]:
    return {
        **_NOTHING_REPORTED,
        "agent_id": report.agent_id,
        "stack_id": report.stack_id,
        "outcome": DeploymentState.FAILED.value,
        "failed_deployment_object_id": report.deployment_object_id,
        "error_code": report.error_code,
        "error_message": report.error_message,
        "resources": [_outcome_json(outcome) for outcome in report.resources],
        "reported_at": report.at,
        "updated_at": report.at,
    }


def _health(report: HealthReport) -> dict[str, Any]:
    return {
        **_NOTHING_REPORTED,
        "agent_id": report.agent_id,
        "stack_id": report.stack_id,
        "health": report.health.value,
        "health_resources": [
            {"key": r.key, "health": r.health.value, "reason": r.reason, "message": r.message}
            for r in report.resources
        ],
        "health_reported_at": report.at,
        "updated_at": report.at,
    }


def _unless_failed(outcome: Any) -> ColumnElement[str]:
    """`outcome`, except that a FAILED outcome stays: a parked version stays parked."""
    return case((statuses.c.outcome == DeploymentState.FAILED.value, statuses.c.outcome), else_=outcome)


#: (agent id, stack id) of what the agents bound to `agent_ids` are recorded to hold.
_HOLDING = select(statuses.c.agent_id, statuses.c.stack_id).where(
    statuses.c.agent_id.in_(bindparam("agent_ids", expanding=True, type_=String())),
    or_(
        statuses.c.applied_deployment_object_id.is_not(None),
        statuses.c.outcome == DeploymentState.APPLIED.value,
    ),
)
_REMOVED_AT = bindparam("b_at", type_=UtcDateTime())
#: A stack its agent no longer holds, unless a newer report is stored (executemany).
_REMOVED = (
    update(statuses)
    .where(
        statuses.c.agent_id == bindparam("b_agent_id"),
        statuses.c.stack_id == bindparam("b_stack_id"),
        or_(statuses.c.reported_at.is_(None), statuses.c.reported_at <= _REMOVED_AT),
    )
    .values(
        outcome=_unless_failed(DeploymentState.REMOVED.value),
        applied_deployment_object_id=None,
        reported_at=_REMOVED_AT,
        updated_at=_REMOVED_AT,
    )
)


def _outcome_json(outcome: ResourceOutcome) -> dict[str, str]:
    return {"key": outcome.key, "outcome": outcome.outcome, "message": outcome.message}


def _ref(row: Any, prefix: str) -> DeploymentObjectRef | None:
    ident = getattr(row, f"{prefix}_deployment_object_id")
    if ident is None:
        return None
    return DeploymentObjectRef(
        ident,
        getattr(row, f"{prefix}_sequence_id"),
        getattr(row, f"{prefix}_checksum"),
        bool(getattr(row, f"{prefix}_is_deletion_marker")),
    )


def _record(row: Any) -> DeploymentRecord:
    return DeploymentRecord(
        agent_id=row.agent_id,
        stack_id=row.stack_id,
        outcome=DeploymentState(row.outcome) if row.outcome else None,
        applied=_ref(row, "applied"),
        failed=_ref(row, "failed"),
        error_code=row.error_code,
        error_message=row.error_message,
        resources=tuple(ResourceOutcome(r["key"], r["outcome"], r["message"]) for r in row.resources),
        health=HealthState(row.health) if row.health else None,
        health_resources=tuple(
            ResourceHealthReport(r["key"], HealthState(r["health"]), r["reason"], r["message"])
            for r in row.health_resources
        ),
        updated_at=row.updated_at,
    )


class SqlDeploymentStatusRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    async def record_applies(self, reports: Sequence[ApplyReport]) -> list[ApplyReport]:
        known = await self._known(reports)
        await self._upsert([_ack(r) for r in known if r.succeeded], _ACK, statuses.c.reported_at)
        await self._upsert([_nack(r) for r in known if not r.succeeded], _NACK, statuses.c.reported_at)
        return known

    async def record_health(self, reports: Sequence[HealthReport]) -> list[tuple[HealthReport, str | None]]:
        known = await self._known(reports)
        before = await self._health_of([(r.agent_id, r.stack_id) for r in known])
        await self._upsert([_health(r) for r in known], _HEALTH, statuses.c.health_reported_at)
        changed = []
        for report in known:
            stored, stored_at = before.get((report.agent_id, report.stack_id), (None, None))
            # A report older than the stored one was not written and changes nothing.
            if stored != report.health.value and (stored_at is None or stored_at <= report.at):
                changed.append((report, stored))
        return changed

    async def _health_of(
        self, pairs: Sequence[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[str | None, Any]]:
        """(agent id, stack id) -> (stored health, when it was reported), for the pairs stored."""
        found: dict[tuple[str, str], tuple[str | None, Any]] = {}
        for batch in chunks(list(pairs)):
            rows = await self._connection.execute(
                select(
                    statuses.c.agent_id, statuses.c.stack_id, statuses.c.health, statuses.c.health_reported_at
                ).where(tuple_(statuses.c.agent_id, statuses.c.stack_id).in_(batch))
            )
            found.update({(a, s): (health, at) for a, s, health, at in rows})
        return found

    async def record_held(self, hellos: Sequence[Hello]) -> None:
        known = await self._existing(agents, [hello.agent_id for hello in hellos])
        hellos = [hello for hello in hellos if hello.agent_id in known]
        held_stacks = await self._existing(stacks, list({s for hello in hellos for s in hello.held}))
        stack_of = await self._stacks_of(
            list({ident for hello in hellos for ident in hello.held.values() if ident is not None})
        )
        rows = [
            {
                **_NOTHING_REPORTED,
                "agent_id": hello.agent_id,
                "stack_id": stack_id,
                "outcome": DeploymentState.APPLIED.value,
                # A version that is not one of this stack's is as good as none.
                "applied_deployment_object_id": ident if ident and stack_of.get(ident) == stack_id else None,
                "reported_at": hello.at,
                "updated_at": hello.at,
            }
            for hello in hellos
            for stack_id, ident in hello.held.items()
            if stack_id in held_stacks
        ]
        await self._upsert(rows, _HELD, statuses.c.reported_at, keep_failed=True)
        await self._mark_removed(hellos)

    async def parked(self, agent_id: str) -> dict[str, str]:
        rows = await self._connection.execute(_PARKED, {"agent_id": agent_id})
        return {stack_id: ident for stack_id, ident in rows}

    async def agent_ids(self, stack_id: str, *, registered_with: str | None = None) -> list[str]:
        query = (
            select(statuses.c.agent_id)
            .join(agents, agents.c.id == statuses.c.agent_id)
            .where(statuses.c.stack_id == stack_id, agents.c.deleted_at.is_(None))
        )
        if registered_with is not None:
            query = query.where(statuses.c.agent_id.in_(registered_agent_ids(registered_with)))
        return list((await self._connection.scalars(query)).all())

    async def stack_ids(self, agent_id: str, *, stack_owner: str | None = None) -> list[str]:
        query = select(statuses.c.stack_id).where(statuses.c.agent_id == agent_id)
        if stack_owner is not None:
            query = query.where(
                statuses.c.stack_id.in_(select(stacks.c.id).where(stacks.c.generator_id == stack_owner))
            )
        return list((await self._connection.scalars(query)).all())

    async def for_stack(self, stack_id: str, agent_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        records = await self._records(statuses.c.stack_id == stack_id, statuses.c.agent_id, agent_ids)
        return {record.agent_id: record for record in records}

    async def for_agent(self, agent_id: str, stack_ids: Sequence[str]) -> dict[str, DeploymentRecord]:
        records = await self._records(statuses.c.agent_id == agent_id, statuses.c.stack_id, stack_ids)
        return {record.stack_id: record for record in records}

    async def _records(
        self, condition: ColumnElement[bool], column: ColumnElement[str], ids: Sequence[str]
    ) -> list[DeploymentRecord]:
        found = []
        for batch in chunks(ids):
            rows = await self._connection.execute(_RECORDS.where(condition, column.in_(batch)))
            found += [_record(row) for row in rows]
        return found

    async def _upsert(
        self, rows: list[dict[str, Any]], columns: Iterable[str], stamp: Any, *, keep_failed: bool = False
    ) -> None:
        """Insert the rows, or update `columns` of those that exist unless they hold a newer `stamp`."""
        if not rows:
            return
        insert = postgresql.insert if self._connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(statuses)
        changes: dict[str, Any] = {column: statement.excluded[column] for column in columns}
        if keep_failed:
            changes["outcome"] = _unless_failed(statement.excluded.outcome)
        statement = statement.on_conflict_do_update(
            index_elements=_KEY,
            set_=changes,
            where=or_(stamp.is_(None), stamp <= statement.excluded[stamp.name]),
        )
        await self._connection.execute(statement, rows)

    async def _mark_removed(self, hellos: Sequence[Hello]) -> None:
        """Stacks each agent recorded as applied but no longer holds: nothing of them is applied now."""
        by_agent = {hello.agent_id: hello for hello in hellos}
        gone = []
        for batch in chunks(list(by_agent)):
            for agent_id, stack_id in await self._connection.execute(_HOLDING, {"agent_ids": batch}):
                hello = by_agent[agent_id]
                if stack_id not in hello.held:
                    gone.append({"b_agent_id": agent_id, "b_stack_id": stack_id, "b_at": hello.at})
        if gone:
            await self._connection.execute(_REMOVED, gone)

    async def _known(self, reports: Sequence[_Report]) -> list[_Report]:
        """The reports whose agent and stack exist."""
        agent_ids = await self._existing(agents, list({r.agent_id for r in reports}))
        stack_ids = await self._existing(stacks, list({r.stack_id for r in reports}))
        return [r for r in reports if r.agent_id in agent_ids and r.stack_id in stack_ids]

    async def _existing(self, table: Table, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for batch in chunks(ids):
            found.update(await self._connection.scalars(select(table.c.id).where(table.c.id.in_(batch))))
        return found

    async def _stacks_of(self, deployment_object_ids: Sequence[str]) -> dict[str, str]:
        """Deployment object id -> its stack id, for those that exist."""
        found: dict[str, str] = {}
        for batch in chunks(deployment_object_ids):
            rows = await self._connection.execute(
                select(deployment_objects.c.id, deployment_objects.c.stack_id).where(
                    deployment_objects.c.id.in_(batch)
                )
            )
            found.update({ident: stack_id for ident, stack_id in rows})
        return found
