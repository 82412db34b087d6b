"""What the API shows of a webhook URL, what a delivery's body is, and where it sorts."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from broker.domain.events import Event, EventType
from broker.domain.webhooks_records import (
    DeliveryState,
    WebhookDelivery,
    delivery_position,
    event_body,
    position_time,
    redact_url,
)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com/..."),
        ("https://example.com/?token=abc", "https://example.com/..."),
        ("http://10.0.0.1:8080/", "http://10.0.0.1:8080/"),
        ("https://example.com", "https://example.com/"),
    ],
)
def test_redacted_urls_keep_only_scheme_host_and_port(url: str, shown: str):
    assert redact_url(url) == shown


def test_the_body_is_the_event_as_sorted_compact_json():
    event = Event(
        id="42",
        type=EventType.DEPLOYMENT_FAILED,
        time=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
        actor_role="agent",
        actor_id="a-1",
        stack_id="s-1",
        labels={"env": "prod"},
        payload={"error": "boom"},
    )
    body = event_body(event)
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":"))
    document = json.loads(body)
    assert document["type"] == "deployment.failed" and document["time"] == "2026-11-26T10:00:00Z"
    assert document["actor"] == {"role": "agent", "id": "a-1"}
    assert document["subject"]["stack_id"] == "s-1" and document["subject"]["agent_id"] is None
    assert (document["labels"], document["payload"]) == ({"env": "prod"}, {"error": "boom"})


def test_a_delivery_position_round_trips_its_time_to_the_microsecond():
    created = datetime(2026, 11, 26, 10, 0, 0, 123456, tzinfo=UTC)
    delivery = WebhookDelivery(
        "d", "w", "1", "stack.created", "{}", DeliveryState.PENDING, 0, created, created, created
    )
    micros, delivery_id = delivery_position(delivery)
    assert (position_time(micros), delivery_id) == (created, "d")
