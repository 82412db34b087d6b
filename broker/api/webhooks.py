"""brokkr.v1.WebhookService: validate -> service -> convert.

URL and auth header are write-only fields: converting a subscription back shows the redacted URL
and whether an auth header is set, never the sealed values.
"""

from __future__ import annotations

import grpc
from google.protobuf import duration_pb2

from broker.api import convert
from broker.api.masks import changes_from_mask
from broker.config import BrokerSettings
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.webhooks_records import DeliveryAttempt, WebhookDelivery, WebhookSubscription
from broker.services import webhooks
from broker.services.webhooks import WebhookConfig
from brokkr_common.pb.brokkr.v1 import webhook_pb2, webhook_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import webhook_service_pb2 as pb


def _timeout(message: webhook_pb2.Webhook) -> float | None:
    return message.timeout.ToTimedelta().total_seconds() if message.HasField("timeout") else None


_UPDATABLE = {
    "url": lambda w: w.url,
    "auth_header": lambda w: w.auth_header,
    "event_types": lambda w: list(w.event_types),
    "stack_ids": lambda w: list(w.stack_ids),
    "agent_ids": lambda w: list(w.agent_ids),
    "label_selector": lambda w: w.label_selector,
    "enabled": lambda w: w.enabled,
    "max_attempts": lambda w: w.max_attempts,
    "timeout": _timeout,
}
#: Proto field name -> the service's name for it.
_SERVICE_NAMES = {"timeout": "timeout_seconds"}


def webhook_config(settings: BrokerSettings) -> WebhookConfig:
    return WebhookConfig(settings.webhooks.secret_box(), settings.webhooks.networks)


def _duration(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(round(seconds * 1000))
    return duration


def webhook(value: WebhookSubscription) -> webhook_pb2.Webhook:
    return webhook_pb2.Webhook(
        id=value.id,
        redacted_url=value.url_redacted,
        has_auth_header=value.auth_header_sealed is not None,
        event_types=value.event_types,
        stack_ids=value.stack_ids,
        agent_ids=value.agent_ids,
        label_selector=value.label_selector,
        enabled=value.enabled,
        max_attempts=value.max_attempts,
        timeout=_duration(value.timeout_seconds),
        create_time=convert.timestamp(value.created_at),
        update_time=convert.timestamp(value.updated_at),
    )


def _attempt(value: DeliveryAttempt) -> webhook_pb2.WebhookDeliveryAttempt:
    return webhook_pb2.WebhookDeliveryAttempt(
        number=value.number,
        start_time=convert.timestamp(value.started_at),
        duration=_duration(value.duration_seconds),
        status_code=value.status_code or 0,
        error=value.error,
        outcome=webhook_pb2.WebhookAttemptOutcome.Value(f"WEBHOOK_ATTEMPT_OUTCOME_{value.outcome.name}"),
    )


def delivery(value: WebhookDelivery) -> webhook_pb2.WebhookDelivery:
    return webhook_pb2.WebhookDelivery(
        id=value.id,
        webhook_id=value.subscription_id,
        event_id=value.event_id,
        event_type=value.event_type,
        state=webhook_pb2.WebhookDeliveryState.Value(f"WEBHOOK_DELIVERY_STATE_{value.state.name}"),
        attempt_count=value.attempts,
        next_attempt_time=convert.timestamp(value.next_attempt_at),
        last_status_code=value.last_status_code or 0,
        last_error=value.last_error,
        create_time=convert.timestamp(value.created_at),
        update_time=convert.timestamp(value.updated_at),
        attempts=[_attempt(attempt) for attempt in value.attempt_log],
    )


class WebhookServicer(webhook_service_pb2_grpc.WebhookServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, config: WebhookConfig) -> None:
        self._uow = uow
        self._config = config

    async def CreateWebhook(
        self, request: pb.CreateWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateWebhookResponse:
        hook = request.webhook
        created = await webhooks.create_webhook(
            self._uow(),
            current_principal(),
            self._config,
            url=hook.url,
            auth_header=hook.auth_header,
            event_types=list(hook.event_types),
            stack_ids=list(hook.stack_ids),
            agent_ids=list(hook.agent_ids),
            label_selector=hook.label_selector,
            enabled=hook.enabled if hook.HasField("enabled") else True,
            max_attempts=hook.max_attempts,
            timeout_seconds=_timeout(hook),
        )
        return pb.CreateWebhookResponse(
            webhook=webhook(created.subscription), signing_secret=created.signing_secret
        )

    async def GetWebhook(
        self, request: pb.GetWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetWebhookResponse:
        found = await webhooks.get_webhook(self._uow(), current_principal(), request.id)
        return pb.GetWebhookResponse(webhook=webhook(found))

    async def ListWebhooks(
        self, request: pb.ListWebhooksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWebhooksResponse:
        page = await webhooks.list_webhooks(
            self._uow(), current_principal(), page_size=request.page_size, page_token=request.page_token
        )
        return pb.ListWebhooksResponse(
            webhooks=[webhook(item) for item in page.items], next_page_token=page.next_page_token
        )

    async def UpdateWebhook(
        self, request: pb.UpdateWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateWebhookResponse:
        changes = changes_from_mask(request.webhook, request.update_mask, _UPDATABLE, field="webhook")
        renamed = {_SERVICE_NAMES.get(name, name): value for name, value in changes.items()}
        updated = await webhooks.update_webhook(
            self._uow(), current_principal(), self._config, request.webhook.id, renamed
        )
        return pb.UpdateWebhookResponse(webhook=webhook(updated))

    async def DeleteWebhook(
        self, request: pb.DeleteWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteWebhookResponse:
        deleted = await webhooks.delete_webhook(self._uow(), current_principal(), request.id)
        return pb.DeleteWebhookResponse(webhook=webhook(deleted))

    async def ListWebhookDeliveries(
        self, request: pb.ListWebhookDeliveriesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListWebhookDeliveriesResponse:
        page = await webhooks.list_deliveries(
            self._uow(),
            current_principal(),
            request.webhook_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListWebhookDeliveriesResponse(
            deliveries=[delivery(item) for item in page.items], next_page_token=page.next_page_token
        )

    async def TestWebhook(
        self, request: pb.TestWebhookRequest, context: grpc.aio.ServicerContext
    ) -> pb.TestWebhookResponse:
        queued = await webhooks.test_webhook(self._uow(), current_principal(), request.id)
        return pb.TestWebhookResponse(delivery=delivery(queued))
