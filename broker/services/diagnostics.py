"""Diagnostics: an admin asks an agent what a stack looks like in its cluster, and reads the answer.

Creating a request only stores it (PENDING) and records `DiagnosticsRequested`, so the replica
holding the agent's session, whichever it is, hears of it after commit (NOTIFY on PostgreSQL) and
sends it; an agent that is away gets it when its next session opens. The stream layer reports back
through the functions below: sent, answered, or refused because the agent lacks the capability.
Requests not answered within `timeout` expire; finished ones are erased `retention` after they
finished. Both happen in the sessions' periodic sweep, on every replica: the writes are
conditional, so replicas racing over one row settle on one outcome.

Only admins may ask or read: reports carry container logs, which may hold anything.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from broker.domain.changes import DiagnosticsRequested
from broker.domain.deployments import DeploymentState
from broker.domain.diagnostics import (
    AGENT_CANNOT_DIAGNOSE,
    DEFAULT_LOG_TAIL_LINES,
    DEFAULT_MAX_LOG_BYTES,
    DIAGNOSTICS_EXPIRED,
    MAX_LOG_BYTES,
    MAX_LOG_TAIL_LINES,
    Diagnostics,
    DiagnosticsError,
    DiagnosticsOptions,
    DiagnosticsState,
    position,
)
from broker.domain.model import Page, Principal, Stack
from broker.domain.ports import UnitOfWork
from broker.domain.targeting import match
from broker.domain.validation import Violations
from broker.services import access, checks, paging
from broker.services.idempotency import IdempotentCreate, fingerprint
from brokkr_common.errors import FailedPrecondition, not_found

log = structlog.get_logger("brokkr.diagnostics")

#: gRPC codes, as numbers (this layer knows no gRPC).
_FAILED_PRECONDITION = 9
_DEADLINE_EXCEEDED = 4


@dataclass(frozen=True)
class DiagnosticsPolicy:
    """How long requests wait for an answer, and how long finished ones are kept."""

    timeout: timedelta = timedelta(seconds=120)
    retention: timedelta = timedelta(seconds=3600)


async def create_diagnostics(
    uow: UnitOfWork,
    actor: Principal,
    *,
    agent_id: str,
    stack_id: str,
    log_tail_lines: int = 0,
    max_log_bytes: int = 0,
    include_previous_logs: bool = False,
    request_id: str | None = None,
    policy: DiagnosticsPolicy = DiagnosticsPolicy(),
) -> Diagnostics:
    """Store a PENDING request and have the agent's session send it; a repeated `request_id`
    returns the request it created (AIP-155)."""
    access.require_admin(actor, "request diagnostics")
    violations = Violations()
    agent_id = checks.resource_id(violations, "diagnostics.agent_id", agent_id)
    stack_id = checks.resource_id(violations, "diagnostics.stack_id", stack_id)
    if not 0 <= log_tail_lines <= MAX_LOG_TAIL_LINES:
        violations.add(
            "diagnostics.options.log_tail_lines",
            f"must be between 1 and {MAX_LOG_TAIL_LINES} (0 means {DEFAULT_LOG_TAIL_LINES})",
            "OUT_OF_RANGE",
        )
    if not 0 <= max_log_bytes <= MAX_LOG_BYTES:
        violations.add(
            "diagnostics.options.max_log_bytes",
            f"must be between 1 and {MAX_LOG_BYTES} (0 means {DEFAULT_MAX_LOG_BYTES})",
            "OUT_OF_RANGE",
        )
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    options = DiagnosticsOptions(
        log_tail_lines or DEFAULT_LOG_TAIL_LINES,
        max_log_bytes or DEFAULT_MAX_LOG_BYTES,
        include_previous_logs,
    )
    idempotent = IdempotentCreate(
        actor,
        "CreateDiagnostics",
        request_id,
        fingerprint(
            agent_id=agent_id,
            stack_id=stack_id,
            log_tail_lines=options.log_tail_lines,
            max_log_bytes=options.max_log_bytes,
            include_previous_logs=options.include_previous_logs,
        ),
    )

    async def attempt() -> Diagnostics:
        async with uow:
            if replayed := await idempotent.replay(uow, uow.diagnostics.get):
                return replayed
            await _check_target(uow, agent_id, stack_id)
            now = datetime.now(UTC)
            request = Diagnostics(
                id=str(uuid.uuid4()),
                agent_id=agent_id,
                stack_id=stack_id,
                options=options,
                state=DiagnosticsState.PENDING,
                requested_at=now,
                expires_at=now + policy.timeout,
            )
            await uow.diagnostics.add(request)
            await idempotent.remember(uow, request.id, now)
            uow.record(DiagnosticsRequested(agent_id))
            await uow.commit()
        return request

    return await idempotent.run(attempt)


async def _check_target(uow: UnitOfWork, agent_id: str, stack_id: str) -> None:
    """NOT_FOUND or FAILED_PRECONDITION unless the live agent may be asked about the stack."""
    agent = await uow.agents.get(agent_id)
    if agent is None:
        raise not_found("agent", agent_id)
    if agent.deleted_at is not None:
        raise access.deleted("agent", agent_id)
    stack = await uow.stacks.get(stack_id)
    if stack is None:
        raise not_found("stack", stack_id)
    if not await _on_agent(uow, stack, agent_id):
        raise FailedPrecondition(
            f"stack {stack_id!r} neither reaches agent {agent_id!r} nor is held by it",
            reason="STACK_NOT_ON_AGENT",
            metadata={"agent_id": agent_id, "stack_id": stack_id},
        )


async def get_diagnostics(uow: UnitOfWork, actor: Principal, diagnostics_id: str) -> Diagnostics:
    access.require_admin(actor, "read diagnostics")
    violations = Violations()
    diagnostics_id = checks.resource_id(violations, "id", diagnostics_id)
    violations.raise_if_any()
    async with uow:
        found = await uow.diagnostics.get(diagnostics_id)
    if found is None:
        raise not_found("diagnostics", diagnostics_id)
    return found


async def list_diagnostics(
    uow: UnitOfWork,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    agent_id: str | None = None,
    stack_id: str | None = None,
) -> Page[Diagnostics]:
    """Requests newest first, without reports."""
    access.require_admin(actor, "read diagnostics")
    violations = Violations()
    if agent_id is not None:
        agent_id = checks.resource_id(violations, "agent_id", agent_id)
    if stack_id is not None:
        stack_id = checks.resource_id(violations, "stack_id", stack_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int, str),
        method="ListDiagnostics",
        agent_id=agent_id,
        stack_id=stack_id,
    )
    violations.raise_if_any()
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.diagnostics.list_page(
                after=after, limit=limit, agent_id=agent_id, stack_id=stack_id
            ),
            position,
        )


# -- the stream layer's side -------------------------------------------------------------------


async def open_requests(uow: UnitOfWork, agent_id: str | None) -> list[Diagnostics]:
    """The agent's requests still waiting to be sent or answered, oldest first (every agent's for
    None)."""
    async with uow:
        return await uow.diagnostics.open_for_agent(agent_id, datetime.now(UTC))


async def mark_sent(uow: UnitOfWork, diagnostics_id: str) -> None:
    async with uow:
        await uow.diagnostics.mark_sent(diagnostics_id, datetime.now(UTC))
        await uow.commit()


async def record_result(
    uow: UnitOfWork,
    agent_id: str,
    diagnostics_id: str,
    *,
    report: dict[str, Any] | None,
    error: DiagnosticsError | None,
    policy: DiagnosticsPolicy = DiagnosticsPolicy(),
    answered: bool = True,
) -> bool:
    """Store the agent's answer: COMPLETED with `report`, or FAILED with `error`. False when the
    request is not an open one of this agent (expired meanwhile, or never its)."""
    now = datetime.now(UTC)
    state = DiagnosticsState.FAILED if error is not None else DiagnosticsState.COMPLETED
    async with uow:
        stored = await uow.diagnostics.finish(
            diagnostics_id,
            agent_id=agent_id,
            state=state,
            at=now,
            expires_at=now + policy.retention,
            error=error,
            report=report,
            answered=answered,
        )
        await uow.commit()
    return stored


async def fail_unsupported(
    uow: UnitOfWork, agent_id: str, diagnostics_id: str, policy: DiagnosticsPolicy = DiagnosticsPolicy()
) -> bool:
    """The agent's session does not advertise the `diagnostics` capability: the request FAILS."""
    error = DiagnosticsError(
        _FAILED_PRECONDITION,
        AGENT_CANNOT_DIAGNOSE,
        "the agent does not support diagnostics (its Hello lacks the `diagnostics` capability); upgrade it",
    )
    return await record_result(
        uow, agent_id, diagnostics_id, report=None, error=error, policy=policy, answered=False
    )


async def expire_and_purge(
    uow: UnitOfWork, policy: DiagnosticsPolicy = DiagnosticsPolicy(), now: datetime | None = None
) -> tuple[list[str], int]:
    """Make overdue open requests EXPIRED and erase finished ones past retention: (expired ids,
    number erased)."""
    now = now or datetime.now(UTC)
    error = DiagnosticsError(
        _DEADLINE_EXCEEDED,
        DIAGNOSTICS_EXPIRED,
        f"the agent did not answer within {policy.timeout.total_seconds():g} s "
        "(it was not connected, or did not finish collecting)",
    )
    async with uow:
        expired = await uow.diagnostics.expire_overdue(now, expires_at=now + policy.retention, error=error)
        erased = await uow.diagnostics.purge(now)
        await uow.commit()
    if expired or erased:
        log.info("diagnostics swept", expired=len(expired), erased=erased)
    return expired, erased


async def _on_agent(uow: UnitOfWork, stack: Stack, agent_id: str) -> bool:
    """Whether the stack reaches the agent now, or the agent still holds something of it."""
    agent = await uow.agents.get(agent_id)
    if agent is None:
        return False
    if stack.deleted_at is None:
        explicit = await uow.targets.exists(agent_id, stack.id)
        generator_ids = await uow.registrations.generator_ids(agent_id)
        if match(agent, stack, explicit=explicit, agent_generator_ids=generator_ids) is not None:
            return True
    records = await uow.deployment_statuses.for_agent(agent_id, [stack.id])
    record = records.get(stack.id)
    return record is not None and record.outcome is not None and record.outcome is not DeploymentState.REMOVED
