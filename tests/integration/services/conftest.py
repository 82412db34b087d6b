"""Fixtures for service tests; the builders themselves live in `builders`."""

from __future__ import annotations

import pytest

from broker.db import Database
from broker.domain.ports import UnitOfWorkFactory
from tests.integration.services.builders import Builder, RowCounter


@pytest.fixture
def build(uow_factory: UnitOfWorkFactory) -> Builder:
    return Builder(uow_factory)


@pytest.fixture
def count_rows(database: Database) -> RowCounter:
    return RowCounter(database)
