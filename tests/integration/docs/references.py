"""Generators of the reference pages that code, not people, should write: metrics and events.

`docs/reference/metrics.md` is read from the Prometheus registries of a real broker (started on a
throw-away SQLite file, so every component that registers metrics exists) and of a real agent
(constructed, not started: its metrics are registered when it is built). `docs/reference/events.md`
is read from `broker.domain.events.EventType`, with the meaning, subject ids and payload keys of
each type written down here next to the code that emits it; a type without a description stops
generation. `test_references.py` fails when either page is stale.

Regenerate both with::

    .venv/bin/python -m tests.integration.docs.references
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from broker.domain.events import EventType

ROOT = Path(__file__).resolve().parents[3]
METRICS_PAGE = ROOT / "docs" / "reference" / "metrics.md"
EVENTS_PAGE = ROOT / "docs" / "reference" / "events.md"
REGENERATE = "python -m tests.integration.docs.references"


# -- metrics ----------------------------------------------------------------------------------------

#: What each label's values are, where the code fixes them; labels not listed are free text.
LABEL_VALUES = {
    ("brokkr_stack_updates_sent", "kind"): "`update` or `removal`",
    ("brokkr_stack_answers", "kind"): "`ack`, `nack`",
    ("brokkr_agent_applies", "kind"): "`apply`, `remove`",
    ("brokkr_agent_applies", "outcome"): "`ok`, `failed`",
    ("brokkr_grpc_requests", "method"): "full gRPC method name",
    ("brokkr_grpc_requests", "code"): "gRPC status code name (`OK`, `NOT_FOUND` ...)",
    ("brokkr_grpc_request_duration_seconds", "method"): "full gRPC method name",
    ("brokkr_rest_requests", "method"): "HTTP verb",
    ("brokkr_rest_requests", "route"): "route template, e.g. `/api/v1/stacks/{id}`",
    ("brokkr_rest_requests", "status"): "HTTP status; 499 when the client went away",
    ("brokkr_rest_request_duration_seconds", "method"): "HTTP verb",
    ("brokkr_rest_request_duration_seconds", "route"): "route template",
    ("brokkr_session_messages_ignored", "reason"): "`STALE_NONCE`, `UNKNOWN_NONCE`, `UNKNOWN_STACK`, "
    "`UNKNOWN_MESSAGE`",
}


@dataclass(frozen=True)
class Metric:
    name: str
    type: str
    labels: tuple[str, ...]
    help: str

    @property
    def exposed(self) -> str:
        """The sample names Prometheus scrapes."""
        if self.type == "counter":
            return f"`{self.name}_total`"
        if self.type == "histogram":
            return f"`{self.name}_bucket`, `_sum`, `_count`"
        return f"`{self.name}`"


def registry_metrics(registry: CollectorRegistry) -> list[Metric]:
    # prometheus_client keeps the collectors' declarations only in these attributes; an unlabelled
    # family has no samples to read them from before it is first used.
    collectors = {id(c): c for c in registry._collector_to_names}
    metrics = [Metric(c._name, c._type, tuple(c._labelnames), c._documentation) for c in collectors.values()]
    return sorted(metrics, key=lambda metric: metric.name)


def broker_metrics() -> list[Metric]:
    from tests.integration.harness import running_broker

    with tempfile.TemporaryDirectory() as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'brokkr.db'}"
        with running_broker(url) as running:
            return registry_metrics(running.broker.registry)


def agent_metrics() -> list[Metric]:
    from agent.config import load_settings
    from agent.runner import Agent

    with tempfile.TemporaryDirectory() as directory:
        kubeconfig = Path(directory) / "kubeconfig"
        kubeconfig.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": "http://127.0.0.1:9"}}],
                    "users": [{"name": "u", "user": {"token": "t"}}],
                    "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "x",
                }
            )
        )
        settings = load_settings(
            broker={"key": "brokkr_0000000000000000_unused"}, kubernetes={"kubeconfig": str(kubeconfig)}
        )
        return registry_metrics(Agent(settings).registry)


def _metrics_table(metrics: list[Metric]) -> list[str]:
    rows = ["| metric | type | labels | meaning |", "|---|---|---|---|"]
    for metric in metrics:
        labels = "<br>".join(
            f"`{label}`" + (f": {values}" if (values := LABEL_VALUES.get((metric.name, label))) else "")
            for label in metric.labels
        )
        rows.append(f"| {metric.exposed} | {metric.type} | {labels or '-'} | {metric.help} |")
    return rows


def metrics_reference(broker: list[Metric] | None = None, agent: list[Metric] | None = None) -> str:
    broker = broker_metrics() if broker is None else broker
    agent = agent_metrics() if agent is None else agent
    lines = [
        "# Metrics reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from the broker's and the agent's Prometheus registries;",
        "do not edit. -->",
        "",
        "Both expose the Prometheus text format at `GET /metrics`: the broker on its REST port",
        "(`rest.port`, 3000), next to the REST shim; the agent on its probe port (`http.port`, 8080),",
        "next to `/healthz` and `/readyz`. Every broker replica counts only what it handled itself:",
        "sum over replicas. [Monitoring](../how-to/monitoring.md) says what to alert on.",
        "",
        "## Broker",
        "",
        *_metrics_table(broker),
        "",
        "## Agent",
        "",
        *_metrics_table(agent),
        "",
    ]
    return "\n".join(lines)


# -- events -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventDoc:
    meaning: str
    actor: str
    subjects: str
    payload: str


_AGENT_PAYLOAD = "`name`, `cluster_name`, `status` (`ACTIVE` or `INACTIVE`)"
_STACK_PAYLOAD = "`name`, `generator_id` (empty for the admin's stacks)"
_TEMPLATE_PAYLOAD = "`name`, `version`, `generator_id`"

#: Read from where each type is emitted: broker/services/{agents,stacks,deployment_objects,
#: templates,sessions,webhooks}.py.
EVENT_DOCS: dict[EventType, EventDoc] = {
    EventType.AGENT_REGISTERED: EventDoc(
        "An agent was created (`CreateAgent`, `brokkr-broker create-agent`).",
        "admin",
        "agent",
        _AGENT_PAYLOAD,
    ),
    EventType.AGENT_DEREGISTERED: EventDoc(
        "An agent was deleted; its stacks stop reaching it.", "admin", "agent", _AGENT_PAYLOAD
    ),
    EventType.AGENT_ACTIVATED: EventDoc(
        "An agent's status changed to ACTIVE: it receives its stacks.", "admin", "agent", _AGENT_PAYLOAD
    ),
    EventType.AGENT_DEACTIVATED: EventDoc(
        "An agent's status changed to INACTIVE: it removes what it holds and receives nothing.",
        "admin",
        "agent",
        _AGENT_PAYLOAD,
    ),
    EventType.AGENT_CONNECTED: EventDoc(
        "An agent's session stream opened on a broker replica.",
        "agent",
        "agent",
        "`session_id`, `replica` (the broker replica's name), `peer` (the agent's address)",
    ),
    EventType.AGENT_DISCONNECTED: EventDoc(
        "An agent's session ended.",
        "system",
        "agent",
        "`reason`: `stream ended`, `heartbeats stopped` or `session lost by its replica`",
    ),
    EventType.STACK_CREATED: EventDoc("A stack was created.", "admin or generator", "stack", _STACK_PAYLOAD),
    EventType.STACK_UPDATED: EventDoc(
        "A stack's description, labels or annotations changed (`UpdateStack`).",
        "admin or generator",
        "stack",
        _STACK_PAYLOAD + ", `changed_fields`",
    ),
    EventType.STACK_DELETED: EventDoc(
        "A stack was deleted: its deletion marker makes agents prune what they applied for it.",
        "admin or generator",
        "stack, deployment object (the deletion marker)",
        _STACK_PAYLOAD + ", `deletion_marker_id`",
    ),
    EventType.DEPLOYMENT_OBJECT_CREATED: EventDoc(
        "A new version of a stack's content was stored, submitted or rendered from a template.",
        "admin or generator",
        "stack, deployment object; template when rendered from one",
        "`sequence_id`, `checksum`; `template_version` when rendered from a template",
    ),
    EventType.DEPLOYMENT_OBJECT_DELETED: EventDoc(
        "Reserved: deployment objects are immutable and no method deletes one, so nothing emits it yet.",
        "-",
        "-",
        "-",
    ),
    EventType.DEPLOYMENT_APPLIED: EventDoc(
        "An agent acknowledged a deployment object: every resource applied (or, for a removal, "
        "everything pruned).",
        "agent",
        "agent, stack, deployment object (none for a removal)",
        "`removed` (true for a removal), `resources`: count per outcome (`created`, `configured`, "
        "`unchanged`, `pruned` ...)",
    ),
    EventType.DEPLOYMENT_FAILED: EventDoc(
        "An agent refused a deployment object (a NACK): it stays parked until a newer version.",
        "agent",
        "agent, stack, deployment object",
        "`code` and `message` of the error, `failed_resources`: up to 20 `{key, message}`",
    ),
    EventType.HEALTH_CHANGED: EventDoc(
        "The health an agent reports for a stack changed.",
        "agent",
        "agent, stack, deployment object",
        "`health` and `previous` (`HEALTHY`, `PROGRESSING`, `DEGRADED`, `FAILING`, `UNKNOWN`), "
        "`unhealthy_resources`: up to 20 `{key, health, reason}`",
    ),
    EventType.TEMPLATE_CREATED: EventDoc(
        "A template was created (version 1).", "admin or generator", "template", _TEMPLATE_PAYLOAD
    ),
    EventType.TEMPLATE_UPDATED: EventDoc(
        "A template got a new version.",
        "admin or generator",
        "template",
        _TEMPLATE_PAYLOAD + ", `changed_fields`",
    ),
    EventType.TEMPLATE_DELETED: EventDoc(
        "A template was retired with all its versions.", "admin or generator", "template", _TEMPLATE_PAYLOAD
    ),
    EventType.WEBHOOK_TEST: EventDoc(
        "A test delivery asked for with `TestWebhook`; delivered only to that subscription.",
        "admin or generator",
        "-",
        "`webhook_id`",
    ),
}


def documented_payload_keys(event_type: EventType) -> set[str]:
    """Every name the payload column of `event_type` puts in backticks: its keys (and some values)."""
    return set(re.findall(r"`([^`]+)`", EVENT_DOCS[event_type].payload))


def events_reference() -> str:
    missing = [event_type.value for event_type in EventType if event_type not in EVENT_DOCS]
    if missing:
        raise LookupError(f"describe these event types in {__name__}.EVENT_DOCS: {', '.join(missing)}")
    rows = [
        "| type | meaning | actor | subject ids | payload keys |",
        "|---|---|---|---|---|",
    ]
    for event_type in EventType:
        doc = EVENT_DOCS[event_type]
        cells = (f"`{event_type.value}`", doc.meaning, doc.actor, doc.subjects, doc.payload)
        rows.append("| " + " | ".join(cells) + " |")
    lines = [
        "# Events reference",
        "",
        f"<!-- Generated by `{REGENERATE}` from broker/domain/events.py; do not edit. -->",
        "",
        "Every change writes an event in the same transaction (see [Events](../explanation/events.md)).",
        "An event has an ascending `id` (a resume cursor), its `type`, `time`, the actor (`actor_role`:",
        "`admin`, `generator`, `agent` or `system`; `actor_id`), the ids of its subjects (`agent_id`,",
        "`stack_id`, `deployment_object_id`, `template_id`), the `labels` of its main subject as they",
        "were then, and a JSON `payload`. Read them with `ListEvents` / `GET /api/v1/events`, follow",
        "them with `WatchEvents` / `GET /api/v1/events:watch`, or subscribe a",
        "[webhook](../how-to/webhooks.md) with patterns: `*`, `<subject>.*` (`deployment.*`) or an",
        "exact type.",
        "",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    METRICS_PAGE.write_text(metrics_reference())
    EVENTS_PAGE.write_text(events_reference())


if __name__ == "__main__":
    main()
