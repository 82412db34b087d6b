"""What agents report, stored and shown, on both backends: acks, nacks (parked), health, what a Hello
says the agent holds; batches of a thousand reports in one call; older reports never winning."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from broker.db import Database
from broker.db.tables import deployment_statuses as statuses_table
from broker.domain.deployments import (
    ApplyReport,
    DeploymentState,
    DeploymentStatus,
    HealthReport,
    HealthState,
    Heartbeat,
    Hello,
    Report,
    ResourceHealthReport,
    ResourceOutcome,
)
from broker.domain.model import ADMIN, Agent, Stack
from broker.services import agents, deployment_statuses, sessions, stacks
from tests.integration.services.builders import Builder

KEY = "/v1/ConfigMap/demo/settings"


def ack(agent: Agent, stack: Stack, version_id: str | None, at: datetime) -> ApplyReport:
    outcome = "CREATED" if version_id else "PRUNED"
    return ApplyReport(agent.id, stack.id, version_id, True, at, resources=(ResourceOutcome(KEY, outcome),))


def nack(agent: Agent, stack: Stack, version_id: str | None, at: datetime) -> ApplyReport:
    return ApplyReport(
        agent.id,
        stack.id,
        version_id,
        False,
        at,
        error_code="INVALID_ARGUMENT",
        error_message="the cluster refused it",
        resources=(ResourceOutcome(KEY, "FAILED", "INVALID_OBJECT: spec.x is unknown"),),
    )


async def status_of(uow_factory, agent: Agent, stack: Stack) -> DeploymentStatus:
    page = await deployment_statuses.list_deployment_statuses(
        uow_factory(), ADMIN, agent_id=agent.id, page_size=1000, page_token=""
    )
    return next(s for s in page.items if s.stack_id == stack.id)


async def test_a_batch_of_a_thousand_reports_from_many_agents_is_stored_in_one_call(
    uow_factory, database: Database, build: Builder
):
    fleet = [await build.agent(labels={"env": "prod"}) for _ in range(125)]
    first, second, broken = [await build.stack(labels={"env": "prod"}) for _ in range(3)]
    versions = {stack.id: await build.submit(stack) for stack in (first, second, broken)}
    now = datetime.now(UTC)
    reports: list[Report] = []
    for agent in fleet:
        reports += [ack(agent, stack, versions[stack.id].id, now) for stack in (first, second)]
        reports.append(nack(agent, broken, versions[broken.id].id, now))
        reports += [
            HealthReport(agent.id, stack.id, versions[stack.id].id, HealthState.HEALTHY, now)
            for stack in (first, second, broken)
        ]
        reports += [
            Heartbeat(agent.id, now - timedelta(seconds=1), False, 0),
            Heartbeat(agent.id, now, True, 7),
        ]
    assert len(reports) == 1000

    await sessions.record_reports(uow_factory(), reports)

    async with database.engine.connect() as connection:
        assert await connection.scalar(select(func.count()).select_from(statuses_table)) == 375
    page = await deployment_statuses.list_deployment_statuses(
        uow_factory(), ADMIN, stack_id=first.id, page_size=1000, page_token=""
    )
    assert len(page.items) == 125
    assert {s.state for s in page.items} == {DeploymentState.APPLIED}
    assert {s.recorded.health for s in page.items if s.recorded} == {HealthState.HEALTHY}
    last = fleet[-1]
    assert (await status_of(uow_factory, last, broken)).state is DeploymentState.FAILED
    shown = await agents.get_agent(uow_factory(), ADMIN, last.id)
    assert (shown.last_heartbeat_at, shown.kubernetes_reachable) == (now, True)


async def test_a_nacked_version_stays_parked_until_a_newer_version_is_acked(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    v1, v2 = await build.submit(stack), await build.submit(stack)
    now = datetime.now(UTC)
    await sessions.record_reports(uow_factory(), [ack(agent, stack, v1.id, now)])
    await sessions.record_reports(uow_factory(), [nack(agent, stack, v2.id, now + timedelta(seconds=1))])

    failed = await status_of(uow_factory, agent, stack)
    start = await sessions.start_session(uow_factory(), agent.id)

    assert start.parked == {stack.id: v2.id}
    assert failed.state is DeploymentState.FAILED
    assert failed.recorded is not None
    assert (failed.recorded.applied, failed.recorded.failed) == (v1.ref, v2.ref)
    assert (failed.recorded.error_code, failed.recorded.error_message) == (
        "INVALID_ARGUMENT",
        "the cluster refused it",
    )
    assert failed.recorded.resources == (ResourceOutcome(KEY, "FAILED", "INVALID_OBJECT: spec.x is unknown"),)

    v3 = await build.submit(stack)
    assert (await status_of(uow_factory, agent, stack)).state is DeploymentState.PENDING
    await sessions.record_reports(uow_factory(), [ack(agent, stack, v3.id, now + timedelta(seconds=2))])

    applied = await status_of(uow_factory, agent, stack)
    assert applied.state is DeploymentState.APPLIED
    assert applied.recorded is not None
    assert (applied.recorded.applied, applied.recorded.failed, applied.recorded.error_code) == (
        v3.ref,
        None,
        "",
    )
    start = await sessions.start_session(uow_factory(), agent.id)
    assert start.parked == {}


async def test_a_report_older_than_the_stored_one_changes_nothing(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    v1, v2 = await build.submit(stack), await build.submit(stack)
    now = datetime.now(UTC)
    await sessions.record_reports(
        uow_factory(),
        [
            ack(agent, stack, v2.id, now),
            HealthReport(agent.id, stack.id, v2.id, HealthState.DEGRADED, now),
        ],
    )

    earlier = now - timedelta(seconds=5)
    await sessions.record_reports(
        uow_factory(),
        [
            ack(agent, stack, v1.id, earlier),
            nack(agent, stack, v2.id, earlier),
            HealthReport(agent.id, stack.id, v1.id, HealthState.HEALTHY, earlier),
        ],
    )

    status = await status_of(uow_factory, agent, stack)
    assert status.state is DeploymentState.APPLIED
    assert status.recorded is not None and status.recorded.applied is not None
    assert (status.recorded.applied.id, status.recorded.health) == (v2.id, HealthState.DEGRADED)


async def test_health_is_stored_with_each_resource(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    version = await build.submit(stack)
    crashing = ResourceHealthReport(
        "apps/v1/Deployment/demo/web", HealthState.FAILING, "CrashLoopBackOff", "exit 1"
    )

    await sessions.record_reports(
        uow_factory(),
        [HealthReport(agent.id, stack.id, version.id, HealthState.FAILING, datetime.now(UTC), (crashing,))],
    )

    status = await status_of(uow_factory, agent, stack)
    assert status.state is DeploymentState.PENDING  # healthy or not, nothing was acknowledged yet
    assert status.recorded is not None
    assert (status.recorded.health, status.recorded.health_resources) == (HealthState.FAILING, (crashing,))


async def test_reports_about_unknown_agents_or_stacks_are_dropped_and_the_rest_stored(
    uow_factory, build: Builder
):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    version = await build.submit(stack)
    now = datetime.now(UTC)
    stranger = dataclasses.replace(stack, id=str(uuid.uuid4()))
    ghost = dataclasses.replace(agent, id=str(uuid.uuid4()))

    await sessions.record_reports(
        uow_factory(),
        [
            ack(agent, stranger, None, now),
            HealthReport(agent.id, stranger.id, None, HealthState.HEALTHY, now),
            ack(ghost, stack, version.id, now),
            ack(agent, stack, version.id, now),
        ],
    )

    assert (await status_of(uow_factory, agent, stack)).state is DeploymentState.APPLIED


async def test_what_a_hello_says_the_agent_holds_replaces_what_was_recorded(
    uow_factory, build: Builder, connect
):
    agent = await build.agent(labels={"env": "prod"})
    kept, dropped, unsure, parked = [await build.stack(labels={"env": "prod"}) for _ in range(4)]
    versions = {stack.id: await build.submit(stack) for stack in (kept, dropped, unsure, parked)}
    newer = await build.submit(parked)
    now = datetime.now(UTC) - timedelta(seconds=10)
    await sessions.record_reports(
        uow_factory(),
        [ack(agent, stack, versions[stack.id].id, now) for stack in (kept, dropped, unsure, parked)]
        + [nack(agent, parked, newer.id, now + timedelta(seconds=1))],
    )
    session_id = await connect(agent)

    held = {
        kept.id: versions[kept.id].id,
        unsure.id: None,
        parked.id: versions[parked.id].id,
        str(uuid.uuid4()): str(uuid.uuid4()),  # a stack the broker never had
    }
    hello = Hello(agent.id, session_id, "1.0.0", held, datetime.now(UTC))
    await sessions.record_reports(uow_factory(), [hello])

    assert (await status_of(uow_factory, agent, kept)).state is DeploymentState.APPLIED
    assert (await status_of(uow_factory, agent, parked)).state is DeploymentState.FAILED
    for gone in (unsure, dropped):  # it should hold them, and holds nothing it can name
        status = await status_of(uow_factory, agent, gone)
        assert status.state is DeploymentState.PENDING
        assert status.recorded is not None and status.recorded.applied is None
    start = await sessions.start_session(uow_factory(), agent.id)
    assert start.parked == {parked.id: newer.id}


async def test_hellos_of_many_agents_in_one_batch_each_replace_only_their_own_record(
    uow_factory, build: Builder, connect
):
    """One batch, one statement per kind for every Hello in it: each agent's record follows its own
    Hello and no other's, and a Hello older than the agent's stored reports changes nothing."""
    left, right, late = [await build.agent(labels={"env": "prod"}) for _ in range(3)]
    one, two = [await build.stack(labels={"env": "prod"}) for _ in range(2)]
    versions = {stack.id: await build.submit(stack) for stack in (one, two)}
    now = datetime.now(UTC)
    await sessions.record_reports(
        uow_factory(),
        [
            ack(agent, stack, versions[stack.id].id, now)
            for agent in (left, right, late)
            for stack in (one, two)
        ],
    )
    session_ids = {agent.id: await connect(agent) for agent in (left, right, late)}
    said = {
        left.id: ({one.id: versions[one.id].id}, now + timedelta(seconds=1)),
        right.id: ({two.id: versions[two.id].id}, now + timedelta(seconds=1)),
        late.id: ({}, now - timedelta(seconds=1)),
    }

    await sessions.record_reports(
        uow_factory(),
        [Hello(agent_id, session_ids[agent_id], "1.0.0", held, at) for agent_id, (held, at) in said.items()],
    )

    states = {
        (name, stack.name): (await status_of(uow_factory, agent, stack)).state
        for name, agent in (("left", left), ("right", right), ("late", late))
        for stack in (one, two)
    }
    assert states == {
        ("left", one.name): DeploymentState.APPLIED,
        ("left", two.name): DeploymentState.PENDING,  # no longer held: nothing of it applied
        ("right", one.name): DeploymentState.PENDING,
        ("right", two.name): DeploymentState.APPLIED,
        ("late", one.name): DeploymentState.APPLIED,  # its Hello is older than its acks
        ("late", two.name): DeploymentState.APPLIED,
    }


async def test_an_acknowledged_removal_shows_removed_once_the_stack_is_gone(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    version = await build.submit(stack)
    now = datetime.now(UTC)
    await sessions.record_reports(uow_factory(), [ack(agent, stack, version.id, now)])
    await stacks.delete_stack(uow_factory(), ADMIN, stack.id)

    pending = await status_of(uow_factory, agent, stack)
    await sessions.record_reports(uow_factory(), [ack(agent, stack, None, now + timedelta(seconds=1))])
    removed = await status_of(uow_factory, agent, stack)

    assert (pending.desired, pending.state) == (None, DeploymentState.PENDING)
    assert removed.state is DeploymentState.REMOVED
    assert removed.recorded is not None and removed.recorded.applied is None
