"""The generated reference pages (metrics, events) are current, and cover what the code has."""

from __future__ import annotations

import pytest

from broker.domain.events import EventType
from tests.integration.docs import references


def test_the_metrics_reference_is_current():
    committed = references.METRICS_PAGE.read_text()
    assert committed == references.metrics_reference(), (
        f"docs/reference/metrics.md is stale; run `{references.REGENERATE}`"
    )


def test_the_metrics_reference_reads_the_real_registries():
    broker = {metric.name: metric for metric in references.broker_metrics()}
    # Metrics the hub, the interceptor and the REST shim register when the broker starts.
    assert broker["brokkr_agents_connected"].type == "gauge"
    assert broker["brokkr_grpc_requests"].labels == ("method", "code")
    assert broker["brokkr_rest_requests"].labels == ("method", "route", "status")
    agent = {metric.name: metric for metric in references.agent_metrics()}
    assert agent["brokkr_agent_applies"].labels == ("kind", "outcome")
    page = references.metrics_reference(list(broker.values()), list(agent.values()))
    assert "| `brokkr_stack_answers_total` | counter | `kind`: `ack`, `nack` |" in page
    assert "`brokkr_commit_to_ack_seconds_bucket`, `_sum`, `_count` | histogram" in page


def test_the_events_reference_is_current():
    assert references.EVENTS_PAGE.read_text() == references.events_reference(), (
        f"docs/reference/events.md is stale; run `{references.REGENERATE}`"
    )


def test_every_event_type_is_described():
    page = references.events_reference()
    for event_type in EventType:
        assert f"| `{event_type.value}` |" in page


def test_an_undescribed_event_type_stops_generation(monkeypatch: pytest.MonkeyPatch):
    described = dict(references.EVENT_DOCS)
    del described[EventType.HEALTH_CHANGED]
    monkeypatch.setattr(references, "EVENT_DOCS", described)
    with pytest.raises(LookupError, match=r"health\.changed"):
        references.events_reference()
