"""Diagnostics requests on SQLite and PostgreSQL: who may ask, about what, and how a request moves
from PENDING to an outcome (answered by its agent only, expired when nobody answers, erased after
retention)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.changes import DiagnosticsRequested
from broker.domain.deployments import Hello
from broker.domain.diagnostics import DiagnosticsError, DiagnosticsState
from broker.domain.model import ADMIN
from broker.services import diagnostics
from brokkr_common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
)
from tests.integration.services.builders import Builder, as_generator

MISSING = "00000000-0000-4000-8000-00000000dead"
REPORT = {"pods": [{"namespace": "shop", "name": "web-1", "phase": "Running"}]}


async def targeted(build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    stack = await build.stack(labels={"env": "prod"})
    return agent, stack


async def test_an_admin_request_is_stored_pending_with_defaults_and_announced(database, build: Builder):
    published = []

    async def on_commit(changes):
        published.extend(changes)

    agent, stack = await targeted(build)
    created = await diagnostics.create_diagnostics(
        database.uow_factory(on_commit)(), ADMIN, agent_id=agent.id, stack_id=stack.id
    )
    assert created.state is DiagnosticsState.PENDING
    assert (created.options.log_tail_lines, created.options.max_log_bytes) == (50, 16384)
    assert created.expires_at - created.requested_at == timedelta(seconds=120)
    assert published == [DiagnosticsRequested(agent.id)]
    found = await diagnostics.get_diagnostics(database.uow_factory()(), ADMIN, created.id)
    assert found == created


async def test_bad_options_are_refused_naming_each_field_and_write_nothing(
    uow_factory, build: Builder, count_rows
):
    agent, stack = await targeted(build)
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await diagnostics.create_diagnostics(
            uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id, log_tail_lines=501, max_log_bytes=-1
        )
    assert [v.field for v in raised.value.field_violations] == [
        "diagnostics.options.log_tail_lines",
        "diagnostics.options.max_log_bytes",
    ]
    with pytest.raises(InvalidArgument) as raised:
        await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id="nope", stack_id=stack.id)
    assert [v.field for v in raised.value.field_violations] == ["diagnostics.agent_id"]
    assert await count_rows() == before


async def test_only_admins_may_ask_or_read(uow_factory, build: Builder):
    agent, stack = await targeted(build)
    generator = await build.generator()
    with pytest.raises(PermissionDenied):
        await diagnostics.create_diagnostics(
            uow_factory(), as_generator(generator), agent_id=agent.id, stack_id=stack.id
        )
    with pytest.raises(PermissionDenied):
        await diagnostics.list_diagnostics(uow_factory(), as_generator(generator), page_size=0, page_token="")


async def test_the_stack_must_be_on_the_agent(uow_factory, build: Builder):
    agent = await build.agent(labels={"env": "prod"})
    elsewhere = await build.stack(labels={"env": "test"})
    with pytest.raises(NotFound):
        await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=MISSING, stack_id=elsewhere.id)
    with pytest.raises(NotFound):
        await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=agent.id, stack_id=MISSING)
    with pytest.raises(FailedPrecondition) as raised:
        await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=agent.id, stack_id=elsewhere.id)
    assert raised.value.reason == "STACK_NOT_ON_AGENT"
    # A stack the agent still holds (no longer targeted, not yet removed) may be diagnosed.
    async with (uow := uow_factory()):
        held = Hello(agent.id, "session-1", "1.0.0", {elsewhere.id: None}, datetime.now(UTC))
        await uow.deployment_statuses.record_held([held])
        await uow.commit()
    created = await diagnostics.create_diagnostics(
        uow_factory(), ADMIN, agent_id=agent.id, stack_id=elsewhere.id
    )
    assert created.state is DiagnosticsState.PENDING


async def test_only_the_agent_asked_answers_and_only_once(uow_factory, build: Builder):
    agent, stack = await targeted(build)
    other = await build.agent(labels={"env": "prod"})
    created = await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id)
    await diagnostics.mark_sent(uow_factory(), created.id)
    sent = await diagnostics.get_diagnostics(uow_factory(), ADMIN, created.id)
    assert sent.state is DiagnosticsState.SENT and sent.sent_at is not None
    assert [r.id for r in await diagnostics.open_requests(uow_factory(), agent.id)] == [created.id]

    assert not await diagnostics.record_result(uow_factory(), other.id, created.id, report=REPORT, error=None)
    assert await diagnostics.record_result(uow_factory(), agent.id, created.id, report=REPORT, error=None)
    assert not await diagnostics.record_result(
        uow_factory(), agent.id, created.id, report=None, error=DiagnosticsError(14, "X", "late")
    )
    done = await diagnostics.get_diagnostics(uow_factory(), ADMIN, created.id)
    assert done.state is DiagnosticsState.COMPLETED
    assert done.report == REPORT and done.error is None
    assert done.expires_at - done.completed_at == timedelta(seconds=3600)
    assert await diagnostics.open_requests(uow_factory(), agent.id) == []


async def test_an_agent_that_cannot_diagnose_fails_the_request(uow_factory, build: Builder):
    agent, stack = await targeted(build)
    created = await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id)
    assert await diagnostics.fail_unsupported(uow_factory(), agent.id, created.id)
    failed = await diagnostics.get_diagnostics(uow_factory(), ADMIN, created.id)
    assert failed.state is DiagnosticsState.FAILED
    assert failed.error is not None and failed.error.reason == "AGENT_CANNOT_DIAGNOSE"


async def test_unanswered_requests_expire_and_finished_ones_are_erased_after_retention(
    uow_factory, build: Builder
):
    agent, stack = await targeted(build)
    policy = diagnostics.DiagnosticsPolicy(timeout=timedelta(seconds=10), retention=timedelta(seconds=60))
    created = await diagnostics.create_diagnostics(
        uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id, policy=policy
    )
    now = datetime.now(UTC)
    assert await diagnostics.expire_and_purge(uow_factory(), policy, now + timedelta(seconds=5)) == ([], 0)
    assert await diagnostics.expire_and_purge(uow_factory(), policy, now + timedelta(seconds=11)) == (
        [created.id],
        0,
    )
    expired = await diagnostics.get_diagnostics(uow_factory(), ADMIN, created.id)
    assert expired.state is DiagnosticsState.EXPIRED
    assert expired.error is not None and expired.error.reason == "DIAGNOSTICS_EXPIRED"
    # Not sent again to an agent connecting now, and its answer is no longer taken.
    assert await diagnostics.open_requests(uow_factory(), agent.id) == []
    assert not await diagnostics.record_result(uow_factory(), agent.id, created.id, report=REPORT, error=None)
    assert await diagnostics.expire_and_purge(uow_factory(), policy, now + timedelta(seconds=80)) == ([], 1)
    with pytest.raises(NotFound):
        await diagnostics.get_diagnostics(uow_factory(), ADMIN, created.id)


async def test_lists_go_newest_first_by_page_and_filter_by_agent_and_stack(uow_factory, build: Builder):
    agent, stack = await targeted(build)
    other = await build.agent(labels={"env": "prod"})
    made = [
        await diagnostics.create_diagnostics(uow_factory(), ADMIN, agent_id=a.id, stack_id=stack.id)
        for a in (agent, other, agent)
    ]
    first = await diagnostics.list_diagnostics(uow_factory(), ADMIN, page_size=2, page_token="")
    second = await diagnostics.list_diagnostics(
        uow_factory(), ADMIN, page_size=2, page_token=first.next_page_token
    )
    assert [d.id for d in first.items + second.items] == [d.id for d in reversed(made)]
    assert second.next_page_token == ""
    assert all(d.report is None for d in first.items)
    mine = await diagnostics.list_diagnostics(
        uow_factory(), ADMIN, page_size=0, page_token="", agent_id=agent.id
    )
    assert [d.id for d in mine.items] == [made[2].id, made[0].id]
    with pytest.raises(InvalidArgument):
        await diagnostics.list_diagnostics(
            uow_factory(), ADMIN, page_size=0, page_token=first.next_page_token, agent_id=agent.id
        )


async def test_a_repeated_request_id_returns_the_first_request(uow_factory, build: Builder, count_rows):
    agent, stack = await targeted(build)
    request_id = "5f0c7a52-3c1e-4d7b-9a57-1b2c3d4e5f60"
    first = await diagnostics.create_diagnostics(
        uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id, request_id=request_id
    )
    before = await count_rows()
    again = await diagnostics.create_diagnostics(
        uow_factory(), ADMIN, agent_id=agent.id, stack_id=stack.id, request_id=request_id
    )
    assert again.id == first.id
    assert await count_rows() == before
    with pytest.raises(AlreadyExists) as raised:
        await diagnostics.create_diagnostics(
            uow_factory(),
            ADMIN,
            agent_id=agent.id,
            stack_id=stack.id,
            log_tail_lines=5,
            request_id=request_id,
        )
    assert raised.value.reason == "REQUEST_ID_REUSED"
