"""Recording events: the one function every use case calls to say what happened.

An event is written in the same transaction as the change it describes, so it exists exactly when
the change does: a failed or rolled-back change leaves no event, and a committed one always has
its event. Everything that follows events (watchers, webhooks) hangs off this function, so a new
consumer is wired here once instead of in every service.

Call `emit` as the last write before `commit()`: on PostgreSQL appending takes a lock that keeps
event ids in commit order until the transaction ends (see broker/db/repositories/events.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from broker.domain.changes import EventsAppended
from broker.domain.events import SYSTEM_ACTOR, Event, EventType
from broker.domain.model import Principal
from broker.domain.ports import UnitOfWork
from broker.services import webhooks_outbox


def draft(
    event_type: EventType,
    *,
    actor: Principal | None,
    agent_id: str | None = None,
    stack_id: str | None = None,
    deployment_object_id: str | None = None,
    template_id: str | None = None,
    labels: Mapping[str, str] | None = None,
    payload: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> Event:
    """An event to append with `emit_many`, without its id yet.

    `actor` None means the broker itself (a stream ending, a sweep). `labels` are the main subject's
    labels as they are now (see `Event`); `payload` must be JSON-serialisable.
    """
    return Event(
        id="",
        type=event_type,
        time=at or datetime.now(UTC),
        actor_role=actor.role.value if actor is not None else SYSTEM_ACTOR,
        actor_id=actor.id if actor is not None else None,
        agent_id=agent_id,
        stack_id=stack_id,
        deployment_object_id=deployment_object_id,
        template_id=template_id,
        labels=dict(labels or {}),
        payload=dict(payload or {}),
    )


async def emit(uow: UnitOfWork, event_type: EventType, **fields: Any) -> Event:
    """Append one event (`draft`'s arguments) in `uow`'s open transaction; it becomes visible only
    if that commits."""
    [stored] = await emit_many(uow, [draft(event_type, **fields)])
    return stored


async def emit_many(uow: UnitOfWork, drafts: Sequence[Event]) -> list[Event]:
    """Append several events at once, in order (a batch of agent reports writes hundreds)."""
    if not drafts:
        return []
    stored = await uow.events.append_many(drafts)
    await webhooks_outbox.enqueue_many(uow, stored)
    uow.record(EventsAppended())
    return stored
