"""Webhook subscriptions and deliveries as the services and the database exchange them.

The rules (where a webhook may point, when a delivery is retried, which events a subscription
wants) live in `broker.domain.webhooks`; this module holds the records those rules act on.

A subscription's URL, auth header and signing secret are stored *sealed* (encrypted with the
configured keys, `brokkr_common.secretbox`): the records carry the sealed text, and only the
delivery worker opens it, at the moment it sends. What the API shows instead is `redact_url`'s
scheme, host and port: enough to recognise a target, never the token a path or query may carry.

A delivery is one event for one subscription, written in the same transaction as the event (the
outbox). Its body is the event serialised once, at that moment, so every attempt sends the same
bytes and a receiver can deduplicate on the event id.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from broker.domain.events import Event
from broker.domain.selectors import parse_label_selector
from broker.domain.webhooks import SubscriptionFilter

#: Attempts per delivery when a subscription does not say.
DEFAULT_MAX_ATTEMPTS = 8
MAX_MAX_ATTEMPTS = 20
#: Seconds one attempt may take when a subscription does not say, and the most it may ask for.
DEFAULT_TIMEOUT_SECONDS = 10.0
MAX_TIMEOUT_SECONDS = 60.0


class DeliveryState(enum.StrEnum):
    PENDING = "pending"  # waiting for next_attempt_at
    IN_FLIGHT = "in_flight"  # claimed by a worker until its lease ends
    SUCCEEDED = "succeeded"  # a 2xx answer
    DEAD = "dead"  # dead letter: a permanent refusal, or no attempts left


class AttemptOutcome(enum.StrEnum):
    SUCCEEDED = "succeeded"
    RETRY = "retry"
    DEAD = "dead"


@dataclass(frozen=True)
class WebhookSubscription:
    """Where to send which events. The `*_sealed` fields are ciphertext; `auth_header_sealed` is
    None when the subscription sends no Authorization header."""

    id: str
    url_sealed: str
    url_redacted: str
    auth_header_sealed: str | None
    secret_sealed: str
    event_types: tuple[str, ...]
    stack_ids: tuple[str, ...]
    agent_ids: tuple[str, ...]
    label_selector: str
    enabled: bool
    max_attempts: int
    timeout_seconds: float
    owner_role: str
    owner_id: str | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @property
    def filter(self) -> SubscriptionFilter:
        """The stored filter; it was checked when saved, so it parses."""
        return SubscriptionFilter(
            self.event_types,
            frozenset(self.stack_ids),
            frozenset(self.agent_ids),
            parse_label_selector("label_selector", self.label_selector),
        )


@dataclass(frozen=True)
class DeliveryAttempt:
    """One try: when, how long, what the receiver answered (or what went wrong), and the verdict."""

    number: int
    started_at: datetime
    duration_seconds: float
    status_code: int | None
    error: str
    outcome: AttemptOutcome


@dataclass(frozen=True)
class WebhookDelivery:
    """One event on its way to one subscription. `attempts` counts claims, so a worker that died
    mid-send uses one up too; `attempt_log` is filled only when a list asks for it."""

    id: str
    subscription_id: str
    event_id: str
    event_type: str
    body: str
    state: DeliveryState
    attempts: int
    next_attempt_at: datetime
    created_at: datetime
    updated_at: datetime
    last_status_code: int | None = None
    last_error: str = ""
    attempt_log: tuple[DeliveryAttempt, ...] = ()


@dataclass(frozen=True)
class Claim:
    """Deliveries a worker holds until `lease_until`; `token` proves the claim is still its own when
    it records the result (after the lease ends, another worker may have claimed them again)."""

    token: str
    deliveries: tuple[WebhookDelivery, ...]


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def delivery_position(delivery: WebhookDelivery) -> tuple[int, str]:
    """Where a delivery sorts in its webhook's log: (created_at in microseconds since the epoch, id),
    listed newest first. Whole numbers, so a page token holds them exactly."""
    delta = delivery.created_at - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds, delivery.id)


def position_time(micros: int) -> datetime:
    """The created_at a `delivery_position` was made from."""
    return _EPOCH + timedelta(microseconds=micros)


def redact_url(url: str) -> str:
    """`https://hooks.example.com/...`: scheme, host and port only; path and query may hold tokens."""
    parts = urlsplit(url)
    rest = "/..." if (parts.path not in ("", "/") or parts.query) else "/"
    return f"{parts.scheme}://{parts.netloc}{rest}"


def event_body(event: Event) -> str:
    """The JSON every attempt of every delivery of `event` sends, keys sorted."""
    document = {
        "id": event.id,
        "type": str(event.type),
        "time": event.time.isoformat().replace("+00:00", "Z"),
        "actor": {"role": event.actor_role, "id": event.actor_id},
        "subject": {
            "agent_id": event.agent_id,
            "stack_id": event.stack_id,
            "deployment_object_id": event.deployment_object_id,
            "template_id": event.template_id,
        },
        "labels": dict(event.labels),
        "payload": dict(event.payload),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
