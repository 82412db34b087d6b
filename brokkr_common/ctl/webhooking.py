"""`brokkrctl webhooks`: subscriptions that POST events to HTTP endpoints, and their deliveries.

The URL and auth header are write-only (the broker stores them encrypted and shows only the
redacted URL), so the auth header is read from a file, never from the command line where `ps` and
shell history would keep it. The signing secret is printed once, on stderr, as agent keys are.
`update` sends only the fields given (a field mask), so it never overwrites what was not mentioned.
`test --wait` follows the test delivery until the receiver accepted it (exit 0), it died (exit 1)
or the wait ran out (exit 4).
"""

from __future__ import annotations

import time

import click
from google.protobuf import duration_pb2, field_mask_pb2

from brokkr_common.ctl.arguments import limit_option, read_text
from brokkr_common.ctl.context import EXIT_API_ERROR, EXIT_TIMEOUT, EXIT_USAGE, Context, fail, pass_ctx
from brokkr_common.ctl.rollout import parse_duration
from brokkr_common.pb.brokkr.v1 import webhook_pb2
from brokkr_common.pb.brokkr.v1 import webhook_service_pb2 as webhook_api

FINAL = (webhook_pb2.WEBHOOK_DELIVERY_STATE_SUCCEEDED, webhook_pb2.WEBHOOK_DELIVERY_STATE_DEAD)


def _auth_header(path: str) -> str:
    """The file's one line, `Bearer abc`; the line break an editor adds is not part of it."""
    value = read_text(path).rstrip("\r\n")
    if "\n" in value or "\r" in value:
        fail(f"{path}: the auth header file must hold one line", EXIT_USAGE)
    return value


def _duration(text: str) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromMilliseconds(round(parse_duration(text) * 1000))
    return duration


@click.group("webhooks")
def webhooks() -> None:
    """Send events to HTTP endpoints, signed."""


@webhooks.command("list")
@limit_option
@pass_ctx
def webhooks_list(ctx: Context, limit: int) -> None:
    request = webhook_api.ListWebhooksRequest()
    ctx.show(*ctx.all_pages(ctx.client.webhooks.ListWebhooks, request, "webhooks", limit))


@webhooks.command("get")
@click.argument("webhook_id")
@pass_ctx
def webhooks_get(ctx: Context, webhook_id: str) -> None:
    request = webhook_api.GetWebhookRequest(id=webhook_id)
    ctx.show(ctx.call(ctx.client.webhooks.GetWebhook, request).webhook, single=True)


_EVENT_HELP = "Event type to send: deployment.failed, deployment.* or *; repeatable."
_STACK_HELP = "Only events about this stack (id); repeatable."
_AGENT_HELP = "Only events about this agent (id); repeatable."
_SELECTOR_HELP = "Only events whose subject's labels match, e.g. env=prod,tier in (web)."
_AUTH_HELP = "File holding the Authorization header to send, one line, e.g. `Bearer abc`."
_ATTEMPTS_HELP = "Attempts per event before it is dead-lettered, 1 to 20 [broker default: 8]."
_TIMEOUT_HELP = "How long one attempt may take (10s, 1m; at most 60s) [broker default: 10s]."


@webhooks.command("create")
@click.option("--url", required=True, help="Where to POST events (http or https).")
@click.option("--event", "event_types", multiple=True, required=True, metavar="PATTERN", help=_EVENT_HELP)
@click.option("--auth-header-file", metavar="FILE", help=_AUTH_HELP)
@click.option("--stack", "stack_ids", multiple=True, metavar="ID", help=_STACK_HELP)
@click.option("--agent", "agent_ids", multiple=True, metavar="ID", help=_AGENT_HELP)
@click.option("--label-selector", default="", help=_SELECTOR_HELP)
@click.option("--max-attempts", type=int, default=0, help=_ATTEMPTS_HELP)
@click.option("--timeout", "timeout_text", metavar="DURATION", help=_TIMEOUT_HELP)
@click.option("--disabled", is_flag=True, help="Create it disabled: no events are sent until enabled.")
@pass_ctx
def webhooks_create(
    ctx: Context,
    url: str,
    event_types: tuple[str, ...],
    auth_header_file: str | None,
    stack_ids: tuple[str, ...],
    agent_ids: tuple[str, ...],
    label_selector: str,
    max_attempts: int,
    timeout_text: str | None,
    disabled: bool,
) -> None:
    """Create a webhook; its signing secret is printed once, on stderr."""
    webhook = webhook_pb2.Webhook(
        url=url,
        auth_header=_auth_header(auth_header_file) if auth_header_file else "",
        event_types=event_types,
        stack_ids=stack_ids,
        agent_ids=agent_ids,
        label_selector=label_selector,
        enabled=not disabled,
        max_attempts=max_attempts,
    )
    if timeout_text:
        webhook.timeout.CopyFrom(_duration(timeout_text))
    created = ctx.call(ctx.client.webhooks.CreateWebhook, webhook_api.CreateWebhookRequest(webhook=webhook))
    ctx.show(created.webhook, single=True)
    click.echo(f"signing secret (shown once): {created.signing_secret}", err=True)


@webhooks.command("update")
@click.argument("webhook_id")
@click.option("--url", help="A new URL.")
@click.option("--event", "event_types", multiple=True, metavar="PATTERN", help="Replace the event types.")
@click.option("--auth-header-file", metavar="FILE", help=_AUTH_HELP)
@click.option("--no-auth-header", is_flag=True, help="Send no Authorization header any more.")
@click.option("--stack", "stack_ids", multiple=True, metavar="ID", help="Replace the stack filter.")
@click.option("--any-stack", is_flag=True, help="Drop the stack filter.")
@click.option("--agent", "agent_ids", multiple=True, metavar="ID", help="Replace the agent filter.")
@click.option("--any-agent", is_flag=True, help="Drop the agent filter.")
@click.option("--label-selector", help=f"{_SELECTOR_HELP} Empty drops it.")
@click.option("--enabled/--disabled", default=None, help="Start or stop sending events.")
@click.option("--max-attempts", type=int, help=_ATTEMPTS_HELP)
@click.option("--timeout", "timeout_text", metavar="DURATION", help=_TIMEOUT_HELP)
@pass_ctx
def webhooks_update(
    ctx: Context,
    webhook_id: str,
    url: str | None,
    event_types: tuple[str, ...],
    auth_header_file: str | None,
    no_auth_header: bool,
    stack_ids: tuple[str, ...],
    any_stack: bool,
    agent_ids: tuple[str, ...],
    any_agent: bool,
    label_selector: str | None,
    enabled: bool | None,
    max_attempts: int | None,
    timeout_text: str | None,
) -> None:
    """Change only the given fields of WEBHOOK_ID."""
    if auth_header_file and no_auth_header:
        fail("--auth-header-file and --no-auth-header contradict each other", EXIT_USAGE)
    webhook = webhook_pb2.Webhook(id=webhook_id)
    paths: list[str] = []
    if url is not None:
        webhook.url = url
        paths.append("url")
    if event_types:
        webhook.event_types.extend(event_types)
        paths.append("event_types")
    if auth_header_file or no_auth_header:
        webhook.auth_header = _auth_header(auth_header_file) if auth_header_file else ""
        paths.append("auth_header")
    if stack_ids or any_stack:
        webhook.stack_ids.extend(stack_ids)
        paths.append("stack_ids")
    if agent_ids or any_agent:
        webhook.agent_ids.extend(agent_ids)
        paths.append("agent_ids")
    if label_selector is not None:
        webhook.label_selector = label_selector
        paths.append("label_selector")
    if enabled is not None:
        webhook.enabled = enabled
        paths.append("enabled")
    if max_attempts is not None:
        webhook.max_attempts = max_attempts
        paths.append("max_attempts")
    if timeout_text is not None:
        webhook.timeout.CopyFrom(_duration(timeout_text))
        paths.append("timeout")
    if not paths:
        fail("nothing to update: give at least one field to change (see --help)", EXIT_USAGE)
    request = webhook_api.UpdateWebhookRequest(
        webhook=webhook, update_mask=field_mask_pb2.FieldMask(paths=paths)
    )
    ctx.show(ctx.call(ctx.client.webhooks.UpdateWebhook, request).webhook, single=True)


@webhooks.command("delete")
@click.argument("webhook_id")
@pass_ctx
def webhooks_delete(ctx: Context, webhook_id: str) -> None:
    """Delete a webhook; deliveries still queued for it are dead-lettered."""
    request = webhook_api.DeleteWebhookRequest(id=webhook_id)
    ctx.show(ctx.call(ctx.client.webhooks.DeleteWebhook, request).webhook, single=True)


@webhooks.command("deliveries")
@click.argument("webhook_id")
@limit_option
@pass_ctx
def webhooks_deliveries(ctx: Context, webhook_id: str, limit: int) -> None:
    """WEBHOOK_ID's deliveries, newest first; -o yaml shows every attempt."""
    request = webhook_api.ListWebhookDeliveriesRequest(webhook_id=webhook_id)
    ctx.show(*ctx.all_pages(ctx.client.webhooks.ListWebhookDeliveries, request, "deliveries", limit))


def _find_delivery(ctx: Context, webhook_id: str, delivery_id: str) -> webhook_pb2.WebhookDelivery | None:
    request = webhook_api.ListWebhookDeliveriesRequest(webhook_id=webhook_id)
    # Newest first: the test delivery is on the first page unless a flood of events came after it.
    for delivery in ctx.all_pages(ctx.client.webhooks.ListWebhookDeliveries, request, "deliveries", 1000):
        if delivery.id == delivery_id:
            return delivery
    return None


@webhooks.command("test")
@click.argument("webhook_id")
@click.option(
    "--wait",
    "wait_text",
    metavar="DURATION",
    help="Wait this long (30s, 2m) for the delivery to succeed (exit 0) or die (exit 1); exit 4 "
    "when it did neither.",
)
@pass_ctx
def webhooks_test(ctx: Context, webhook_id: str, wait_text: str | None) -> None:
    """Send a webhook.test event to WEBHOOK_ID only, and show its delivery."""
    wait = parse_duration(wait_text) if wait_text else None
    delivery = ctx.call(
        ctx.client.webhooks.TestWebhook, webhook_api.TestWebhookRequest(id=webhook_id)
    ).delivery
    if wait is not None:
        deadline = time.monotonic() + wait
        while delivery.state not in FINAL and time.monotonic() < deadline:
            time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
            delivery = _find_delivery(ctx, webhook_id, delivery.id) or delivery
    ctx.show(delivery, single=True)
    if wait is None:
        return
    if delivery.state == webhook_pb2.WEBHOOK_DELIVERY_STATE_DEAD:
        fail(f"WEBHOOK_DELIVERY_DEAD: delivery {delivery.id}: {delivery.last_error}", EXIT_API_ERROR)
    if delivery.state != webhook_pb2.WEBHOOK_DELIVERY_STATE_SUCCEEDED:
        state = webhook_pb2.WebhookDeliveryState.Name(delivery.state).removeprefix("WEBHOOK_DELIVERY_STATE_")
        fail(
            f"WEBHOOK_DELIVERY_TIMEOUT: delivery {delivery.id} still {state} after {wait_text}"
            + (f" (last error: {delivery.last_error})" if delivery.last_error else ""),
            EXIT_TIMEOUT,
        )
