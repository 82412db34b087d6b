"""The webhook outbox: every event becomes one delivery per subscription that wants it, in the
event's own transaction.

Writing deliveries beside the event, instead of sending from the request that caused it, is what
makes webhooks at least once: a change that commits has its deliveries committed with it, and a
broker that crashes right after still sends them (any replica's worker claims them), while a change
that rolls back leaves nothing to send.

`webhook.test` events are the exception: `TestWebhook` is a request to ping *one* subscription, so
its event goes only to the subscription named in its payload (`webhook_id`), whatever patterns the
others have.

Matching reads every live, enabled subscription per event: subscriptions are few (operators make
them by hand) and the filters include label selectors that SQL cannot answer alone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from broker.domain.events import Event, EventType
from broker.domain.ports import UnitOfWork
from broker.domain.webhooks_records import DeliveryState, WebhookDelivery, WebhookSubscription, event_body


async def enqueue_many(uow: UnitOfWork, events: Sequence[Event]) -> list[WebhookDelivery]:
    """Add the deliveries of stored `events` (with their ids) in `uow`'s open transaction, reading
    the subscriptions once."""
    if not events:
        return []
    subscriptions = await uow.webhooks.live_enabled()
    deliveries = []
    if subscriptions:
        for event in events:
            if event.type is EventType.WEBHOOK_TEST:
                wanted = [s for s in subscriptions if s.id == event.payload.get("webhook_id")]
            else:
                wanted = [s for s in subscriptions if s.filter.matches(event)]
            deliveries += _deliveries(event, wanted)
    await uow.webhooks.add_deliveries(deliveries)
    return deliveries


def _deliveries(event: Event, subscriptions: Iterable[WebhookSubscription]) -> Iterable[WebhookDelivery]:
    body = event_body(event)
    for subscription in subscriptions:
        yield WebhookDelivery(
            id=str(uuid.uuid4()),
            subscription_id=subscription.id,
            event_id=event.id,
            event_type=str(event.type),
            body=body,
            state=DeliveryState.PENDING,
            attempts=0,
            next_attempt_at=event.time,
            created_at=event.time,
            updated_at=event.time,
        )
