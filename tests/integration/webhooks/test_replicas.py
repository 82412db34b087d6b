"""Two broker replicas' delivery workers draining one outbox on one PostgreSQL database: every
delivery is sent exactly once (FOR UPDATE SKIP LOCKED), and both replicas take part."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping

import pytest
from sqlalchemy import delete

from broker.db import Database, open_database
from broker.db.tables import metadata
from broker.domain.events import EventType
from broker.domain.model import ADMIN
from broker.domain.webhooks_records import DeliveryState
from broker.services import eventing
from broker.services.webhooks_http import HttpAnswer, HttpSender
from tests.integration.webhooks.conftest import LOOPBACK, create, deliveries, make_worker

pytestmark = pytest.mark.postgres


class CountingSender:
    """The real sender, counting what this replica sent."""

    def __init__(self, sender: HttpSender, sent: Counter[str], replica: str) -> None:
        self._sender, self._sent, self._replica = sender, sent, replica

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, time_limit: float) -> HttpAnswer:
        self._sent[self._replica] += 1
        return await self._sender.send(url, headers, body, time_limit)


@pytest.fixture
async def replicas(migrated_postgres_url: str) -> AsyncIterator[tuple[Database, Database]]:
    """Two independent engines (two replicas) on one emptied PostgreSQL schema."""
    first = await open_database(migrated_postgres_url, pool_size=5, migrate=False)
    second = await open_database(migrated_postgres_url, pool_size=5, migrate=False)
    async with first.engine.begin() as connection:
        for table in reversed(metadata.sorted_tables):
            await connection.execute(delete(table))
    try:
        yield first, second
    finally:
        await first.dispose()
        await second.dispose()


async def test_two_replicas_drain_one_outbox_without_double_delivery(replicas, config, make_receiver):
    first, second = replicas
    receiver = make_receiver(delay=0.02)
    created = await create(first.uow_factory(), config, receiver.url())
    uow_factory = first.uow_factory()
    for _ in range(40):
        uow = uow_factory()
        async with uow:
            await eventing.emit(uow, EventType.STACK_UPDATED, actor=ADMIN)
            await uow.commit()

    sent: Counter[str] = Counter()
    senders = [HttpSender(LOOPBACK), HttpSender(LOOPBACK)]
    workers = [
        make_worker(database.uow_factory(), CountingSender(sender, sent, name), replica=name)  # type: ignore[arg-type]
        for database, sender, name in zip((first, second), senders, ("replica-a", "replica-b"), strict=True)
    ]
    stop = asyncio.Event()
    running = [asyncio.create_task(worker.run(stop)) for worker in workers]
    try:
        deadline = time.monotonic() + 30
        while len(receiver.requests) < 40 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # room for a double delivery to show up
    finally:
        stop.set()
        await asyncio.gather(*running)
        for sender in senders:
            await sender.close()

    ids = receiver.event_ids()
    assert len(ids) == 40 and len(set(ids)) == 40
    assert sent["replica-a"] > 0 and sent["replica-b"] > 0
    assert sent["replica-a"] + sent["replica-b"] == 40
    found = await deliveries(uow_factory, created.subscription.id)
    assert {(d.state, d.attempts) for d in found} == {(DeliveryState.SUCCEEDED, 1)}
