"""Fixtures for webhook tests: real HTTP receivers on 127.0.0.1, and a delivery worker over the
test's database that sends through the real HTTP client with 127.0.0.1/32 allowed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from ipaddress import ip_network

import pytest

from broker.db import Database
from broker.domain.model import ADMIN
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.webhooks_records import DeliveryState, WebhookDelivery
from broker.services import webhooks
from broker.services.webhooks import WebhookConfig
from broker.services.webhooks_delivery import DeliveryPolicy, DeliveryWorker
from broker.services.webhooks_http import HttpSender
from brokkr_common.secretbox import SecretBox, generate_key
from tests.integration.services.builders import RowCounter
from tests.integration.webhooks import receiver as receivers

KEY = generate_key()
LOOPBACK = (ip_network("127.0.0.1/32"),)
#: Fast retries, so retry tests take milliseconds.
FAST = DeliveryPolicy(
    concurrency=8, poll_interval_seconds=0.02, retry_base_seconds=0.01, retry_cap_seconds=0.05
)
FINAL = (DeliveryState.SUCCEEDED, DeliveryState.DEAD)


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., receivers.Receiver]]:
    started: list[tuple[receivers.Receiver, object]] = []

    def make(
        script: Sequence[receivers.Answer] = (), then: int = 200, delay: float = 0.0
    ) -> receivers.Receiver:
        receiver, server = receivers.start(script, then, delay)
        started.append((receiver, server))
        return receiver

    yield make
    for receiver, server in started:
        receivers.stop(receiver, server)  # type: ignore[arg-type]


@pytest.fixture
def count_rows(database: Database) -> RowCounter:
    return RowCounter(database)


@pytest.fixture
def config() -> WebhookConfig:
    return WebhookConfig(SecretBox([KEY]), LOOPBACK)


@pytest.fixture
async def sender() -> AsyncIterator[HttpSender]:
    sender = HttpSender(LOOPBACK)
    yield sender
    await sender.close()


def make_worker(uow_factory: UnitOfWorkFactory, sender: HttpSender, replica: str = "test") -> DeliveryWorker:
    return DeliveryWorker(uow_factory, SecretBox([KEY]), sender, FAST, replica_name=replica)


@pytest.fixture
async def worker(uow_factory: UnitOfWorkFactory, sender: HttpSender) -> AsyncIterator[DeliveryWorker]:
    worker = make_worker(uow_factory, sender)
    yield worker
    await worker.drain(5)


async def create(uow_factory: UnitOfWorkFactory, config: WebhookConfig, url: str, **fields):
    fields.setdefault("auth_header", "")
    fields.setdefault("event_types", ["*"])
    return await webhooks.create_webhook(uow_factory(), ADMIN, config, url=url, **fields)


async def deliveries(uow_factory: UnitOfWorkFactory, webhook_id: str) -> list[WebhookDelivery]:
    page = await webhooks.list_deliveries(uow_factory(), ADMIN, webhook_id, page_size=1000, page_token="")
    return list(page.items)


async def settle(
    worker: DeliveryWorker,
    uow_factory: UnitOfWorkFactory,
    webhook_id: str,
    count: int,
    max_seconds: float = 15,
) -> list[WebhookDelivery]:
    """Run the worker until the webhook has `count` deliveries, all succeeded or dead."""
    deadline = time.monotonic() + max_seconds
    while True:
        await worker.claim_and_start()
        found = await deliveries(uow_factory, webhook_id)
        if len(found) == count and all(d.state in FINAL for d in found):
            await worker.drain(5)
            return found
        assert time.monotonic() < deadline, f"deliveries did not settle: {found}"
        await asyncio.sleep(0.02)
