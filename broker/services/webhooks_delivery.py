"""The webhook delivery worker: claims due deliveries from the outbox, sends them, records the result.

Every replica runs one. Each round it claims as many due deliveries as it has free slots
(`concurrency`), each claim a short transaction of its own, then sends them concurrently, outside
any transaction. A claim is a lease (`lease_seconds`, longer than any webhook's timeout): if this
replica dies mid-send, the deliveries become due again when the lease ends and another worker sends
them. That, and a receiver answering 2xx after we stopped listening, is why delivery is at least
once; the `Brokkr-Event-Id` header (the same on every attempt) lets receivers drop repeats.

Each attempt:

1. opens the subscription's sealed URL, auth header and signing secret;
2. signs `<timestamp>.<body>` with HMAC-SHA256 (`brokkr_common.signing`) and POSTs the body with
   the signature, timestamp, event id, delivery id and event type headers;
3. classifies the answer (`broker.domain.webhooks.classify_response`): 2xx succeeded; 408, 429,
   5xx, timeouts and network errors are retried after `next_delay` (exponential backoff with full
   jitter, at least the receiver's Retry-After) until the subscription's `max_attempts` are used;
   anything else (410 Gone, 400, a redirect, a refused destination) is a dead letter at once;
4. writes the attempt to the delivery log and the delivery's new state, unless its claim was
   taken over meanwhile.

A delivery whose subscription was deleted or disabled meanwhile is dead-lettered without a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import structlog

from broker.domain.ports import UnitOfWorkFactory
from broker.domain.webhooks import (
    DeadLetter,
    Delivered,
    Outcome,
    classify_response,
    next_delay,
    parse_retry_after,
)
from broker.domain.webhooks_records import (
    AttemptOutcome,
    DeliveryAttempt,
    DeliveryState,
    WebhookDelivery,
    WebhookSubscription,
)
from brokkr_common import signing
from brokkr_common.secretbox import SecretBox

log = structlog.get_logger("brokkr.webhooks")

DELIVERY_ID_HEADER = "Brokkr-Delivery-Id"
EVENT_TYPE_HEADER = "Brokkr-Event-Type"
#: Longest error text kept per attempt.
MAX_ERROR_LENGTH = 1000


class Answer(Protocol):
    status: int
    retry_after: str | None


class Sender(Protocol):
    """Sends one request; raises on network trouble, timeouts and refused destinations."""

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, time_limit: float) -> Answer: ...


@dataclass(frozen=True)
class DeliveryPolicy:
    """How a worker paces itself; see `broker.config.WebhookSettings` for each field's meaning."""

    concurrency: int = 8
    poll_interval_seconds: float = 1.0
    lease_seconds: float = 120.0
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 3600.0


class DeliveryWorker:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        box: SecretBox,
        sender: Sender,
        policy: DeliveryPolicy,
        *,
        replica_name: str,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._uow = uow
        self._box = box
        self._sender = sender
        self._policy = policy
        self._replica = replica_name
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not secrecy)
        self._clock = clock
        self._sending: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and send until `stop` is set; then let running sends finish within their lease."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                claimed = 0
                try:
                    claimed = await self.claim_and_start()
                except Exception:
                    log.exception("claiming webhook deliveries failed")
                free = self._policy.concurrency - len(self._sending)
                if claimed and free > 0:
                    continue  # there may be more due right now
                await asyncio.wait(
                    {stopping, *self._sending},
                    timeout=self._policy.poll_interval_seconds,
                    return_when=asyncio.FIRST_COMPLETED,
                )
        finally:
            stopping.cancel()
            if self._sending:
                # Unfinished sends keep their claim; the lease returns them to the outbox.
                _, stuck = await asyncio.wait(self._sending, timeout=self._policy.lease_seconds / 4)
                for task in stuck:
                    task.cancel()
                await asyncio.gather(*self._sending, return_exceptions=True)

    async def claim_and_start(self) -> int:
        """Claim due deliveries for the free slots and start sending them; returns how many."""
        free = self._policy.concurrency - len(self._sending)
        if free <= 0:
            return 0
        now = self._clock()
        uow = self._uow()
        async with uow:
            claim = await uow.webhooks.claim(
                now=now,
                lease_until=now + timedelta(seconds=self._policy.lease_seconds),
                limit=free,
                claimed_by=self._replica,
                token=str(uuid.uuid4()),
            )
            await uow.commit()
        for delivery in claim.deliveries:
            task = asyncio.create_task(self._deliver(delivery, claim.token), name=f"webhook-{delivery.id}")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return len(claim.deliveries)

    async def drain(self, max_seconds: float = 30.0) -> None:
        """Send what is due until nothing is due or sending, or `max_seconds` pass (for tests and tools)."""
        deadline = time.monotonic() + max_seconds
        while time.monotonic() < deadline:
            claimed = await self.claim_and_start()
            if self._sending:
                await asyncio.wait(self._sending, return_when=asyncio.FIRST_COMPLETED)
            elif not claimed:
                return

    async def _deliver(self, delivery: WebhookDelivery, token: str) -> None:
        try:
            await self._attempt(delivery, token)
        except Exception:
            # Recording failed (database trouble): the lease brings the delivery back.
            log.exception("recording a webhook attempt failed", delivery_id=delivery.id)

    async def _attempt(self, delivery: WebhookDelivery, token: str) -> None:
        uow = self._uow()
        async with uow:
            subscription = await uow.webhooks.get(delivery.subscription_id)
        started_at = self._clock()
        started = time.monotonic()
        status: int | None = None
        outcome: Outcome
        if subscription is None or subscription.deleted_at is not None:
            outcome = DeadLetter("the webhook was deleted")
        elif not subscription.enabled:
            outcome = DeadLetter("the webhook is disabled")
        else:
            try:
                answer = await self._send(subscription, delivery)
                status = answer.status
                retry_after = parse_retry_after(answer.retry_after, datetime.now(UTC))
                outcome = classify_response(status, retry_after=retry_after)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                outcome = classify_response(None, error)
        duration = time.monotonic() - started
        await self._record(delivery, token, subscription, outcome, status, started_at, duration)

    async def _send(self, subscription: WebhookSubscription, delivery: WebhookDelivery) -> Answer:
        url = self._box.decrypt(subscription.url_sealed)
        secret = self._box.decrypt(subscription.secret_sealed)
        body = delivery.body.encode()
        headers = {
            "Content-Type": "application/json",
            DELIVERY_ID_HEADER: delivery.id,
            EVENT_TYPE_HEADER: delivery.event_type,
            **signing.headers(secret.encode(), body, time.time(), delivery.event_id),
        }
        if subscription.auth_header_sealed is not None:
            headers["Authorization"] = self._box.decrypt(subscription.auth_header_sealed)
        return await self._sender.send(url, headers, body, subscription.timeout_seconds)

    async def _record(
        self,
        delivery: WebhookDelivery,
        token: str,
        subscription: WebhookSubscription | None,
        outcome: Outcome,
        status: int | None,
        started_at: datetime,
        duration: float,
    ) -> None:
        now = self._clock()
        next_attempt_at = now
        if isinstance(outcome, Delivered):
            state, verdict, error = DeliveryState.SUCCEEDED, AttemptOutcome.SUCCEEDED, ""
        elif isinstance(outcome, DeadLetter):
            state, verdict, error = DeliveryState.DEAD, AttemptOutcome.DEAD, outcome.reason
        else:
            error = outcome.reason
            max_attempts = subscription.max_attempts if subscription is not None else 1
            if delivery.attempts >= max_attempts:
                state, verdict = DeliveryState.DEAD, AttemptOutcome.DEAD
                error = f"{error} (no attempts left: {delivery.attempts} of {max_attempts})"
            else:
                state, verdict = DeliveryState.PENDING, AttemptOutcome.RETRY
                delay = next_delay(
                    delivery.attempts,
                    self._policy.retry_base_seconds,
                    self._policy.retry_cap_seconds,
                    self._rng,
                    outcome.retry_after,
                )
                next_attempt_at = now + timedelta(seconds=delay)
        attempt = DeliveryAttempt(
            number=delivery.attempts,
            started_at=started_at,
            duration_seconds=duration,
            status_code=status,
            error=error[:MAX_ERROR_LENGTH],
            outcome=verdict,
        )
        uow = self._uow()
        async with uow:
            recorded = await uow.webhooks.finish(
                delivery.id, token, attempt, state=state, next_attempt_at=next_attempt_at, at=now
            )
            await uow.commit()
        log.info(
            "webhook attempt",
            delivery_id=delivery.id,
            event_id=delivery.event_id,
            attempt=delivery.attempts,
            status=status,
            outcome=verdict.value,
            error=error or None,
            recorded=recorded,
        )


async def close_quietly(sender: object) -> None:
    """Close a sender that has `close()`, ignoring errors on the way out."""
    close = getattr(sender, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()
