"""Subscription filters: event types, stacks, agents and labels decide which events a webhook gets."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.domain.events import Event, EventType
from broker.domain.webhooks import SubscriptionFilter, build_filter
from brokkr_common.errors import InvalidArgument

STACK = "5f0c6f1e-3c1a-4d8e-9a57-2b2f7d2a9c01"
OTHER_STACK = "5f0c6f1e-3c1a-4d8e-9a57-2b2f7d2a9c02"
AGENT = "0b9c4f8e-6a52-4c1d-8f0e-3d7a1b2c9e11"


def event(event_type: EventType, **fields: Any) -> Event:
    return Event("e-1", event_type, datetime(2025, 1, 1, tzinfo=UTC), "admin", **fields)


APPLIED = event(
    EventType.DEPLOYMENT_APPLIED, agent_id=AGENT, stack_id=STACK, labels={"env": "prod", "team": "a"}
)
CONNECTED = event(EventType.AGENT_CONNECTED, agent_id=AGENT, labels={"env": "prod"})
TEMPLATE = event(EventType.TEMPLATE_CREATED, actor_id=None)


@pytest.mark.parametrize(
    ("kwargs", "wanted"),
    [
        pytest.param({"event_types": ["*"]}, {APPLIED.type, CONNECTED.type, TEMPLATE.type}, id="everything"),
        pytest.param({"event_types": ["deployment.*"]}, {APPLIED.type}, id="type-pattern"),
        pytest.param({"event_types": ["*"], "stack_ids": [STACK]}, {APPLIED.type}, id="stack"),
        pytest.param({"event_types": ["*"], "stack_ids": [OTHER_STACK]}, set(), id="other-stack"),
        pytest.param(
            {"event_types": ["*"], "agent_ids": [AGENT]}, {APPLIED.type, CONNECTED.type}, id="agent"
        ),
        pytest.param(
            {"event_types": ["*"], "label_selector": "env=prod"}, {APPLIED.type, CONNECTED.type}, id="labels"
        ),
        pytest.param(
            {"event_types": ["*"], "label_selector": "team in (a,b)"}, {APPLIED.type}, id="label-set"
        ),
        pytest.param(
            {"event_types": ["*"], "label_selector": "!team"},
            {CONNECTED.type, TEMPLATE.type},
            id="label-absent",
        ),
        pytest.param(
            {"event_types": ["agent.*"], "agent_ids": [AGENT], "label_selector": "env=prod"},
            {CONNECTED.type},
            id="all-conditions",
        ),
    ],
)
def test_matching(kwargs: dict[str, Any], wanted: set[EventType]) -> None:
    subscription = build_filter(**kwargs)
    assert {e.type for e in (APPLIED, CONNECTED, TEMPLATE) if subscription.matches(e)} == wanted


def test_ids_are_normalised() -> None:
    assert build_filter(["*"], stack_ids=[STACK.upper()]).stack_ids == frozenset({STACK})


def test_the_default_filter_wants_everything() -> None:
    assert all(SubscriptionFilter().matches(e) for e in (APPLIED, CONNECTED, TEMPLATE))


def test_every_problem_is_reported() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_filter(
            ["deployment.*", "nope"],
            stack_ids=[STACK, "not-a-uuid"],
            agent_ids=["x"],
            label_selector="env in (a",
            field="subscription",
        )
    assert [(v.field, v.reason) for v in caught.value.field_violations] == [
        ("subscription.event_types[1]", "INVALID_EVENT_TYPE_PATTERN"),
        ("subscription.stack_ids[1]", "INVALID_UUID"),
        ("subscription.agent_ids[0]", "INVALID_UUID"),
        ("subscription.label_selector", "INVALID_LABEL_SELECTOR"),
    ]


def test_at_least_one_type_pattern_is_required() -> None:
    with pytest.raises(InvalidArgument) as caught:
        build_filter([])
    assert [(v.field, v.reason) for v in caught.value.field_violations] == [
        ("webhook.event_types", "FIELD_REQUIRED")
    ]
