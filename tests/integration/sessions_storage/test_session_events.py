"""What agent sessions add to the event log, on both backends: connects and disconnects (but not
the end of a session an agent has already replaced), every ack and nack, and health only when its
state changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from broker.domain.deployments import ApplyReport, HealthReport, HealthState, ResourceOutcome, SessionClosed
from broker.domain.events import Event
from broker.services import sessions
from tests.integration.services.builders import Builder

#: What sessions write (builders write others, agent.registered for instance).
SESSION_EVENTS = [
    "agent.connected",
    "agent.disconnected",
    "deployment.applied",
    "deployment.failed",
    "health.changed",
]


async def _events(uow_factory, **filters) -> list[Event]:
    filters.setdefault("types", SESSION_EVENTS)
    async with uow_factory() as uow:
        return await uow.events.list_page(after=0, limit=1000, **filters)


async def _types(uow_factory, agent_id: str) -> list[str]:
    return [event.type.value for event in await _events(uow_factory, agent_id=agent_id)]


async def test_connects_and_disconnects_are_events_unless_the_session_was_replaced(
    uow_factory, build: Builder, connect
):
    agent = await build.agent(labels={"env": "prod"})
    first = await connect(agent, replica="broker-0")
    second = await connect(agent, replica="broker-1")  # the agent moved; `first` is stale

    await sessions.record_reports(uow_factory(), [SessionClosed(agent.id, first)])
    assert await _types(uow_factory, agent.id) == ["agent.connected", "agent.connected"]

    await sessions.record_reports(uow_factory(), [SessionClosed(agent.id, second)])
    events = await _events(uow_factory, agent_id=agent.id)
    assert [e.type.value for e in events] == ["agent.connected", "agent.connected", "agent.disconnected"]
    connected, disconnected = events[1], events[2]
    assert (connected.actor_role, connected.actor_id) == ("agent", agent.id)
    assert connected.payload["replica"] == "broker-1" and connected.payload["session_id"] == second
    assert dict(connected.labels) == {"env": "prod"}
    assert disconnected.actor_role == "system" and disconnected.payload == {"reason": "stream ended"}


async def test_agents_gone_silent_or_lost_by_their_replica_are_disconnected_events(
    uow_factory, build: Builder, connect
):
    lost = await build.agent(name="lost")
    await connect(lost, replica="broker-0")
    kept = await build.agent(name="kept")
    kept_session = await connect(kept, replica="broker-0")

    await sessions.mark_stale_sessions(uow_factory(), "broker-0", [kept_session], heartbeat_timeout=3600)
    assert await _types(uow_factory, lost.id) == ["agent.connected", "agent.disconnected"]
    assert await _types(uow_factory, kept.id) == ["agent.connected"]

    later = datetime.now(UTC) + timedelta(hours=2)  # silence is judged by the other replicas
    await sessions.mark_stale_sessions(uow_factory(), "broker-1", [], heartbeat_timeout=60, now=later)
    [*_, silent] = await _events(uow_factory, agent_id=kept.id)
    assert silent.type.value == "agent.disconnected" and silent.payload == {"reason": "heartbeats stopped"}


async def test_acks_and_nacks_are_deployment_events(uow_factory, build: Builder):
    agent = await build.agent()
    stack = await build.stack(labels={"team": "shop"})
    version = await build.submit(stack)
    now = datetime.now(UTC)
    ack = ApplyReport(
        agent.id,
        stack.id,
        version.id,
        True,
        now,
        resources=(ResourceOutcome("/v1/ConfigMap/demo/a", "CREATED"),),
    )
    nack = ApplyReport(
        agent.id,
        stack.id,
        version.id,
        False,
        now + timedelta(seconds=1),
        error_code="INVALID_ARGUMENT",
        error_message="refused",
        resources=(ResourceOutcome("/v1/ConfigMap/demo/a", "FAILED", "bad field"),),
    )
    unknown_stack = ApplyReport(agent.id, str(uuid.uuid4()), None, True, now)

    await sessions.record_reports(uow_factory(), [ack, unknown_stack])
    await sessions.record_reports(uow_factory(), [nack])

    applied, failed = await _events(uow_factory, agent_id=agent.id)
    assert (applied.type.value, applied.stack_id, applied.deployment_object_id) == (
        "deployment.applied",
        stack.id,
        version.id,
    )
    assert applied.payload == {"removed": False, "resources": {"created": 1}}
    assert dict(applied.labels) == {"team": "shop"}
    assert failed.type.value == "deployment.failed"
    assert failed.payload["code"] == "INVALID_ARGUMENT"
    assert failed.payload["failed_resources"] == [{"key": "/v1/ConfigMap/demo/a", "message": "bad field"}]


async def test_health_is_an_event_only_when_its_state_changes(uow_factory, build: Builder):
    agent = await build.agent()
    stack = await build.stack()
    version = await build.submit(stack)
    start = datetime.now(UTC)

    def report(health: HealthState, seconds: int) -> HealthReport:
        return HealthReport(agent.id, stack.id, version.id, health, start + timedelta(seconds=seconds))

    for health, seconds in [
        (HealthState.PROGRESSING, 0),
        (HealthState.PROGRESSING, 1),
        (HealthState.HEALTHY, 2),
        (HealthState.HEALTHY, 3),
        (HealthState.DEGRADED, 1),  # older than what is stored: changes nothing
    ]:
        await sessions.record_reports(uow_factory(), [report(health, seconds)])

    changes = await _events(uow_factory, agent_id=agent.id, types=["health.changed"])
    assert [(e.payload["previous"], e.payload["health"]) for e in changes] == [
        (None, "PROGRESSING"),
        ("PROGRESSING", "HEALTHY"),
    ]
