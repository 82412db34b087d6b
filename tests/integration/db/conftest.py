"""Fixtures for database tests: the service-level builders, for tests that need realistic rows."""

from __future__ import annotations

import pytest

from broker.domain.ports import UnitOfWorkFactory
from tests.integration.services.builders import Builder


@pytest.fixture
def build(uow_factory: UnitOfWorkFactory) -> Builder:
    return Builder(uow_factory)
