"""Fixtures of the fault suite: a PostgreSQL database of the scenario's own, broker processes and
agent fleets that end with the test, whatever happens (they also die with the test process).

Each broker's log is kept in the test's temporary directory; its path and last lines are printed
at teardown, which pytest shows when the test failed.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

import pytest

from agent.stream.client import ClientOptions
from bench.fanout_agents import Fleet
from bench.fanout_broker import BrokerProcess, Database
from bench.fanout_workers import raise_open_files_limit
from tests.integration.faults.world import FAST_AGENTS

ADMIN_URL = os.environ.get("BROKKR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_LOG_TAIL_LINES = 30
_QUIET = re.compile(r'"level": "(debug|info)"')


@pytest.fixture
def fault_database() -> Iterator[Database]:
    """A fresh database on the shared PostgreSQL server, dropped at the end."""
    raise_open_files_limit()
    database = Database(ADMIN_URL)
    try:
        yield database
    finally:
        database.drop()


class Processes:
    """Starts brokers and fleets for one test and ends every one of them at teardown."""

    def __init__(self, logs: Path) -> None:
        self._logs = logs
        self.brokers: list[BrokerProcess] = []
        self.fleets: list[Fleet] = []

    def broker(
        self,
        database_url: str,
        settings: Mapping[str, str] | None = None,
        *,
        admin_key: str | None = None,
        replica_name: str = "faults",
    ) -> BrokerProcess:
        broker = BrokerProcess(
            database_url,
            self._logs / f"broker-{replica_name}.log",
            settings=settings,
            admin_key=admin_key,
            replica_name=replica_name,
        )
        self.brokers.append(broker)
        return broker

    def fleet(
        self, target: str, keys: Sequence[str], processes: int = 1, options: ClientOptions = FAST_AGENTS
    ) -> Fleet:
        fleet = Fleet(target, keys, processes, options)
        self.fleets.append(fleet)
        return fleet

    async def end(self) -> None:
        for fleet in self.fleets:
            fleet.kill()
        for broker in self.brokers:
            await broker.kill()
        for broker in self.brokers:
            text = broker.log_file.read_text(errors="replace") if broker.log_file.exists() else ""
            problems = [line for line in text.splitlines() if not _QUIET.search(line)]
            print(f"--- {broker.log_file}: last {_LOG_TAIL_LINES} of {len(problems)} warnings and errors")
            print("\n".join(problems[-_LOG_TAIL_LINES:]))


@pytest.fixture
async def processes(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Processes]:
    """Brokers and fleets ended at teardown; BROKKR_FAULTS_LOGS=<dir> keeps the brokers' logs there."""
    logs = tmp_path
    if kept := os.environ.get("BROKKR_FAULTS_LOGS"):
        logs = Path(kept) / request.node.name
        logs.mkdir(parents=True, exist_ok=True)
    started = Processes(logs)
    try:
        yield started
    finally:
        await started.end()
