"""EventService and AuditLogService through a real broker, on SQLite and PostgreSQL: watching live
across the commit notification path, ending cleanly on shutdown, the audit trail the API edge
writes, and both over the REST shim."""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
import uuid

import grpc
import pytest
from google.protobuf import field_mask_pb2

from brokkr_common.client import BrokkrClient
from brokkr_common.errors import PermissionDenied
from brokkr_common.pb.brokkr.v1 import (
    audit_log_service_pb2 as audit_api,
)
from brokkr_common.pb.brokkr.v1 import (
    audit_log_service_pb2_grpc,
    event_service_pb2_grpc,
    generator_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    event_service_pb2 as event_api,
)
from brokkr_common.pb.brokkr.v1 import (
    generator_service_pb2 as generator_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from brokkr_common.pb.brokkr.v1 import stack_service_pb2_grpc as stack_api_grpc
from tests.integration.harness import RunningBroker, running_broker

#: Far longer than any test waits: an event that arrives was delivered by a wake-up, not the poll.
SLOW_POLL = {"events": {"watch_poll_seconds": 60}}


@pytest.fixture
def running(database_url):
    with running_broker(database_url, **SLOW_POLL) as running:
        yield running


@pytest.fixture
def admin(running: RunningBroker):
    with BrokkrClient(running.grpc_target, running.admin_key) as client:
        yield client


def _name() -> str:
    return f"s-{uuid.uuid4().hex[:10]}"


def _create_stack(client: BrokkrClient, **fields) -> stack_pb2.Stack:
    request = stack_api.CreateStackRequest(stack=stack_pb2.Stack(name=_name(), **fields))
    return client.call(client.stacks.CreateStack, request).stack


def _watch(running: RunningBroker, key: str | None = None, **request) -> tuple[grpc.Future, queue.Queue]:
    """Start WatchEvents; a thread puts each event (then the final status code) on a queue."""
    stub = event_service_pb2_grpc.EventServiceStub(running.channel)
    stream = stub.WatchEvents(
        event_api.WatchEventsRequest(**request), metadata=running.metadata(key or running.admin_key)
    )
    received: queue.Queue = queue.Queue()

    def read() -> None:
        try:
            for message in stream:
                received.put(message.event)
            received.put(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            received.put(error.code())

    threading.Thread(target=read, daemon=True).start()
    return stream, received


def _flush_audit(running: RunningBroker) -> None:
    assert running.broker.audit_trail is not None
    running.run(running.broker.audit_trail.flushed())


def _audit_logs(running: RunningBroker, **filters) -> list:
    stub = audit_log_service_pb2_grpc.AuditLogServiceStub(running.channel)
    _flush_audit(running)
    response = stub.ListAuditLogs(
        audit_api.ListAuditLogsRequest(page_size=1000, **filters),
        metadata=running.metadata(running.admin_key),
    )
    return list(response.audit_logs)


def test_a_watch_sends_the_backlog_then_live_events_woken_by_the_commit(running: RunningBroker, admin):
    before = _create_stack(admin, labels={"team": "a"})
    stream, received = _watch(running, after_event_id="0", types=["stack.*"])
    backlog = received.get(timeout=10)
    assert (backlog.type, backlog.stack_id, dict(backlog.labels)) == (
        "stack.created",
        before.id,
        {"team": "a"},
    )
    assert (backlog.actor_role, backlog.actor_id) == ("admin", "")

    admin.call(
        admin.stacks.UpdateStack,
        stack_api.UpdateStackRequest(
            stack=stack_pb2.Stack(id=before.id, description="new"),
            update_mask=field_mask_pb2.FieldMask(paths=["description"]),
        ),
    )
    live = received.get(timeout=10)  # the poll interval is 60 s: only the wake-up is this fast
    assert (live.type, live.stack_id) == ("stack.updated", before.id)
    assert int(live.id) > int(backlog.id)
    assert list(live.payload["changed_fields"]) == ["description"]
    stream.cancel()


def test_watches_end_with_ok_when_the_broker_shuts_down(database_url):
    with running_broker(database_url, **SLOW_POLL) as running:
        # From the start of the (empty) log: a watch "from now" could start after the create.
        stream, received = _watch(running, after_event_id="0")
        with BrokkrClient(running.grpc_target, running.admin_key) as client:
            _create_stack(client)
        assert received.get(timeout=10).type == "stack.created"
        running.run(running.broker.stop(grace=10))
        assert received.get(timeout=10) == grpc.StatusCode.OK
        stream.cancel()


def test_a_client_cancelling_a_watch_is_logged_as_cancelled_not_as_a_crash(
    running: RunningBroker, admin, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="brokkr.api")
    stream, received = _watch(running, after_event_id="0")
    _create_stack(admin)
    assert received.get(timeout=10).type == "stack.created"

    stream.cancel()

    assert received.get(timeout=10) == grpc.StatusCode.CANCELLED
    running.run(_until_logged(caplog, "rpc cancelled"), timeout=40)
    messages = [str(record.msg) for record in caplog.records if record.name == "brokkr.api"]
    assert not [message for message in messages if "rpc crashed" in message]


async def _until_logged(caplog: pytest.LogCaptureFixture, text: str) -> None:
    import asyncio

    # Patient: on a loaded machine the server may learn of the cancellation late; what matters is
    # how it is logged, not when.
    async with asyncio.timeout(30):
        while not any(text in str(record.msg) for record in caplog.records):
            await asyncio.sleep(0.02)


def test_list_events_pages_and_filters_over_grpc(running: RunningBroker, admin):
    stacks = [_create_stack(admin) for _ in range(3)]
    stub = event_service_pb2_grpc.EventServiceStub(running.channel)
    md = running.metadata(running.admin_key)

    first = stub.ListEvents(event_api.ListEventsRequest(page_size=2, types=["stack.created"]), metadata=md)
    rest = stub.ListEvents(
        event_api.ListEventsRequest(page_size=2, types=["stack.created"], page_token=first.next_page_token),
        metadata=md,
    )
    by_stack = stub.ListEvents(event_api.ListEventsRequest(stack_id=stacks[1].id), metadata=md)

    assert [e.stack_id for e in [*first.events, *rest.events]] == [s.id for s in stacks]
    assert rest.next_page_token == ""
    assert [e.stack_id for e in by_stack.events] == [stacks[1].id]
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListEvents(event_api.ListEventsRequest(types=["stack.*", "bogus"]), metadata=md)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT


def test_mutating_calls_and_failed_authentication_are_audited_and_reads_are_not(
    running: RunningBroker, admin
):
    stack = _create_stack(admin)
    admin.call(admin.stacks.GetStack, stack_api.GetStackRequest(id=stack.id))
    admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest())
    generator = admin.call(
        admin.generators.CreateGenerator,
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_name())),
    )
    with BrokkrClient(running.grpc_target, generator.key) as stranger, pytest.raises(PermissionDenied):
        stranger.call(stranger.stacks.DeleteStack, stack_api.DeleteStackRequest(id=stack.id))
    bad_key = running.metadata("brokkr_notakey_definitelynotavalidkey")
    stub = event_service_pb2_grpc.EventServiceStub(running.channel)
    with pytest.raises(grpc.RpcError) as raised:
        stub.ListEvents(event_api.ListEventsRequest(), metadata=bad_key)
    assert raised.value.code() is grpc.StatusCode.UNAUTHENTICATED

    entries = list(reversed(_audit_logs(running)))  # oldest first

    assert [(e.action.rsplit("/", 1)[-1], e.actor_role, e.outcome) for e in entries] == [
        ("CreateStack", "admin", "OK"),
        ("CreateGenerator", "admin", "OK"),
        ("DeleteStack", "generator", "PERMISSION_DENIED"),
        ("ListEvents", "unauthenticated", "UNAUTHENTICATED"),
    ]
    created, _, denied, unauthenticated = entries
    assert created.action == "/brokkr.v1.StackService/CreateStack"
    assert created.resource == f"stacks/{stack.id}"
    assert created.peer and created.request_id and created.id
    assert (denied.actor_id, denied.resource) == (generator.generator.id, f"stacks/{stack.id}")
    assert unauthenticated.actor_id == ""
    only_denied = _audit_logs(running, outcome="PERMISSION_DENIED", resource=f"stacks/{stack.id}")
    assert [e.id for e in only_denied] == [denied.id]
    assert [e.id for e in _audit_logs(running, actor_role="unauthenticated")] == [unauthenticated.id]


def _rest(running: RunningBroker, path: str, key: str | None) -> tuple[int, str]:
    assert running.rest_url is not None
    headers = {"X-Forwarded-For": "203.0.113.7"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(running.rest_url + path, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_events_and_audit_logs_over_rest(running: RunningBroker, admin):
    stack = _create_stack(admin)
    key = running.admin_key

    status, body = _rest(running, "/api/v1/events?types=stack.*&pageSize=10", key)
    assert status == 200
    [event] = json.loads(body)["events"]
    assert (event["type"], event["stackId"], event["actorRole"]) == ("stack.created", stack.id, "admin")

    status, body = _rest(running, f"/api/v1/events?stackId={stack.id}&types=agent.*", key)
    assert (status, json.loads(body).get("events", [])) == (200, [])

    assert _rest(running, "/api/v1/audit-logs", None)[0] == 401
    _flush_audit(running)
    status, body = _rest(running, "/api/v1/audit-logs?outcome=UNAUTHENTICATED", key)
    assert status == 200
    [failed] = json.loads(body)["auditLogs"]
    assert (failed["action"], failed["actorRole"]) == (
        "/brokkr.v1.AuditLogService/ListAuditLogs",
        "unauthenticated",
    )
    assert "203.0.113.7" in failed["peer"]  # the client the REST shim names, not the shim itself

    generator_key = admin.call(
        admin.generators.CreateGenerator,
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_name())),
    ).key
    assert _rest(running, "/api/v1/events", generator_key)[0] == 403


def test_watch_events_over_rest_is_ndjson(running: RunningBroker, admin):
    stack = _create_stack(admin)
    assert running.rest_url is not None
    request = urllib.request.Request(
        running.rest_url + "/api/v1/events:watch?afterEventId=0&types=stack.*",
        headers={"Authorization": f"Bearer {running.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"].startswith("application/x-ndjson")
        first = json.loads(response.readline())
    assert (first["result"]["event"]["type"], first["result"]["event"]["stackId"]) == (
        "stack.created",
        stack.id,
    )


@pytest.mark.postgres
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_watch_on_one_replica_is_woken_by_a_commit_through_another(database_url):
    with (
        running_broker(database_url, **SLOW_POLL) as first,
        running_broker(database_url, **SLOW_POLL) as second,
        BrokkrClient(first.grpc_target, first.admin_key) as client,
    ):
        earlier = _create_stack(client)
        stream, received = _watch(second, first.admin_key, after_event_id="0")
        assert received.get(timeout=10).stack_id == earlier.id  # the watch caught up and now waits

        created = [_create_stack(client) for _ in range(3)]

        # Sixty-second polls: each event arrives through the other replica's NOTIFY.
        events = [received.get(timeout=10) for _ in created]
        assert [(e.type, e.stack_id) for e in events] == [("stack.created", s.id) for s in created]
        stream.cancel()


def test_a_refused_call_with_oversized_ids_is_still_audited_within_bounds(running: RunningBroker):
    stub = stack_api_grpc.StackServiceStub(running.channel)
    metadata = (*running.metadata(running.admin_key), ("x-request-id", "r" * 300))
    with pytest.raises(grpc.RpcError) as raised:
        stub.DeleteStack(stack_api.DeleteStackRequest(id="x" * 10_000), metadata=metadata)
    assert raised.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    [entry] = _audit_logs(running, outcome="INVALID_ARGUMENT")

    assert entry.action == "/brokkr.v1.StackService/DeleteStack"
    assert entry.resource == "stacks/" + "x" * 128
    assert entry.request_id == "r" * 64
