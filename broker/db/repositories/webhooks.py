"""Webhook subscriptions and the delivery outbox in SQL, and how workers claim deliveries.

Claiming is one `UPDATE ... WHERE id IN (SELECT ... LIMIT n) RETURNING` in the caller's
transaction. On PostgreSQL the inner SELECT takes `FOR UPDATE SKIP LOCKED`: workers of several
replicas claiming at once each lock different due rows and skip the ones another holds, instead
of queueing behind it or claiming the same rows twice. SQLite has no row locks and needs none:
there is one replica, and every transaction starts with BEGIN IMMEDIATE (`broker.db.engine`), so
claims take turns on the database's write lock.

A claimed row stays IN_FLIGHT with `next_attempt_at` moved to the end of the lease; the claim's
token is stored with it. If the worker dies, the lease runs out and the row is due again, for any
worker. A worker that outlived its lease and finishes late finds another token on the row, and
`finish` writes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db.repositories.common import chunks, keyset_after
from broker.db.tables import webhook_deliveries, webhook_delivery_attempts, webhook_subscriptions
from broker.domain.ports import Position
from broker.domain.webhooks_records import (
    AttemptOutcome,
    Claim,
    DeliveryAttempt,
    DeliveryState,
    WebhookDelivery,
    WebhookSubscription,
    position_time,
)

_DUE_STATES = (DeliveryState.PENDING.value, DeliveryState.IN_FLIGHT.value)


def _subscription_values(subscription: WebhookSubscription) -> dict[str, Any]:
    return {
        "url_sealed": subscription.url_sealed,
        "url_redacted": subscription.url_redacted,
        "auth_header_sealed": subscription.auth_header_sealed,
        "secret_sealed": subscription.secret_sealed,
        "event_types": list(subscription.event_types),
        "stack_ids": list(subscription.stack_ids),
        "agent_ids": list(subscription.agent_ids),
        "label_selector": subscription.label_selector,
        "enabled": subscription.enabled,
        "max_attempts": subscription.max_attempts,
        "timeout_ms": round(subscription.timeout_seconds * 1000),
        "updated_at": subscription.updated_at,
        "deleted_at": subscription.deleted_at,
    }


def _subscription(row: Any) -> WebhookSubscription:
    return WebhookSubscription(
        id=row.id,
        url_sealed=row.url_sealed,
        url_redacted=row.url_redacted,
        auth_header_sealed=row.auth_header_sealed,
        secret_sealed=row.secret_sealed,
        event_types=tuple(row.event_types),
        stack_ids=tuple(row.stack_ids),
        agent_ids=tuple(row.agent_ids),
        label_selector=row.label_selector,
        enabled=bool(row.enabled),
        max_attempts=row.max_attempts,
        timeout_seconds=row.timeout_ms / 1000,
        owner_role=row.owner_role,
        owner_id=row.owner_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted_at=row.deleted_at,
    )


def _delivery(row: Any, attempt_log: Sequence[DeliveryAttempt] = ()) -> WebhookDelivery:
    return WebhookDelivery(
        id=row.id,
        subscription_id=row.subscription_id,
        event_id=row.event_id,
        event_type=row.event_type,
        body=row.body,
        state=DeliveryState(row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        attempt_log=tuple(attempt_log),
    )


def _attempt(row: Any) -> DeliveryAttempt:
    return DeliveryAttempt(
        number=row.number,
        started_at=row.started_at,
        duration_seconds=row.duration_ms / 1000,
        status_code=row.status_code,
        error=row.error,
        outcome=AttemptOutcome(row.outcome),
    )


class SqlWebhookRepository:
    def __init__(self, connection: AsyncConnection) -> None:
        self._connection = connection

    # Subscriptions ---------------------------------------------------------------------------------

    async def add(self, subscription: WebhookSubscription) -> None:
        await self._connection.execute(
            insert(webhook_subscriptions).values(
                id=subscription.id,
                owner_role=subscription.owner_role,
                owner_id=subscription.owner_id,
                created_at=subscription.created_at,
                **_subscription_values(subscription),
            )
        )

    async def get(self, subscription_id: str) -> WebhookSubscription | None:
        row = (
            await self._connection.execute(
                select(webhook_subscriptions).where(webhook_subscriptions.c.id == subscription_id)
            )
        ).first()
        return _subscription(row) if row is not None else None

    async def update(self, subscription: WebhookSubscription) -> None:
        await self._connection.execute(
            update(webhook_subscriptions)
            .where(webhook_subscriptions.c.id == subscription.id)
            .values(**_subscription_values(subscription))
        )

    async def list_page(self, *, after: Position, limit: int) -> list[WebhookSubscription]:
        query = (
            select(webhook_subscriptions)
            .where(
                keyset_after((webhook_subscriptions.c.id,), after),
                webhook_subscriptions.c.deleted_at.is_(None),
            )
            .order_by(webhook_subscriptions.c.id)
            .limit(limit)
        )
        return [_subscription(row) for row in (await self._connection.execute(query)).all()]

    async def any_live(self) -> bool:
        query = select(exists().where(webhook_subscriptions.c.deleted_at.is_(None)))
        return bool(await self._connection.scalar(query))

    async def live_enabled(self) -> list[WebhookSubscription]:
        query = select(webhook_subscriptions).where(
            webhook_subscriptions.c.deleted_at.is_(None), webhook_subscriptions.c.enabled.is_(True)
        )
        return [_subscription(row) for row in (await self._connection.execute(query)).all()]

    # Deliveries ------------------------------------------------------------------------------------

    async def add_deliveries(self, deliveries: Sequence[WebhookDelivery]) -> None:
        if not deliveries:
            return
        await self._connection.execute(
            insert(webhook_deliveries),
            [
                {
                    "id": delivery.id,
                    "subscription_id": delivery.subscription_id,
                    "event_id": delivery.event_id,
                    "event_type": delivery.event_type,
                    "body": delivery.body,
                    "state": delivery.state.value,
                    "attempts": delivery.attempts,
                    "next_attempt_at": delivery.next_attempt_at,
                    "last_status_code": delivery.last_status_code,
                    "last_error": delivery.last_error,
                    "claimed_by": None,
                    "claim_token": None,
                    "created_at": delivery.created_at,
                    "updated_at": delivery.updated_at,
                }
                for delivery in deliveries
            ],
        )

    async def claim(
        self, *, now: datetime, lease_until: datetime, limit: int, claimed_by: str, token: str
    ) -> Claim:
        due = (
            select(webhook_deliveries.c.id)
            .where(
                webhook_deliveries.c.state.in_(_DUE_STATES),
                webhook_deliveries.c.next_attempt_at <= now,
            )
            .order_by(webhook_deliveries.c.next_attempt_at)
            .limit(limit)
        )
        if self._connection.dialect.name == "postgresql":
            due = due.with_for_update(skip_locked=True)
        rows = (
            await self._connection.execute(
                update(webhook_deliveries)
                .where(webhook_deliveries.c.id.in_(due.scalar_subquery()))
                .values(
                    state=DeliveryState.IN_FLIGHT.value,
                    attempts=webhook_deliveries.c.attempts + 1,
                    next_attempt_at=lease_until,
                    claimed_by=claimed_by,
                    claim_token=token,
                    updated_at=now,
                )
                .returning(*webhook_deliveries.c)
            )
        ).all()
        deliveries = sorted((_delivery(row) for row in rows), key=lambda d: (d.created_at, d.id))
        return Claim(token, tuple(deliveries))

    async def finish(
        self,
        delivery_id: str,
        token: str,
        attempt: DeliveryAttempt,
        *,
        state: DeliveryState,
        next_attempt_at: datetime,
        at: datetime,
    ) -> bool:
        result = await self._connection.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery_id, webhook_deliveries.c.claim_token == token)
            .values(
                state=state.value,
                next_attempt_at=next_attempt_at,
                last_status_code=attempt.status_code,
                last_error=attempt.error,
                claimed_by=None,
                claim_token=None,
                updated_at=at,
            )
        )
        if result.rowcount != 1:
            return False
        await self._connection.execute(
            insert(webhook_delivery_attempts).values(
                delivery_id=delivery_id,
                number=attempt.number,
                started_at=attempt.started_at,
                duration_ms=round(attempt.duration_seconds * 1000),
                status_code=attempt.status_code,
                error=attempt.error,
                outcome=attempt.outcome.value,
            )
        )
        return True

    async def get_delivery(self, delivery_id: str) -> WebhookDelivery | None:
        row = (
            await self._connection.execute(
                select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
            )
        ).first()
        if row is None:
            return None
        logs = await self._attempt_logs([row.id])
        return _delivery(row, logs[row.id])

    async def list_deliveries(
        self, subscription_id: str, *, after: Position, limit: int
    ) -> list[WebhookDelivery]:
        conditions = [webhook_deliveries.c.subscription_id == subscription_id]
        if after:
            created_micros, delivery_id = after
            created = position_time(int(created_micros))
            conditions.append(
                or_(
                    webhook_deliveries.c.created_at < created,
                    and_(webhook_deliveries.c.created_at == created, webhook_deliveries.c.id < delivery_id),
                )
            )
        query = (
            select(webhook_deliveries)
            .where(*conditions)
            .order_by(webhook_deliveries.c.created_at.desc(), webhook_deliveries.c.id.desc())
            .limit(limit)
        )
        rows = (await self._connection.execute(query)).all()
        logs = await self._attempt_logs([row.id for row in rows])
        return [_delivery(row, logs[row.id]) for row in rows]

    async def _attempt_logs(self, delivery_ids: Sequence[str]) -> dict[str, list[DeliveryAttempt]]:
        logs: dict[str, list[DeliveryAttempt]] = defaultdict(list)
        for chunk in chunks(delivery_ids):
            query = (
                select(webhook_delivery_attempts)
                .where(webhook_delivery_attempts.c.delivery_id.in_(chunk))
                .order_by(webhook_delivery_attempts.c.delivery_id, webhook_delivery_attempts.c.number)
            )
            for row in (await self._connection.execute(query)).all():
                logs[row.delivery_id].append(_attempt(row))
        return logs
