"""How much PostgreSQL grows per 1,000 deployment objects, against the YAML bytes submitted.

On a fresh PostgreSQL database, in three steps, each measured as the change of every table's
`pg_total_relation_size` (heap, indexes and TOAST) and row count, after a `VACUUM` so dead rows and
their space map look the same before and after:

1. **Deployment objects.** One stack, then 1,000 versions of the realistic 10-object application of
   `bench.admin_api` (about 10 KiB of YAML; one object, the Deployment, changes per version),
   committed one after another through a broker process (`python -m broker serve`, default
   settings) with CreateDeploymentObject, as a CI pipeline would. Everything they cause is counted:
   the objects and their parsed resources, the events and the audit log entries. The broker is
   stopped (SIGTERM) before measuring, so the write-behind audit log has written everything.
   Baseline: the YAML bytes submitted.
2. **Agents.** 1,000 agents, labelled so the stack reaches them, created through the same API
   (needed for step 3; shown because it is measured anyway). Baseline: none.
3. **Deployment statuses.** One ack per agent for the newest version: 1,000 `deployment_statuses`
   rows and the `deployment.applied` events. Recording acks through the real session path would
   need 1,000 connected agents, so instead this process calls the service the session layer calls,
   `broker.services.sessions.record_reports`, against the same database, with synthetic
   `ApplyReport`s (10 resource results each: the Deployment CONFIGURED, 9 UNCHANGED) in batches of
   the broker's default report batch size. Baseline: the bytes of the `Ack` messages the agents
   would have sent for them (protobuf, without gRPC framing).

    .venv/bin/python -m bench.db_growth [--versions 1000] [--agents 1000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import yaml

from bench.admin_api import CHANGED_OBJECT, stack_yaml
from bench.fanout_api import AdminApi
from bench.fanout_broker import ADMIN_URL, BrokerProcess, Database
from bench.fanout_report import machine
from broker.config import SessionSettings
from broker.db import open_database
from broker.domain.deployments import ApplyReport, ResourceOutcome
from broker.services import sessions
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, deployment_object_pb2, stack_pb2

_START_SECONDS = 120.0
_TOP_TABLES = 5


@dataclass(frozen=True)
class TableSize:
    bytes: int
    rows: int


@dataclass(frozen=True)
class Growth:
    """What one step added, table by table."""

    step: str
    #: How many things the step made (deployment objects, agents, acks).
    count: int
    #: What was submitted for them, in bytes; None where there is nothing to compare with.
    baseline_bytes: int | None
    baseline: str
    before: dict[str, TableSize]
    after: dict[str, TableSize]

    def added(self, table: str) -> TableSize:
        old = self.before.get(table, TableSize(0, 0))
        new = self.after[table]
        return TableSize(new.bytes - old.bytes, new.rows - old.rows)

    @property
    def total_before(self) -> int:
        return sum(size.bytes for size in self.before.values())

    @property
    def total_after(self) -> int:
        return sum(size.bytes for size in self.after.values())


def snapshot(url: str) -> dict[str, TableSize]:
    """Every table of the schema: total relation size (heap + indexes + TOAST) and exact row count,
    after a VACUUM."""
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute("VACUUM")
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname"
            ).fetchall()
        ]
        sizes = {}
        for table in tables:
            row = conn.execute(
                f'SELECT pg_total_relation_size(%s::regclass), (SELECT count(*) FROM "{table}")',
                (f'"{table}"',),
            ).fetchone()
            assert row is not None
            sizes[table] = TableSize(int(row[0]), int(row[1]))
        return sizes


def _query(url: str, sql: str, *params: object) -> list[tuple]:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)) as conn:
        return conn.execute(sql, params).fetchall()


async def _with_broker(broker: BrokerProcess, step: Callable[[AdminApi], Awaitable[None]]) -> None:
    """Start the broker, run `step(api)`, stop it with SIGTERM (writing the queued audit entries)."""
    await broker.start(time.time() + _START_SECONDS)
    api = AdminApi(broker.target, broker.admin_key)
    try:
        await step(api)
    finally:
        await api.close()
        await broker.stop(time.time() + _START_SECONDS)


def _resource_keys(content: str) -> list[tuple[str, str, str, str, str]]:
    """(group, version, kind, namespace, name) of every object, in order."""
    keys = []
    for document in yaml.safe_load_all(content):
        group, _, version = document["apiVersion"].rpartition("/")
        metadata = document["metadata"]
        keys.append((group, version, document["kind"], metadata.get("namespace", ""), metadata["name"]))
    return keys


async def record_acks(url: str, stack_id: str, agent_ids: Sequence[str], sequence_id: int) -> int:
    """One ack per agent of the stack's newest deployment object, through the service the session
    layer calls; returns the bytes of the `Ack` messages the agents would have sent."""
    [(object_id, checksum)] = _query(
        url,
        "SELECT id, checksum FROM deployment_objects WHERE stack_id = %s AND sequence_id = %s",
        stack_id,
        sequence_id,
    )
    keys = _resource_keys(stack_yaml(sequence_id))
    outcomes = ["CONFIGURED" if index == CHANGED_OBJECT else "UNCHANGED" for index in range(len(keys))]
    ack = agent_session_pb2.Ack(
        nonce="s1-2",
        stack_id=stack_id,
        deployment_object=stack_pb2.DeploymentObjectRef(
            id=object_id, sequence_id=sequence_id, checksum=checksum
        ),
        results=[
            agent_session_pb2.ResourceResult(
                key=deployment_object_pb2.ResourceKey(
                    group=group, version=version, kind=kind, namespace=namespace, name=name
                ),
                outcome=agent_session_pb2.ResourceOutcome.Value(f"RESOURCE_OUTCOME_{outcome}"),
            )
            for (group, version, kind, namespace, name), outcome in zip(keys, outcomes, strict=True)
        ],
    )
    now = datetime.now(UTC)
    reports = [
        ApplyReport(
            agent_id=agent_id,
            stack_id=stack_id,
            deployment_object_id=object_id,
            succeeded=True,
            at=now,
            resources=tuple(
                ResourceOutcome(key="/".join(key), outcome=outcome)
                for key, outcome in zip(keys, outcomes, strict=True)
            ),
        )
        for agent_id in agent_ids
    ]
    database = await open_database(url, migrate=False)
    try:
        batch = SessionSettings().report_batch_size
        for start in range(0, len(reports), batch):
            await sessions.record_reports(database.uow_factory()(), reports[start : start + batch])
    finally:
        await database.dispose()
    return ack.ByteSize() * len(agent_ids)


async def measure(versions: int, agents: int, log_file: Path) -> list[Growth]:
    database = Database()
    broker = BrokerProcess(database.url, log_file)
    url = database.url
    stack_ids: list[str] = []
    submitted = 0
    try:

        async def create_stack(api: AdminApi) -> None:
            stack_ids.append(await api.create_stack())

        async def commit_versions(api: AdminApi) -> None:
            nonlocal submitted
            for version in range(1, versions + 1):
                content = stack_yaml(version)
                sequence_id, _ = await api.commit(stack_ids[0], content)
                if sequence_id != version:
                    raise RuntimeError(f"version {version} got sequence id {sequence_id}")
                submitted += len(content.encode())

        async def create_agents(api: AdminApi) -> None:
            await api.create_agents(agents)

        await _with_broker(broker, create_stack)
        empty = snapshot(url)
        await _with_broker(broker, commit_versions)
        with_objects = snapshot(url)
        await _with_broker(broker, create_agents)
        with_agents = snapshot(url)
        agent_ids = [agent_id for (agent_id,) in _query(url, "SELECT id FROM agents ORDER BY id")]
        ack_bytes = await record_acks(url, stack_ids[0], agent_ids, versions)
        with_acks = snapshot(url)
        return [
            Growth("deployment objects", versions, submitted, "YAML submitted", empty, with_objects),
            Growth("agents", agents, None, "", with_objects, with_agents),
            Growth(
                "acks (deployment statuses)",
                len(agent_ids),
                ack_bytes,
                "Ack messages",
                with_agents,
                with_acks,
            ),
        ]
    finally:
        await broker.kill()
        database.drop()


def table(growth: Growth) -> str:
    """The step's tables that grew most, the rest together, the total, and the baseline beside it."""
    grown = sorted(growth.after, key=lambda name: astuple(growth.added(name)), reverse=True)
    top, rest = grown[:_TOP_TABLES], grown[_TOP_TABLES:]
    cells = [("", "rows added", "bytes before", "bytes after", "bytes added", "bytes/row")]
    for name in top:
        added = growth.added(name)
        before = growth.before.get(name, TableSize(0, 0)).bytes
        per_row = f"{added.bytes / added.rows:,.0f}" if added.rows > 0 else "-"
        cells.append(
            (
                name,
                f"{added.rows:,}",
                f"{before:,}",
                f"{growth.after[name].bytes:,}",
                f"{added.bytes:,}",
                per_row,
            )
        )
    rest_bytes = sum(growth.added(name).bytes for name in rest)
    rest_rows = sum(growth.added(name).rows for name in rest)
    cells.append((f"{len(rest)} other tables", f"{rest_rows:,}", "", "", f"{rest_bytes:,}", ""))
    total = growth.total_after - growth.total_before
    all_rows = sum(growth.added(name).rows for name in grown)
    cells.append(
        (
            f"all {len(grown)} tables",
            f"{all_rows:,}",
            f"{growth.total_before:,}",
            f"{growth.total_after:,}",
            f"{total:,}",
            "",
        )
    )
    if growth.baseline_bytes:
        cells.append((f"baseline: {growth.baseline}", "", "", "", f"{growth.baseline_bytes:,}", ""))
        cells.append(("stored / submitted", "", "", "", f"{total / growth.baseline_bytes:.2f}x", ""))
    cells.append(
        (f"bytes stored per 1,000 {growth.step}", "", "", "", f"{total / growth.count * 1000:,.0f}", "")
    )
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        for row in cells
    ]
    return "\n".join([f"{growth.count:,} {growth.step}", *lines])


def _record(growth: Growth) -> dict[str, object]:
    return {
        "step": growth.step,
        "count": growth.count,
        "baseline": growth.baseline or None,
        "baseline_bytes": growth.baseline_bytes,
        "bytes_before": growth.total_before,
        "bytes_after": growth.total_after,
        "tables": {name: asdict(growth.added(name)) for name in sorted(growth.after)},
    }


def _postgres_version(url: str) -> str:
    [(version,)] = _query(url, "SHOW server_version")
    return f"PostgreSQL {version.split()[0]}"


async def run(versions: int, agents: int, as_json: bool) -> int:
    logs = Path(tempfile.mkdtemp(prefix="brokkr-bench-db-growth-"))
    try:
        started = time.monotonic()
        growths = await measure(versions, agents, logs / "broker.log")
    except Exception as error:
        print(f"failed: {type(error).__name__}: {error} (broker log kept in {logs})", file=sys.stderr)
        return 1
    except BaseException:
        shutil.rmtree(logs)
        raise
    shutil.rmtree(logs)
    if as_json:
        print(json.dumps([_record(growth) for growth in growths]))
        return 0
    print(f"{machine()}, {_postgres_version(ADMIN_URL)}")
    content = stack_yaml(versions)
    took = time.monotonic() - started
    print(f"stack: 10 objects, {len(content.encode()):,} bytes of YAML; run took {took:.0f} s")
    for growth in growths:
        print(f"\n{table(growth)}")
    return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--versions", type=int, default=1000, help="deployment objects to commit (default 1000)"
    )
    parser.add_argument("--agents", type=int, default=1000, help="agents to create and ack (default 1000)")
    parser.add_argument("--json", action="store_true", help="print one JSON list of steps instead of tables")
    options = parser.parse_args()
    # SIGTERM unwinds like Ctrl-C, so the broker is ended and the database dropped.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        code = asyncio.run(run(options.versions, options.agents, options.json))
    except KeyboardInterrupt:
        print("interrupted; the broker is ended and the database dropped", file=sys.stderr)
        code = 130
    sys.exit(code)


if __name__ == "__main__":
    main()
