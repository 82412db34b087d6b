"""The audit log: recording audited calls behind the caller's back, listing them, and forgetting
them after the retention period.

Recording is write-behind: the API edge hands each entry to `AuditTrail.record`, which returns at
once; a background task writes queued entries in batches (one transaction per batch), so auditing
an admin call does not add a second transaction to its latency. `stop()` writes what is queued, so a
graceful shutdown loses nothing; a crash may lose the last `flush_seconds` of entries, which is the
price of not doubling every write. Every replica purges entries older than the retention period
now and then; the purge is one idempotent DELETE, so replicas doing it at once is harmless.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import structlog

from broker.domain.audit import UNAUTHENTICATED_ACTOR, AuditEntry
from broker.domain.model import Page, Principal, Role
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.validation import Violations
from broker.services import access, checks, paging

log = structlog.get_logger("brokkr.audit")

ACTOR_ROLES = frozenset({*(role.value for role in Role), UNAUTHENTICATED_ACTOR})


class AuditTrail:
    """Queues audit entries and writes them in batches; purges old ones. One per replica."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        batch_size: int = 500,
        flush_seconds: float = 0.5,
        retention_days: int = 90,
        purge_interval_seconds: float = 3600.0,
        capacity: int = 100_000,
    ) -> None:
        self._uow = uow
        self._batch_size = batch_size
        self._flush_seconds = flush_seconds
        self._retention = timedelta(days=retention_days)
        self._purge_interval = purge_interval_seconds
        self._capacity = capacity
        self._queue: list[AuditEntry] = []
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0

    def record(self, entry: AuditEntry) -> None:
        """Queue an entry. When the queue is full (the database is down for long) it is dropped,
        counted and logged: the broker must not run out of memory."""
        if len(self._queue) >= self._capacity:
            self.dropped += 1
            log.error("audit queue full; dropping an entry", action=entry.action, outcome=entry.outcome)
            return
        self._queue.append(entry)
        self._idle.clear()
        if len(self._queue) >= self._batch_size:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-trail")

    async def stop(self) -> None:
        """Write everything queued, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self._flush()

    async def flushed(self) -> None:
        """Wait until every entry recorded so far has been written (or failed to be)."""
        self._wake.set()
        await self._idle.wait()

    async def purge(self, now: datetime | None = None) -> int:
        """Erase the entries older than the retention period; returns how many."""
        cutoff = (now or datetime.now(UTC)) - self._retention
        uow = self._uow()
        async with uow:
            erased = await uow.audit_logs.purge(cutoff)
            await uow.commit()
        if erased:
            log.info("purged old audit log entries", erased=erased, before=cutoff.isoformat())
        return erased

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_purge = loop.time()
        while not self._stopping:
            if loop.time() >= next_purge:
                try:
                    await self.purge()
                except Exception:
                    log.exception("purging the audit log failed")
                next_purge = loop.time() + self._purge_interval
            timeout = min(self._flush_seconds, max(0.0, next_purge - loop.time()))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=timeout)
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self._batch_size], self._queue[self._batch_size :]
            try:
                uow = self._uow()
                async with uow:
                    await uow.audit_logs.add_many(batch)
                    await uow.commit()
            except Exception:
                log.exception("writing audit log entries failed; they are lost", entries=len(batch))
        self._idle.set()


async def list_audit_logs(
    uow_factory: UnitOfWorkFactory,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    actor_role: str | None = None,
    actor_id: str | None = None,
    action: str | None = None,
    resource: str | None = None,
    outcome: str | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> Page[AuditEntry]:
    """Audit log entries newest first, matching every filter given."""
    access.require_admin(actor, "read the audit log")
    violations = Violations()
    if actor_role is not None and actor_role not in ACTOR_ROLES:
        violations.add("actor_role", f"must be one of {', '.join(sorted(ACTOR_ROLES))}", "INVALID_ACTOR_ROLE")
    if actor_id is not None:
        actor_id = checks.resource_id(violations, "actor_id", actor_id)
    if start_time and end_time and end_time <= start_time:
        violations.add("end_time", "must be after start_time", "INVALID_TIME_RANGE")
    filters = {
        "actor_role": actor_role,
        "actor_id": actor_id,
        "action": action,
        "resource": resource,
        "outcome": outcome,
        "start_time": start_time,
        "end_time": end_time,
    }
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int,),
        method="ListAuditLogs",
        **{key: _plain(value) for key, value in filters.items()},
    )
    violations.raise_if_any()
    uow = uow_factory()
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.audit_logs.list_page(
                before=int(after[0]) if after else None, limit=limit, **filters
            ),
            lambda entry: (int(entry.id),),
        )


def _plain(value: str | datetime | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value
