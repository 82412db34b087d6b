"""Agents: one per cluster, created and managed by the admin, each with its own key.

New agents are INACTIVE unless created ACTIVE, and INACTIVE agents receive nothing. A generator
reads the agents registered with it; an agent reads itself. Deleting an agent revokes its key.
Connection state and heartbeats belong to the agent session layer and are not updatable here.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from broker.domain.changes import AgentChanged, KeyRevoked
from broker.domain.events import EventType
from broker.domain.model import Agent, AgentStatus, ConnectionState, CreatedWithKey, Page, Principal, Role
from broker.domain.ports import UnitOfWork
from broker.domain.selectors import parse_label_selector
from broker.domain.validation import (
    Violations,
    validate_annotations,
    validate_dns_label,
    validate_dns_subdomain,
    validate_labels,
)
from broker.services import access, checks, paging
from broker.services.eventing import emit
from broker.services.idempotency import IdempotentCreate, fingerprint
from broker.services.keys import issue_key

UPDATABLE = frozenset({"name", "cluster_name", "labels", "annotations", "status"})


def _validate(violations: Violations, fields: Mapping[str, Any]) -> None:
    if "name" in fields:
        violations.check(validate_dns_label, "agent.name", fields["name"])
    if "cluster_name" in fields:
        violations.check(validate_dns_subdomain, "agent.cluster_name", fields["cluster_name"])
    if "labels" in fields:
        violations.check(validate_labels, "agent.labels", fields["labels"])
    if "annotations" in fields:
        violations.check(validate_annotations, "agent.annotations", fields["annotations"])
    if "status" in fields and not isinstance(fields["status"], AgentStatus):
        violations.add("agent.status", "must be ACTIVE or INACTIVE", "INVALID_STATUS")


async def create_agent(
    uow: UnitOfWork,
    actor: Principal,
    *,
    name: str,
    cluster_name: str,
    labels: Mapping[str, str],
    annotations: Mapping[str, str],
    status: AgentStatus = AgentStatus.INACTIVE,
    request_id: str | None,
) -> CreatedWithKey[Agent]:
    """A new agent and its key (None when replaying an earlier identical request)."""
    access.require_admin(actor, "create agents")
    fields = {
        "name": name,
        "cluster_name": cluster_name,
        "labels": dict(labels),
        "annotations": dict(annotations),
        "status": status,
    }
    violations = Violations()
    _validate(violations, fields)
    request_id = checks.request_id(violations, request_id)
    violations.raise_if_any()
    request = IdempotentCreate(actor, "CreateAgent", request_id, fingerprint(**fields))

    async def attempt() -> CreatedWithKey[Agent]:
        async with uow:
            if replayed := await request.replay(uow, uow.agents.get):
                return CreatedWithKey(replayed, None)
            now = datetime.now(UTC)
            agent = Agent(
                id=str(uuid.uuid4()),
                connection_state=ConnectionState.NEVER_CONNECTED,
                last_heartbeat_at=None,
                kubernetes_reachable=False,
                created_at=now,
                updated_at=now,
                **fields,
            )
            await uow.agents.add(agent)
            key = await issue_key(uow, Role.AGENT, agent.id, now)
            await request.remember(uow, agent.id, now)
            await _emit(uow, EventType.AGENT_REGISTERED, actor, agent)
            uow.record(AgentChanged(agent.id))
            await uow.commit()
        return CreatedWithKey(agent, key)

    return await request.run(attempt)


async def get_agent(uow: UnitOfWork, actor: Principal, agent_id: str) -> Agent:
    violations = Violations()
    agent_id = checks.resource_id(violations, "id", agent_id)
    violations.raise_if_any()
    async with uow:
        return await access.readable_agent(uow, actor, agent_id)


async def list_agents(
    uow: UnitOfWork,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    label_selector: str = "",
    show_deleted: bool = False,
) -> Page[Agent]:
    """Agents ordered by name then cluster name: all for the admin, those registered with a generator."""
    access.require_role(actor, {Role.ADMIN, Role.GENERATOR}, "list agents")
    violations = Violations()
    selector = violations.check(parse_label_selector, "label_selector", label_selector)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(str, str, str),
        method="ListAgents",
        principal=actor.id,
        label_selector=str(selector),
        show_deleted=show_deleted,
    )
    violations.raise_if_any()
    assert selector is not None
    registered_with = None if actor.is_admin else actor.id
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.agents.list_page(
                after=after,
                limit=limit,
                show_deleted=show_deleted,
                labels=selector.equalities(),
                registered_with=registered_with,
            ),
            lambda agent: (agent.name, agent.cluster_name, agent.id),
            keep=lambda agent: selector.matches(agent.labels),
        )


async def update_agent(uow: UnitOfWork, actor: Principal, agent_id: str, changes: Mapping[str, Any]) -> Agent:
    """Change the fields named in `changes` (name, cluster_name, labels, annotations, status)."""
    access.require_admin(actor, "update agents")
    violations = Violations()
    agent_id = checks.resource_id(violations, "agent.id", agent_id)
    checks.update_mask(violations, changes, UPDATABLE, "agent")
    _validate(violations, changes)
    violations.raise_if_any()
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        if not changes:
            return agent
        updated = dataclasses.replace(agent, **changes, updated_at=datetime.now(UTC))
        await uow.agents.update(updated)
        if updated.status is not agent.status:
            activated = updated.status is AgentStatus.ACTIVE
            event_type = EventType.AGENT_ACTIVATED if activated else EventType.AGENT_DEACTIVATED
            await _emit(uow, event_type, actor, updated)
        uow.record(AgentChanged(agent_id))
        await uow.commit()
    return updated


async def delete_agent(uow: UnitOfWork, actor: Principal, agent_id: str) -> Agent:
    """Soft-delete an agent and revoke its key; its session ends and it receives nothing more."""
    access.require_admin(actor, "delete agents")
    violations = Violations()
    agent_id = checks.resource_id(violations, "id", agent_id)
    violations.raise_if_any()
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        now = datetime.now(UTC)
        deleted = dataclasses.replace(agent, updated_at=now, deleted_at=now)
        await uow.agents.update(deleted)
        await uow.keys.revoke(Role.AGENT, agent_id, now)
        await _emit(uow, EventType.AGENT_DEREGISTERED, actor, deleted)
        uow.record(AgentChanged(agent_id))
        uow.record(KeyRevoked(Role.AGENT, agent_id))
        await uow.commit()
    return deleted


async def rotate_agent_key(uow: UnitOfWork, actor: Principal, agent_id: str) -> str:
    """A new key for the agent; the old one stops working at once."""
    access.require_admin(actor, "rotate agent keys")
    violations = Violations()
    agent_id = checks.resource_id(violations, "id", agent_id)
    violations.raise_if_any()
    async with uow:
        agent = await access.readable_agent(uow, actor, agent_id)
        if agent.deleted_at is not None:
            raise access.deleted("agent", agent_id)
        key = await issue_key(uow, Role.AGENT, agent_id, datetime.now(UTC))
        uow.record(KeyRevoked(Role.AGENT, agent_id))
        await uow.commit()
    return key


async def _emit(uow: UnitOfWork, event_type: EventType, actor: Principal, agent: Agent) -> None:
    await emit(
        uow,
        event_type,
        actor=actor,
        agent_id=agent.id,
        labels=agent.labels,
        payload={"name": agent.name, "cluster_name": agent.cluster_name, "status": agent.status.value},
        at=agent.updated_at,
    )
