"""The audit trail on SQLite and PostgreSQL: write-behind batches, nothing lost on a graceful stop,
retention purges, and listing newest first with filters and pages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from broker.domain.audit import AuditEntry
from broker.domain.model import ADMIN, Principal, Role
from broker.services import audit
from brokkr_common.errors import InvalidArgument, PermissionDenied

STACK = "stacks/00000000-0000-4000-8000-00000000000a"
GENERATOR_ID = "00000000-0000-4000-8000-0000000000b1"


def entry(
    action: str = "/brokkr.v1.StackService/DeleteStack", *, age_days: float = 0, **fields
) -> AuditEntry:
    values = {
        "id": "",
        "time": datetime.now(UTC) - timedelta(days=age_days),
        "actor_role": "admin",
        "actor_id": None,
        "action": action,
        "resource": STACK,
        "outcome": "OK",
        "peer": "ipv4:10.0.0.1:5000",
        "request_id": "r1",
    }
    values.update(fields)
    return AuditEntry(**values)


async def listed(uow_factory, **filters) -> list[AuditEntry]:
    found, token = [], ""
    while True:
        page = await audit.list_audit_logs(uow_factory, ADMIN, page_size=2, page_token=token, **filters)
        found.extend(page.items)
        if not (token := page.next_page_token):
            return found


async def test_entries_are_written_in_batches_and_a_graceful_stop_writes_the_rest(uow_factory):
    trail = audit.AuditTrail(uow_factory, batch_size=2, flush_seconds=60, purge_interval_seconds=3600)
    trail.start()
    trail.record(entry(request_id="1"))
    assert await listed(uow_factory) == []  # write-behind: not yet
    trail.record(entry(request_id="2"))  # a full batch is written without waiting for the interval
    await trail.flushed()
    assert [e.request_id for e in await listed(uow_factory)] == ["2", "1"]

    trail.record(entry(request_id="3"))
    await trail.stop()

    assert [e.request_id for e in await listed(uow_factory)] == ["3", "2", "1"]


async def test_the_purge_erases_only_entries_past_retention(uow_factory):
    trail = audit.AuditTrail(uow_factory, retention_days=30, flush_seconds=0.01)
    trail.start()
    for age, request_id in ((31, "old"), (29, "recent"), (0, "new")):
        trail.record(entry(age_days=age, request_id=request_id))
    await trail.flushed()

    assert await trail.purge() == 1

    assert [e.request_id for e in await listed(uow_factory)] == ["new", "recent"]
    await trail.stop()


async def test_the_background_task_purges_on_start(uow_factory):
    writer = audit.AuditTrail(uow_factory, flush_seconds=0.01)
    writer.start()
    writer.record(entry(age_days=100, request_id="ancient"))
    await writer.stop()
    assert len(await listed(uow_factory)) == 1

    purger = audit.AuditTrail(uow_factory, retention_days=90, flush_seconds=0.01)
    purger.start()  # the loop purges once as it starts, then every purge interval
    async with asyncio.timeout(10):
        while await listed(uow_factory):
            await asyncio.sleep(0.02)
    await purger.stop()


async def test_listing_filters_by_actor_action_resource_outcome_and_time(uow_factory):
    trail = audit.AuditTrail(uow_factory, flush_seconds=0.01)
    trail.start()
    trail.record(entry(request_id="a", age_days=2))
    trail.record(
        entry(request_id="b", actor_role="generator", actor_id=GENERATOR_ID, outcome="PERMISSION_DENIED")
    )
    trail.record(
        entry(
            "/brokkr.v1.TargetService/CreateTarget",
            request_id="c",
            resource=f"agents/00000000-0000-4000-8000-0000000000c1,{STACK}",
        )
    )
    trail.record(entry(request_id="d", actor_role="unauthenticated", outcome="UNAUTHENTICATED", resource=""))
    await trail.stop()

    def ids(entries):
        return [e.request_id for e in entries]

    assert ids(await listed(uow_factory)) == ["d", "c", "b", "a"]
    assert ids(await listed(uow_factory, actor_role="generator")) == ["b"]
    assert ids(await listed(uow_factory, actor_id=GENERATOR_ID)) == ["b"]
    assert ids(await listed(uow_factory, action="/brokkr.v1.TargetService/CreateTarget")) == ["c"]
    assert ids(await listed(uow_factory, resource=STACK)) == ["c", "b", "a"]
    assert ids(await listed(uow_factory, resource="stacks/00000000")) == []  # whole names only
    assert ids(await listed(uow_factory, outcome="UNAUTHENTICATED")) == ["d"]
    yesterday = datetime.now(UTC) - timedelta(days=1)
    assert ids(await listed(uow_factory, start_time=yesterday)) == ["d", "c", "b"]
    assert ids(await listed(uow_factory, end_time=yesterday)) == ["a"]


async def test_listing_refuses_bad_filters_and_everyone_but_the_admin(uow_factory):
    now = datetime.now(UTC)
    with pytest.raises(InvalidArgument) as raised:
        await audit.list_audit_logs(
            uow_factory,
            ADMIN,
            page_size=0,
            page_token="junk",
            actor_role="root",
            actor_id="x",
            start_time=now,
            end_time=now - timedelta(seconds=1),
        )
    assert [(v.field, v.reason) for v in raised.value.field_violations] == [
        ("actor_role", "INVALID_ACTOR_ROLE"),
        ("actor_id", "INVALID_UUID"),
        ("end_time", "INVALID_TIME_RANGE"),
        ("page_token", "INVALID_PAGE_TOKEN"),
    ]
    with pytest.raises(PermissionDenied):
        await audit.list_audit_logs(
            uow_factory, Principal(Role.GENERATOR, GENERATOR_ID, "g"), page_size=0, page_token=""
        )
