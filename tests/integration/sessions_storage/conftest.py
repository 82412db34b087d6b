"""Fixtures for the storage side of agent sessions: the service-level builders, and a way to start a
session the way the stream layer does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from broker.domain.deployments import SessionOpened
from broker.domain.model import Agent
from broker.domain.ports import UnitOfWorkFactory
from broker.services import sessions
from tests.integration.services.builders import Builder


@pytest.fixture
def build(uow_factory: UnitOfWorkFactory) -> Builder:
    return Builder(uow_factory)


@pytest.fixture
def connect(uow_factory: UnitOfWorkFactory):
    """`await connect(agent, replica="r1")` opens a session and records it, as the stream layer
    does, and returns its id."""

    async def open_one(agent: Agent, replica: str = "replica-1", peer: str = "ipv4:10.0.0.7:51000") -> str:
        session_id = str(uuid.uuid4())
        await sessions.start_session(uow_factory(), agent.id)
        opened = SessionOpened(agent.id, session_id, replica, peer, datetime.now(UTC))
        await sessions.record_reports(uow_factory(), [opened])
        return session_id

    return open_one
