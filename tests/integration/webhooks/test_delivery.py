"""Webhook delivery end to end on SQLite and PostgreSQL: events written through `eventing.emit` fill
the outbox in their transaction, and the delivery worker sends them with the real HTTP client to a
real receiver on 127.0.0.1, signing, retrying and dead-lettering as the rules say."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from broker.db import Database
from broker.db import tables as t
from broker.domain.events import EventType
from broker.domain.model import ADMIN
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.webhooks_records import AttemptOutcome, DeliveryAttempt, DeliveryState
from broker.services import eventing, webhooks
from broker.services.webhooks import WebhookConfig
from broker.services.webhooks_delivery import DeliveryPolicy, DeliveryWorker
from broker.services.webhooks_http import HttpSender
from brokkr_common import signing
from brokkr_common.errors import FailedPrecondition, InvalidArgument
from brokkr_common.secretbox import SecretBox
from tests.integration.webhooks.conftest import KEY, create, deliveries, make_worker, settle
from tests.integration.webhooks.receiver import HANG


async def emit(uow_factory: UnitOfWorkFactory, event_type: EventType = EventType.STACK_CREATED, **fields):
    uow = uow_factory()
    async with uow:
        event = await eventing.emit(uow, event_type, actor=ADMIN, **fields)
        await uow.commit()
    return event


async def test_a_delivery_is_signed_and_sent_once(uow_factory, config, worker, make_receiver):
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url(), auth_header="Bearer hook-token")
    stack_id = str(uuid.uuid4())
    event = await emit(uow_factory, stack_id=stack_id, labels={"env": "prod"})

    [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)

    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DeliveryState.SUCCEEDED, 1, 200)
    assert [a.outcome for a in delivery.attempt_log] == [AttemptOutcome.SUCCEEDED]
    [request] = receiver.requests
    assert request.path == "/hooks/brokkr?token=s3cr3t-token"
    assert signing.verify(created.signing_secret.encode(), request.headers, request.body, time.time())
    assert not signing.verify(b"another secret", request.headers, request.body, time.time())
    assert request.headers["Brokkr-Event-Id"] == event.id
    assert request.headers["Brokkr-Delivery-Id"] == delivery.id
    assert request.headers["Authorization"] == "Bearer hook-token"
    body = json.loads(request.body)
    assert (body["id"], body["type"], body["subject"]["stack_id"]) == (event.id, "stack.created", stack_id)
    assert body["labels"] == {"env": "prod"}


async def test_a_receiver_failing_twice_gets_three_attempts_and_one_success(
    uow_factory, config, worker, make_receiver
):
    receiver = make_receiver([503, 500])
    created = await create(uow_factory, config, receiver.url())
    event = await emit(uow_factory)

    [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)

    assert (delivery.state, delivery.attempts) == (DeliveryState.SUCCEEDED, 3)
    assert [(a.number, a.status_code, a.outcome) for a in delivery.attempt_log] == [
        (1, 503, AttemptOutcome.RETRY),
        (2, 500, AttemptOutcome.RETRY),
        (3, 200, AttemptOutcome.SUCCEEDED),
    ]
    # Every attempt carries the same event id (the receiver's idempotency key), freshly signed.
    assert receiver.event_ids() == [event.id] * 3
    assert all(
        signing.verify(created.signing_secret.encode(), r.headers, r.body, time.time())
        for r in receiver.requests
    )


async def test_a_gone_receiver_dead_letters_at_once(uow_factory, config, worker, make_receiver):
    receiver = make_receiver(then=410)
    created = await create(uow_factory, config, receiver.url(), max_attempts=5)
    await emit(uow_factory)

    [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)

    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DeliveryState.DEAD, 1, 410)
    assert delivery.last_error == "HTTP 410"
    assert len(receiver.requests) == 1


async def test_a_hanging_receiver_times_out_and_is_retried_until_attempts_run_out(
    uow_factory, config, worker, make_receiver
):
    receiver = make_receiver(then=HANG)
    created = await create(uow_factory, config, receiver.url(), max_attempts=2, timeout_seconds=0.3)
    await emit(uow_factory)

    [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)

    assert (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 2)
    assert [(a.status_code, a.outcome) for a in delivery.attempt_log] == [
        (None, AttemptOutcome.RETRY),
        (None, AttemptOutcome.DEAD),
    ]
    assert all("Timeout" in a.error for a in delivery.attempt_log)
    assert all(0.25 < a.duration_seconds < 5 for a in delivery.attempt_log)
    assert "no attempts left: 2 of 2" in delivery.last_error
    assert len(receiver.requests) == 2


async def test_retry_after_is_a_floor_for_the_next_attempt(uow_factory, config, sender, make_receiver):
    receiver = make_receiver([(429, {"Retry-After": "2"})])
    created = await create(uow_factory, config, receiver.url())
    await emit(uow_factory)
    worker = DeliveryWorker(
        uow_factory,
        SecretBox([KEY]),
        sender,
        DeliveryPolicy(retry_base_seconds=0.01, retry_cap_seconds=60),
        replica_name="test",
    )
    await worker.drain(5)  # one attempt; the retry is not due for two seconds
    [delivery] = await deliveries(uow_factory, created.subscription.id)
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == (DeliveryState.PENDING, 1, 429)
    [attempt] = delivery.attempt_log
    assert delivery.next_attempt_at - attempt.started_at >= timedelta(seconds=2)
    assert len(receiver.requests) == 1


async def test_private_targets_are_refused_without_an_allow_list(uow_factory, count_rows, make_receiver):
    before = await count_rows()
    receiver = make_receiver()
    strict = WebhookConfig(SecretBox([KEY]))
    for url in (receiver.url(), "http://169.254.169.254/latest/meta-data/", "http://10.0.0.5/hook"):
        with pytest.raises(InvalidArgument) as raised:
            await create(uow_factory, strict, url)
        assert raised.value.reason == "WEBHOOK_DESTINATION_NOT_ALLOWED"
        assert [v.field for v in raised.value.field_violations] == ["webhook.url"]
    assert await count_rows() == before


async def test_the_destination_is_checked_again_at_delivery_time(uow_factory, config, make_receiver):
    """Allowed when saved, refused when sent (the allow-list shrank, or DNS now says private):
    dead at once, and the receiver never hears of it."""
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url())
    await emit(uow_factory)
    strict_sender = HttpSender(())
    try:
        worker = make_worker(uow_factory, strict_sender)
        [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)
    finally:
        await strict_sender.close()
    assert (delivery.state, delivery.attempts) == (DeliveryState.DEAD, 1)
    assert "loopback" in delivery.last_error
    assert receiver.requests == []


async def test_subscriptions_get_only_the_events_they_select(uow_factory, config, worker, make_receiver):
    receiver = make_receiver()
    prod_stack = str(uuid.uuid4())
    deployments = await create(
        uow_factory, config, receiver.url("/deployments"), event_types=["deployment.*"]
    )
    one_stack = await create(uow_factory, config, receiver.url("/stack"), stack_ids=[prod_stack])
    prod = await create(uow_factory, config, receiver.url("/prod"), label_selector="env=prod")
    disabled = await create(uow_factory, config, receiver.url("/disabled"), enabled=False)

    await emit(uow_factory, EventType.STACK_CREATED, stack_id=prod_stack, labels={"env": "prod"})
    await emit(uow_factory, EventType.DEPLOYMENT_FAILED, stack_id=str(uuid.uuid4()), labels={"env": "dev"})

    assert [d.event_type for d in await settle(worker, uow_factory, deployments.subscription.id, 1)] == [
        "deployment.failed"
    ]
    assert [d.event_type for d in await settle(worker, uow_factory, one_stack.subscription.id, 1)] == [
        "stack.created"
    ]
    assert [d.event_type for d in await settle(worker, uow_factory, prod.subscription.id, 1)] == [
        "stack.created"
    ]
    assert await deliveries(uow_factory, disabled.subscription.id) == []
    assert sorted(r.path for r in receiver.requests) == ["/deployments", "/prod", "/stack"]


async def test_a_test_event_reaches_only_its_webhook(uow_factory, config, worker, make_receiver):
    receiver = make_receiver()
    tested = await create(uow_factory, config, receiver.url("/tested"))
    other = await create(uow_factory, config, receiver.url("/other"))

    queued = await webhooks.test_webhook(uow_factory(), ADMIN, tested.subscription.id)

    [delivery] = await settle(worker, uow_factory, tested.subscription.id, 1)
    assert delivery.id == queued.id and delivery.event_type == "webhook.test"
    assert await deliveries(uow_factory, other.subscription.id) == []
    [request] = receiver.requests
    assert request.path == "/tested"
    assert json.loads(request.body)["payload"] == {"webhook_id": tested.subscription.id}


async def test_a_rolled_back_change_queues_nothing(uow_factory, config, make_receiver):
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url())
    uow = uow_factory()
    async with uow:
        await eventing.emit(uow, EventType.STACK_CREATED, actor=ADMIN)
        # no commit
    assert await deliveries(uow_factory, created.subscription.id) == []


async def test_secrets_are_encrypted_at_rest(database: Database, uow_factory, config, make_receiver):
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url(), auth_header="Bearer very-secret-auth")
    async with database.engine.connect() as connection:
        row = (await connection.execute(select(t.webhook_subscriptions))).one()
    raw = json.dumps([str(value) for value in row])
    for secret in ("s3cr3t-token", "very-secret-auth", created.signing_secret, "/hooks/brokkr"):
        assert secret not in raw
    assert row.url_redacted == f"http://127.0.0.1:{receiver.port}/..."
    box = SecretBox([KEY])
    assert box.decrypt(row.url_sealed) == receiver.url()
    assert box.decrypt(row.auth_header_sealed) == "Bearer very-secret-auth"


async def test_creating_a_webhook_without_a_key_is_refused(uow_factory, count_rows, make_receiver):
    before = await count_rows()
    with pytest.raises(FailedPrecondition) as raised:
        await create(uow_factory, WebhookConfig(None), make_receiver().url())
    assert raised.value.reason == "WEBHOOK_ENCRYPTION_KEY_MISSING"
    assert await count_rows() == before


async def test_bad_input_names_every_field_and_writes_nothing(uow_factory, config, count_rows):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await create(
            uow_factory,
            config,
            "ftp://example.com/x",
            event_types=["deploymnt.failed"],
            stack_ids=["not-a-uuid"],
            label_selector="env in (",
            max_attempts=99,
            timeout_seconds=120,
            auth_header="Bearer a\r\nX-Injected: 1",
        )
    assert {v.field for v in raised.value.field_violations} == {
        "webhook.url",
        "webhook.event_types[0]",
        "webhook.stack_ids[0]",
        "webhook.label_selector",
        "webhook.max_attempts",
        "webhook.timeout",
        "webhook.auth_header",
    }
    assert await count_rows() == before


async def test_a_crashed_workers_claim_returns_after_its_lease(uow_factory, config, worker, make_receiver):
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url())
    await emit(uow_factory)
    now = datetime.now(UTC)
    uow = uow_factory()
    async with uow:  # a worker claims with a short lease, then dies without sending
        dead_claim = await uow.webhooks.claim(
            now=now, lease_until=now + timedelta(seconds=0.3), limit=10, claimed_by="crashed", token="t-dead"
        )
        await uow.commit()
    assert len(dead_claim.deliveries) == 1
    assert await worker.claim_and_start() == 0  # leased: nobody else may take it yet
    await asyncio.sleep(0.35)

    [delivery] = await settle(worker, uow_factory, created.subscription.id, 1)
    assert (delivery.state, delivery.attempts) == (DeliveryState.SUCCEEDED, 2)  # the lost attempt counts
    assert len(receiver.requests) == 1

    late = DeliveryAttempt(1, now, 0.1, 200, "", AttemptOutcome.SUCCEEDED)
    uow = uow_factory()
    async with uow:  # the crashed worker wakes up: its claim is gone, nothing is written
        assert not await uow.webhooks.finish(
            delivery.id, "t-dead", late, state=DeliveryState.SUCCEEDED, next_attempt_at=now, at=now
        )
        await uow.commit()
    assert [a.number for a in (await deliveries(uow_factory, created.subscription.id))[0].attempt_log] == [2]


async def test_deleted_webhooks_dead_letter_what_was_queued(uow_factory, config, worker, make_receiver):
    receiver = make_receiver()
    created = await create(uow_factory, config, receiver.url())
    await emit(uow_factory)
    await webhooks.delete_webhook(uow_factory(), ADMIN, created.subscription.id)
    uow = uow_factory()
    async with uow:
        [delivery] = await uow.webhooks.list_deliveries(created.subscription.id, after=(), limit=10)
    await worker.drain(5)
    uow = uow_factory()
    async with uow:
        delivery = await uow.webhooks.get_delivery(delivery.id)
    assert delivery is not None and delivery.state is DeliveryState.DEAD
    assert delivery.last_error == "the webhook was deleted"
    assert receiver.requests == []


async def test_the_delivery_log_pages_newest_first(uow_factory, config, make_receiver):
    created = await create(uow_factory, config, make_receiver().url())
    events = [await emit(uow_factory) for _ in range(3)]
    webhook_id = created.subscription.id
    first = await webhooks.list_deliveries(uow_factory(), ADMIN, webhook_id, page_size=2, page_token="")
    second = await webhooks.list_deliveries(
        uow_factory(), ADMIN, webhook_id, page_size=2, page_token=first.next_page_token
    )
    assert [d.event_id for d in (*first.items, *second.items)] == [e.id for e in reversed(events)]
    assert first.next_page_token and not second.next_page_token
    other = await create(uow_factory, config, make_receiver().url())
    with pytest.raises(InvalidArgument):  # a token belongs to its webhook's list
        await webhooks.list_deliveries(
            uow_factory(), ADMIN, other.subscription.id, page_size=2, page_token=first.next_page_token
        )
