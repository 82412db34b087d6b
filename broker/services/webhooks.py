"""Webhook subscriptions: create, read, change and delete them, read their delivery log, ping them.

Only the admin manages webhooks. A webhook makes the broker send events, which may describe any
generator's stacks and agents, to an address of the caller's choosing; scoping that to a
generator's own resources would need every event filtered by ownership first, so until then the
role table (`broker.api.authz`) and `access.require_admin` here keep it an operator's tool.

Secrets never leave in clear: the URL (whose path or query often is the credential), the auth
header and the signing secret are sealed with the configured keys before they are stored, and
reads show only the redacted URL and whether an auth header is set. The signing secret is made
here and shown once, in the create response, like a key. Without a configured encryption key,
creating a webhook is FAILED_PRECONDITION: nothing is ever stored in clear.

The URL is checked twice: here, so a private or link-local target is refused up front
(INVALID_ARGUMENT on `webhook.url`), and again by the delivery worker before every attempt, since
DNS may answer differently later.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from broker.domain.events import EventType
from broker.domain.model import Page, Principal
from broker.domain.ports import UnitOfWork
from broker.domain.validation import Violations
from broker.domain.webhooks import IPNetwork, Resolver, build_filter, check_url, resolve_and_check
from broker.domain.webhooks_records import (
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_MAX_ATTEMPTS,
    MAX_TIMEOUT_SECONDS,
    WebhookDelivery,
    WebhookSubscription,
    delivery_position,
    redact_url,
)
from broker.services import access, checks, eventing, paging
from brokkr_common.errors import FailedPrecondition, InvalidArgument, not_found
from brokkr_common.secretbox import SecretBox

UPDATABLE = frozenset(
    {
        "url",
        "auth_header",
        "event_types",
        "stack_ids",
        "agent_ids",
        "label_selector",
        "enabled",
        "max_attempts",
        "timeout_seconds",
    }
)
MAX_AUTH_HEADER_LENGTH = 4096


@dataclass(frozen=True)
class WebhookConfig:
    """What the webhook use cases need from settings: the key box (None when no key is configured),
    the CIDRs private targets may be in, and a resolver (None: the system's)."""

    box: SecretBox | None
    allowed_networks: tuple[IPNetwork, ...] = ()
    resolver: Resolver | None = None

    def require_box(self) -> SecretBox:
        if self.box is None:
            raise FailedPrecondition(
                "webhooks need an encryption key for their secrets; set webhooks.encryption_key "
                "(BROKKR_WEBHOOKS__ENCRYPTION_KEY) on every broker replica",
                reason="WEBHOOK_ENCRYPTION_KEY_MISSING",
            )
        return self.box


@dataclass(frozen=True)
class CreatedWebhook:
    """A new subscription and its signing secret, shown this once."""

    subscription: WebhookSubscription
    signing_secret: str


def _check_auth_header(field: str, value: str) -> None:
    if len(value) > MAX_AUTH_HEADER_LENGTH:
        raise InvalidArgument.for_field(field, f"must be at most {MAX_AUTH_HEADER_LENGTH} characters")
    if not value.isprintable() or not value.isascii():
        raise InvalidArgument.for_field(field, "must be printable ASCII, without line breaks")


def _check_max_attempts(field: str, value: int) -> int:
    if value == 0:
        return DEFAULT_MAX_ATTEMPTS
    if not 1 <= value <= MAX_MAX_ATTEMPTS:
        raise InvalidArgument.for_field(field, f"must be between 1 and {MAX_MAX_ATTEMPTS} (0: default)")
    return value


def _check_timeout(field: str, value: float | None) -> float:
    if value is None:
        return DEFAULT_TIMEOUT_SECONDS
    if not 0 < value <= MAX_TIMEOUT_SECONDS:
        raise InvalidArgument.for_field(
            field, f"must be more than 0 and at most {MAX_TIMEOUT_SECONDS:g} seconds (unset: default)"
        )
    return value


def _validate(violations: Violations, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Checked and normalised values of the fields present in `fields`."""
    checked: dict[str, Any] = {}
    if "url" in fields and violations.check(check_url, fields["url"], "webhook.url") is not None:
        checked["url"] = fields["url"]
    if "auth_header" in fields:
        violations.check(_check_auth_header, "webhook.auth_header", fields["auth_header"])
        checked["auth_header"] = fields["auth_header"]
    if "max_attempts" in fields:
        checked["max_attempts"] = violations.check(
            _check_max_attempts, "webhook.max_attempts", fields["max_attempts"]
        )
    if "timeout_seconds" in fields:
        checked["timeout_seconds"] = violations.check(
            _check_timeout, "webhook.timeout", fields["timeout_seconds"]
        )
    if "enabled" in fields:
        checked["enabled"] = bool(fields["enabled"])
    return checked


def _filter_fields(violations: Violations, fields: Mapping[str, Any]) -> dict[str, Any]:
    found = violations.check(
        build_filter,
        fields["event_types"],
        fields["stack_ids"],
        fields["agent_ids"],
        fields["label_selector"],
        "webhook",
    )
    if found is None:
        return {}
    return {
        "event_types": found.event_types,
        "stack_ids": tuple(sorted(found.stack_ids)),
        "agent_ids": tuple(sorted(found.agent_ids)),
        "label_selector": str(found.labels),
    }


async def _check_destination(config: WebhookConfig, url: str) -> None:
    target = check_url(url, "webhook.url")
    await resolve_and_check(target.host, target.port, config.allowed_networks, config.resolver)


async def create_webhook(
    uow: UnitOfWork,
    actor: Principal,
    config: WebhookConfig,
    *,
    url: str,
    auth_header: str,
    event_types: Sequence[str],
    stack_ids: Sequence[str] = (),
    agent_ids: Sequence[str] = (),
    label_selector: str = "",
    enabled: bool = True,
    max_attempts: int = 0,
    timeout_seconds: float | None = None,
) -> CreatedWebhook:
    access.require_admin(actor, "manage webhooks")
    violations = Violations()
    checked = _validate(
        violations,
        {
            "url": url,
            "auth_header": auth_header,
            "max_attempts": max_attempts,
            "timeout_seconds": timeout_seconds,
        },
    )
    filters = _filter_fields(
        violations,
        {
            "event_types": event_types,
            "stack_ids": stack_ids,
            "agent_ids": agent_ids,
            "label_selector": label_selector,
        },
    )
    violations.raise_if_any()
    box = config.require_box()
    await _check_destination(config, url)
    signing_secret = "whsec_" + secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    subscription = WebhookSubscription(
        id=str(uuid.uuid4()),
        url_sealed=box.encrypt(url),
        url_redacted=redact_url(url),
        auth_header_sealed=box.encrypt(auth_header) if auth_header else None,
        secret_sealed=box.encrypt(signing_secret),
        enabled=enabled,
        max_attempts=checked["max_attempts"],
        timeout_seconds=checked["timeout_seconds"],
        owner_role=actor.role.value,
        owner_id=actor.id,
        created_at=now,
        updated_at=now,
        **filters,
    )
    async with uow:
        await uow.webhooks.add(subscription)
        await uow.commit()
    return CreatedWebhook(subscription, signing_secret)


async def _live(uow: UnitOfWork, webhook_id: str) -> WebhookSubscription:
    subscription = await uow.webhooks.get(webhook_id)
    if subscription is None or subscription.deleted_at is not None:
        raise not_found("webhook", webhook_id)
    return subscription


def _webhook_id(field: str, webhook_id: str) -> str:
    violations = Violations()
    checked = checks.resource_id(violations, field, webhook_id)
    violations.raise_if_any()
    return checked


async def get_webhook(uow: UnitOfWork, actor: Principal, webhook_id: str) -> WebhookSubscription:
    access.require_admin(actor, "manage webhooks")
    webhook_id = _webhook_id("id", webhook_id)
    async with uow:
        return await _live(uow, webhook_id)


async def list_webhooks(
    uow: UnitOfWork, actor: Principal, *, page_size: int, page_token: str
) -> Page[WebhookSubscription]:
    """Live webhooks ordered by id."""
    access.require_admin(actor, "manage webhooks")
    violations = Violations()
    page = paging.plan(
        violations, page_size=page_size, page_token=page_token, position=(str,), method="ListWebhooks"
    )
    violations.raise_if_any()
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.webhooks.list_page(after=after, limit=limit),
            lambda subscription: (subscription.id,),
        )


async def update_webhook(
    uow: UnitOfWork, actor: Principal, config: WebhookConfig, webhook_id: str, changes: Mapping[str, Any]
) -> WebhookSubscription:
    """Change the fields named in `changes` (see `UPDATABLE`); an empty auth_header removes it."""
    access.require_admin(actor, "manage webhooks")
    violations = Violations()
    webhook_id = checks.resource_id(violations, "webhook.id", webhook_id)
    checks.update_mask(violations, changes, UPDATABLE, "webhook")
    checked = _validate(violations, changes)
    violations.raise_if_any()
    if not changes:
        return await get_webhook(uow, actor, webhook_id)
    box = config.require_box()
    if "url" in checked:
        await _check_destination(config, checked["url"])
    async with uow:
        current = await _live(uow, webhook_id)
        filter_changes = {"event_types", "stack_ids", "agent_ids", "label_selector"}
        if filter_changes & set(changes):
            merged = {name: changes.get(name, getattr(current, name)) for name in filter_changes}
            filters = _filter_fields(violations, merged)
            violations.raise_if_any()
        else:
            filters = {}
        sealed: dict[str, Any] = {}
        if "url" in checked:
            sealed["url_sealed"] = box.encrypt(checked["url"])
            sealed["url_redacted"] = redact_url(checked["url"])
        if "auth_header" in checked:
            sealed["auth_header_sealed"] = (
                box.encrypt(checked["auth_header"]) if checked["auth_header"] else None
            )
        plain = {
            name: checked[name] for name in ("enabled", "max_attempts", "timeout_seconds") if name in checked
        }
        updated = dataclasses.replace(current, **filters, **sealed, **plain, updated_at=datetime.now(UTC))
        await uow.webhooks.update(updated)
        await uow.commit()
    return updated


async def delete_webhook(uow: UnitOfWork, actor: Principal, webhook_id: str) -> WebhookSubscription:
    """Soft-delete: no new deliveries; queued ones are dead-lettered when a worker reaches them."""
    access.require_admin(actor, "manage webhooks")
    webhook_id = _webhook_id("id", webhook_id)
    async with uow:
        current = await _live(uow, webhook_id)
        now = datetime.now(UTC)
        deleted = dataclasses.replace(current, updated_at=now, deleted_at=now)
        await uow.webhooks.update(deleted)
        await uow.commit()
    return deleted


async def list_deliveries(
    uow: UnitOfWork, actor: Principal, webhook_id: str, *, page_size: int, page_token: str
) -> Page[WebhookDelivery]:
    """A webhook's deliveries, newest first, each with its attempts."""
    access.require_admin(actor, "manage webhooks")
    violations = Violations()
    webhook_id = checks.resource_id(violations, "webhook_id", webhook_id)
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int, str),
        method="ListWebhookDeliveries",
        webhook_id=webhook_id,
    )
    violations.raise_if_any()
    async with uow:
        await _live(uow, webhook_id)
        return await paging.collect(
            page,
            lambda after, limit: uow.webhooks.list_deliveries(webhook_id, after=after, limit=limit),
            delivery_position,
        )


async def test_webhook(uow: UnitOfWork, actor: Principal, webhook_id: str) -> WebhookDelivery:
    """Emit a `webhook.test` event that only this webhook receives; returns its queued delivery."""
    access.require_admin(actor, "manage webhooks")
    webhook_id = _webhook_id("id", webhook_id)
    async with uow:
        subscription = await _live(uow, webhook_id)
        if not subscription.enabled:
            raise FailedPrecondition(
                f"webhook {webhook_id!r} is disabled; enable it to test it",
                reason="WEBHOOK_DISABLED",
                metadata={"id": webhook_id},
            )
        await eventing.emit(uow, EventType.WEBHOOK_TEST, actor=actor, payload={"webhook_id": webhook_id})
        newest = await uow.webhooks.list_deliveries(webhook_id, after=(), limit=1)
        await uow.commit()
    return newest[0]


async def require_key_if_webhooks_exist(uow: UnitOfWork, config: WebhookConfig) -> None:
    """At start-up: FAILED_PRECONDITION if webhooks exist but no encryption key is configured, since
    this replica could neither deliver them nor keep their secrets sealed."""
    if config.box is not None:
        return
    async with uow:
        if not await uow.webhooks.any_live():
            return
    raise FailedPrecondition(
        "webhooks exist but no encryption key is configured, so their URLs, auth headers and "
        "signing secrets cannot be opened; set webhooks.encryption_key (BROKKR_WEBHOOKS__ENCRYPTION_KEY) "
        "to the key(s) they were created with",
        reason="WEBHOOK_ENCRYPTION_KEY_MISSING",
    )
