"""Keys never reach the logs or the database, and failed authentications are visible, not silent.

A real broker (SQLite and PostgreSQL) runs with its log output captured as the console and JSON
renderers write it. The test issues, rotates and misuses every kind of key (admin, generator,
agent): in gRPC metadata, in REST Authorization headers, with and without "Bearer", tampered,
rotated away, and on the agent session stream. Then neither any key nor its long (secret) token
appears in the captured output, nor anywhere in the database, where only hashes belong.
"""

from __future__ import annotations

import io
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator

import grpc
import pytest
import structlog
from sqlalchemy import select

from broker.db.tables import audit_logs, metadata
from brokkr_common import keys
from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_session_service_pb2_grpc,
    auth_service_pb2_grpc,
    generator_pb2,
)
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as session_pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as session_api
from brokkr_common.pb.brokkr.v1 import auth_service_pb2 as auth_api
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as generator_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from tests.integration.harness import RunningBroker, running_broker


class CapturedLogs:
    """Everything the broker logs from now on, through its own console formatter and as JSON."""

    def __init__(self) -> None:
        root = logging.getLogger()
        self.console, self.json = io.StringIO(), io.StringIO()
        console = logging.StreamHandler(self.console)
        console.setFormatter(root.handlers[0].formatter)
        as_json = logging.StreamHandler(self.json)
        as_json.setFormatter(
            structlog.stdlib.ProcessorFormatter(
                processors=[
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.JSONRenderer(),
                ]
            )
        )
        self.handlers = [console, as_json]
        for handler in self.handlers:
            root.addHandler(handler)

    def close(self) -> None:
        for handler in self.handlers:
            logging.getLogger().removeHandler(handler)

    @property
    def text(self) -> str:
        return self.console.getvalue() + self.json.getvalue()


@pytest.fixture
def running(database_url: str) -> Iterator[RunningBroker]:
    with running_broker(database_url) as running:
        yield running


@pytest.fixture
def logs(running: RunningBroker) -> Iterator[CapturedLogs]:
    captured = CapturedLogs()
    try:
        yield captured
    finally:
        captured.close()


def _tampered(key: str) -> str:
    """The same short token with another secret: found by lookup, refused by the hash check."""
    return key[:-1] + ("A" if key[-1] != "A" else "B")


def _rest(running: RunningBroker, path: str, authorization: str) -> int:
    assert running.rest_url is not None
    request = urllib.request.Request(running.rest_url + path, headers={"Authorization": authorization})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def _grpc_code(running: RunningBroker, authorization: str) -> grpc.StatusCode:
    stub = auth_service_pb2_grpc.AuthServiceStub(running.channel)
    try:
        stub.WhoAmI(auth_api.WhoAmIRequest(), metadata=(("authorization", authorization),), timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK


def _connect(running: RunningBroker, key: str) -> grpc.StatusCode | str:
    """Open an agent session with `key`: the Welcome's agent id, or the code the stream ended with."""
    stub = agent_session_service_pb2_grpc.AgentSessionServiceStub(running.channel)
    hello = session_api.ConnectRequest(hello=session_pb.Hello(agent_version="log-test"))
    replies = stub.Connect(iter([hello]), metadata=running.metadata(key), timeout=10)
    try:
        first = next(replies)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[attr-defined]
    finally:
        replies.cancel()
    return first.welcome.agent_id


def test_no_key_or_secret_token_is_ever_logged_or_stored(running: RunningBroker, logs: CapturedLogs) -> None:
    assert running.admin_key is not None
    every_key = [running.admin_key]
    with BrokkrClient(running.grpc_target, running.admin_key) as admin:
        generator = admin.call(
            admin.generators.CreateGenerator,
            generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="ci")),
        )
        agent = admin.call(
            admin.agents.CreateAgent,
            agent_api.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name="edge-1", cluster_name="edge", status=agent_pb2.AGENT_STATUS_ACTIVE
                )
            ),
        )
        every_key += [generator.key, agent.key]
        rotated_generator = admin.call(
            admin.generators.RotateGeneratorKey,
            generator_api.RotateGeneratorKeyRequest(id=generator.generator.id),
        ).key
        rotated_agent = admin.call(
            admin.agents.RotateAgentKey, agent_api.RotateAgentKeyRequest(id=agent.agent.id)
        ).key
        every_key += [rotated_generator, rotated_agent]
        # A generator key travels in a create's request too: the generator uses it right away.
        with BrokkrClient(running.grpc_target, rotated_generator) as ci:
            ci.call(ci.stacks.ListStacks, stack_api.ListStacksRequest())
        rotated_admin = admin.call(admin.auth.RotateAdminKey, auth_api.RotateAdminKeyRequest()).key
        every_key.append(rotated_admin)

    # Misuse every key every way a client might.
    current = {rotated_admin, rotated_generator, rotated_agent}
    for key in every_key:
        expected = grpc.StatusCode.OK if key in current else grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_code(running, f"Bearer {key}") is expected
        assert _grpc_code(running, key) is expected  # no scheme
        assert _grpc_code(running, f"Bearer {_tampered(key)}") is grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_code(running, f"Basic {key}") is grpc.StatusCode.UNAUTHENTICATED
        assert _grpc_code(running, f"Bearer {key} {key}") is grpc.StatusCode.UNAUTHENTICATED
        assert (
            _grpc_code(running, f"Bearer {key.replace('brokkr_', 'brokr_')}")
            is grpc.StatusCode.UNAUTHENTICATED
        )
        assert _rest(running, "/api/v1/stacks", f"Bearer {key}") in ((200, 403) if key in current else (401,))
        assert _rest(running, "/api/v1/stacks", f"Bearer {_tampered(key)}") == 401
        assert _rest(running, "/api/v1/stacks", f"Token {key}") == 401
    assert _connect(running, rotated_agent) == agent.agent.id
    assert _connect(running, agent.key) is grpc.StatusCode.UNAUTHENTICATED
    assert _connect(running, _tampered(rotated_agent)) is grpc.StatusCode.UNAUTHENTICATED

    running.run(running.broker.audit_trail.flushed())
    output = logs.text
    # The capture works: the refusals above are in it, with their reasons.
    assert "KEY_INVALID" in output and "KEY_MALFORMED" in output
    assert (
        sum(
            1 for line in logs.json.getvalue().splitlines() if json.loads(line).get("reason") == "KEY_INVALID"
        )
        > 10
    )
    secrets = {key: keys.parse(key).long_token for key in every_key}
    for key, long_token in secrets.items():
        assert key not in output
        assert long_token not in output
        assert _tampered(key) not in output
        assert _tampered(key).rsplit("_", 1)[1] not in output

    stored = running.run(_everything_stored(running))
    for key, long_token in secrets.items():
        assert key not in stored and long_token not in stored


async def _everything_stored(running: RunningBroker) -> str:
    """Every row of every table, as text."""
    rows: list[str] = []
    async with running.broker.database.engine.connect() as connection:
        for table in metadata.sorted_tables:
            rows += [repr(tuple(row)) for row in await connection.execute(select(table))]
    return "\n".join(rows)


def test_every_failed_authentication_is_refused_and_audited_with_its_peer(
    running: RunningBroker, logs: CapturedLogs
) -> None:
    """A client guessing keys shows up in the audit log, one entry per attempt naming the peer,
    and never gets in. (Whether the broker also slows it down is not pinned here: when this was
    written it did not rate-limit or back off at all.)"""
    assert running.admin_key is not None
    wrong = _tampered(running.admin_key)
    codes = [_grpc_code(running, f"Bearer {wrong}") for _ in range(20)]
    assert codes[0] is grpc.StatusCode.UNAUTHENTICATED
    assert set(codes) <= {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.RESOURCE_EXHAUSTED}

    running.run(running.broker.audit_trail.flushed())
    refused = [entry for entry in running.run(_audit_entries(running)) if entry[1].endswith("/WhoAmI")]
    assert [(role, outcome) for role, _, outcome, _ in refused] == [
        ("unauthenticated", code.name) for code in codes
    ]
    assert all(peer.startswith("ipv4:127.0.0.1:") for _, _, _, peer in refused)
    assert wrong not in logs.text


async def _audit_entries(running: RunningBroker) -> list[tuple[str, str, str, str]]:
    async with running.broker.database.engine.connect() as connection:
        rows = await connection.execute(
            select(audit_logs.c.actor_role, audit_logs.c.action, audit_logs.c.outcome, audit_logs.c.peer)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]
