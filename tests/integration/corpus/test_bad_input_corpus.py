"""Every case of the bad-input corpus (`cases.py`) against a real broker, on SQLite and PostgreSQL.

For each case: the exact status code, `ErrorInfo.reason` and `BadRequest` fields (and HTTP status
through the REST shim); no row written in any table, the audit log aside, which records a refused
call of a state-changing method once, with the refusal's code as its outcome; and the broker still
SERVING on the gRPC health check afterwards. One broker per backend serves the whole module.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy import func, select
from sqlalchemy.engine import URL

from broker.api import registry
from broker.api.audit_logs import audited_methods
from broker.db.tables import audit_logs, metadata
from broker.rest import build_routes
from broker.rest.statuses import http_status
from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    deployment_object_pb2,
    generator_pb2,
    stack_pb2,
    template_pb2,
    template_service_pb2_grpc,
)
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as generator_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from brokkr_common.pb.brokkr.v1 import template_service_pb2 as template_api
from tests.conftest import _admin_sql, _in_schema
from tests.integration.corpus.cases import (
    CASES,
    CONFIGMAP,
    MAX_DEPLOYMENT_OBJECT_BYTES,
    Case,
    Grpc,
    Rest,
    World,
)
from tests.integration.harness import RunningBroker, running_broker

AUDITED = audited_methods(registry.file_descriptors())
STRICT_TEMPLATE = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\ndata:\n  replicas: '{{ replicas }}'\n"
)
STRICT_SCHEMA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 30},
        "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
    },
}
LOOSE_TEMPLATE = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ name }}\n"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An empty database for the module's broker: a SQLite file, or a PostgreSQL schema of its own."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('corpus') / 'brokkr.db'}"
        return
    database: URL = request.getfixturevalue("postgres_database")
    schema = f"corpus_{uuid.uuid4().hex[:12]}"
    _admin_sql(database, f'CREATE SCHEMA "{schema}"')
    try:
        yield _in_schema(database, schema)
    finally:
        _admin_sql(database, f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module")
def running(backend_url: str) -> Iterator[RunningBroker]:
    with running_broker(
        backend_url, limits={"max_deployment_object_bytes": MAX_DEPLOYMENT_OBJECT_BYTES}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def world(running: RunningBroker) -> World:
    assert running.admin_key is not None
    with BrokkrClient(running.grpc_target, running.admin_key) as admin:
        stack = admin.call(
            admin.stacks.CreateStack, stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="corpus"))
        )
        deployment_object = admin.call(
            admin.deployment_objects.CreateDeploymentObject,
            do_api.CreateDeploymentObjectRequest(
                stack_id=stack.stack.id,
                deployment_object=deployment_object_pb2.DeploymentObject(
                    yaml_content=CONFIGMAP.format(name="a")
                ),
            ),
        ).deployment_object
        reused_request_id = str(uuid.uuid4())
        admin.call(
            admin.stacks.CreateStack,
            stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="reused"), request_id=reused_request_id),
        )
        generators = [
            admin.call(
                admin.generators.CreateGenerator,
                generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=name)),
            )
            for name in ("corpus-gen", "other-gen")
        ]
        agents = [
            admin.call(
                admin.agents.CreateAgent,
                agent_api.CreateAgentRequest(agent=agent_pb2.Agent(name=name, cluster_name="corpus")),
            ).agent
            for name in ("corpus-agent", "second-agent")
        ]
        tokens = {
            "ListStacks/admin": admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest(page_size=1)),
            "ListAgents/admin": admin.call(admin.agents.ListAgents, agent_api.ListAgentsRequest(page_size=1)),
            "ListGenerators/admin": admin.call(
                admin.generators.ListGenerators, generator_api.ListGeneratorsRequest(page_size=1)
            ),
        }
    with BrokkrClient(running.grpc_target, generators[0].key) as generator:
        for name in ("gen-a", "gen-b"):
            generator.call(
                generator.stacks.CreateStack, stack_api.CreateStackRequest(stack=stack_pb2.Stack(name=name))
            )
        tokens["ListStacks/generator"] = generator.call(
            generator.stacks.ListStacks, stack_api.ListStacksRequest(page_size=1)
        )
    templates = template_service_pb2_grpc.TemplateServiceStub(running.channel)
    created_templates = []
    for name, content, schema in [
        ("strict", STRICT_TEMPLATE, STRICT_SCHEMA),
        ("loose", LOOSE_TEMPLATE, None),
    ]:
        template = template_pb2.Template(name=name, content=content)
        if schema is not None:
            template.parameters_schema.CopyFrom(_struct(schema))
        created_templates.append(
            templates.CreateTemplate(
                template_api.CreateTemplateRequest(template=template),
                metadata=running.metadata(running.admin_key),
            ).template
        )
    page_tokens = {name: reply.next_page_token for name, reply in tokens.items()}
    assert all(page_tokens.values()), page_tokens
    return World(
        stack_id=stack.stack.id,
        deployment_object_id=deployment_object.id,
        reused_request_id=reused_request_id,
        generator_id=generators[0].generator.id,
        agent_id=agents[0].id,
        template_id=created_templates[0].id,
        loose_template_id=created_templates[1].id,
        keys={"admin": running.admin_key, "generator": generators[0].key, "other": generators[1].key},
        tokens=page_tokens,
    )


def _struct(values: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)
    return struct


# -- sending a case and reading the answer --------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What came back, in the terms a case expects."""

    code: grpc.StatusCode
    reason: str | None
    fields: tuple[str, ...]
    http_status: int | None = None


def _send_grpc(running: RunningBroker, world: World, send: Grpc) -> Outcome:
    request = send.build(world)
    call = running.channel.unary_unary(
        f"/brokkr.v1.{send.method}",
        request_serializer=lambda message: (
            message if isinstance(message, bytes) else message.SerializeToString()
        ),
        response_deserializer=lambda data: data,
    )
    try:
        call(request, metadata=(*running.metadata(world.keys[send.key]), *send.metadata), timeout=60)
    except grpc.RpcError as error:
        return _outcome_of_rpc_error(error)
    return Outcome(grpc.StatusCode.OK, None, ())


def _outcome_of_rpc_error(error: grpc.RpcError) -> Outcome:
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    reason, fields = None, ()
    for detail in status.details if status else ():
        info, bad_request = error_details_pb2.ErrorInfo(), error_details_pb2.BadRequest()
        if detail.Unpack(info):
            reason = info.reason
        elif detail.Unpack(bad_request):
            fields = tuple(violation.field for violation in bad_request.field_violations)
    return Outcome(error.code(), reason, fields)  # type: ignore[attr-defined]


def _send_rest(running: RunningBroker, world: World, send: Rest) -> Outcome:
    assert running.rest_url is not None
    path = send.path.format(
        stack=world.stack_id,
        agent=world.agent_id,
        template=world.template_id,
        deployment_object=world.deployment_object_id,
        reused_request_id=world.reused_request_id,
    )
    body = send.body(world) if callable(send.body) else send.body
    request = urllib.request.Request(
        running.rest_url + path,
        data=body or None,
        method=send.verb,
        headers={"Authorization": f"Bearer {world.keys[send.key]}", "Content-Type": send.content_type},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return Outcome(grpc.StatusCode.OK, None, (), response.status)
    except urllib.error.HTTPError as error:
        with error:
            status, document = error.code, json.loads(error.read())
    reason, fields = None, ()
    for detail in document["details"]:
        if detail["@type"].endswith("/google.rpc.ErrorInfo"):
            reason = detail["reason"]
        elif detail["@type"].endswith("/google.rpc.BadRequest"):
            fields = tuple(violation["field"] for violation in detail["fieldViolations"])
    code = next(code for code in grpc.StatusCode if code.value[0] == document["code"])
    return Outcome(code, reason, fields, status)


# -- what the database holds ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    counts: dict[str, int]
    last_audit_id: int


async def _snapshot(running: RunningBroker) -> Snapshot:
    broker = running.broker
    assert broker.audit_trail is not None
    await broker.audit_trail.flushed()
    async with broker.database.engine.connect() as connection:
        counts = {
            table.name: (await connection.execute(select(func.count()).select_from(table))).scalar_one()
            for table in metadata.sorted_tables
        }
        last = (await connection.execute(select(func.max(audit_logs.c.id)))).scalar()
    return Snapshot(counts, last or 0)


async def _audit_outcomes_since(running: RunningBroker, last_audit_id: int) -> list[tuple[str, str]]:
    async with running.broker.database.engine.connect() as connection:
        rows = await connection.execute(
            select(audit_logs.c.action, audit_logs.c.outcome)
            .where(audit_logs.c.id > last_audit_id)
            .order_by(audit_logs.c.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


#: Reasons the REST shim refuses with itself, before calling any method.
SHIM_REASONS = frozenset(
    {
        "MALFORMED_JSON",
        "INVALID_BODY",
        "UNKNOWN_FIELD",
        "INVALID_FIELD",
        "UNEXPECTED_BODY",
        "UNSUPPORTED_MEDIA_TYPE",
        "REQUEST_TOO_LARGE",
        "ROUTE_NOT_FOUND",
        "METHOD_NOT_ALLOWED",
    }
)
ROUTES = build_routes(registry.file_descriptors())


def _method_reached(case: Case) -> str | None:
    """The gRPC method a case's request got to (its refusal came from there), if any."""
    if isinstance(case.send, Grpc):
        return f"/brokkr.v1.{case.send.method}" if case.reason is not None else None
    if case.reason in SHIM_REASONS:
        return None
    return ROUTES.resolve(case.send.verb, case.send.path.partition("?")[0]).binding.grpc_path


# -- the tests -------------------------------------------------------------------------------------


def test_the_corpus_is_large_and_every_name_is_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) >= 100
    assert len(set(names)) == len(names)


@pytest.mark.parametrize("case", [pytest.param(case, marks=case.marks, id=case.name) for case in CASES])
def test_bad_input_gets_its_exact_error_writes_nothing_and_leaves_the_broker_healthy(
    request: pytest.FixtureRequest, running: RunningBroker, world: World, case: Case
) -> None:
    backend = "postgres" if running.broker.database.uses_notify else "sqlite"
    if case.known_bug is not None and case.known_bug[0] == backend:
        request.applymarker(pytest.mark.xfail(strict=True, reason=case.known_bug[1]))
    before = running.run(_snapshot(running))

    if isinstance(case.send, Grpc):
        outcome = _send_grpc(running, world, case.send)
        expected = Outcome(case.code, case.reason, case.fields)
    else:
        outcome = _send_rest(running, world, case.send)
        expected = Outcome(
            case.code, case.reason, case.fields, case.http_status or http_status(case.code.value[0])
        )

    assert outcome == expected
    after = running.run(_snapshot(running))
    written = {
        name: after.counts[name] - count
        for name, count in before.counts.items()
        if after.counts[name] != count
    }
    audited = running.run(_audit_outcomes_since(running, before.last_audit_id))
    written.pop(audit_logs.name, None)
    assert written == {}, "a refused request wrote rows"
    method = _method_reached(case)
    assert audited == ([(method, case.code.name)] if method in AUDITED else [])
    health = health_pb2_grpc.HealthStub(running.channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING


def test_the_world_is_unchanged_after_the_corpus(running: RunningBroker, world: World) -> None:
    """Runs after the cases (pytest keeps file order): the objects they aimed at are as they were."""
    with BrokkrClient(running.grpc_target, world.keys["admin"]) as admin:
        stacks = admin.call(admin.stacks.ListStacks, stack_api.ListStacksRequest(show_deleted=True)).stacks
        assert sorted((stack.name, stack.HasField("delete_time")) for stack in stacks) == [
            ("corpus", False),
            ("gen-a", False),
            ("gen-b", False),
            ("reused", False),
        ]
        corpus = next(stack for stack in stacks if stack.name == "corpus")
        assert (corpus.description, dict(corpus.labels)) == ("", {})
        assert corpus.desired_deployment_object.id == world.deployment_object_id
        agents = admin.call(admin.agents.ListAgents, agent_api.ListAgentsRequest()).agents
        assert sorted(agent.name for agent in agents) == ["corpus-agent", "second-agent"]
        assert all(agent.status == agent_pb2.AGENT_STATUS_INACTIVE for agent in agents)
