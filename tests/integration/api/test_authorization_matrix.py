"""Every RPC x every kind of caller, with the exact status code each must get.

The world each case runs in: generator G1 owns stacks S1 (labels env=prod) and S2 (explicitly
targeted at agent A1); A1 (env=prod, ACTIVE) is registered with G1, so S1 reaches it by label; G2
and A2 are strangers to all of it; D1 is S1's first deployment object. "gen_owner" is G1,
"gen_other" G2, "agent_self" A1, "agent_other" A2.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from google.protobuf import field_mask_pb2

from broker.api import authz
from brokkr_common import keys
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2_grpc,
    agent_session_service_pb2_grpc,
    audit_log_service_pb2_grpc,
    auth_service_pb2_grpc,
    deployment_object_pb2,
    deployment_object_service_pb2_grpc,
    deployment_status_service_pb2_grpc,
    diagnostics_pb2,
    diagnostics_service_pb2_grpc,
    event_service_pb2_grpc,
    generator_pb2,
    generator_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2_grpc,
    target_service_pb2_grpc,
    template_pb2,
    template_service_pb2_grpc,
    webhook_pb2,
    webhook_service_pb2_grpc,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2 as agent_api,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_session_pb2 as session_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    agent_session_service_pb2 as session_api,
)
from brokkr_common.pb.brokkr.v1 import (
    audit_log_service_pb2 as audit_api,
)
from brokkr_common.pb.brokkr.v1 import (
    auth_service_pb2 as auth_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2 as do_api,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_status_service_pb2 as status_api,
)
from brokkr_common.pb.brokkr.v1 import (
    diagnostics_service_pb2 as diag_api,
)
from brokkr_common.pb.brokkr.v1 import (
    event_service_pb2 as event_api,
)
from brokkr_common.pb.brokkr.v1 import (
    generator_service_pb2 as generator_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from brokkr_common.pb.brokkr.v1 import (
    target_service_pb2 as target_api,
)
from brokkr_common.pb.brokkr.v1 import (
    template_service_pb2 as template_api,
)
from brokkr_common.pb.brokkr.v1 import (
    webhook_service_pb2 as webhook_api,
)
from brokkr_common.secretbox import generate_key
from tests.integration.harness import RunningBroker, running_broker

OK = grpc.StatusCode.OK
PD = grpc.StatusCode.PERMISSION_DENIED
UNAUTH = grpc.StatusCode.UNAUTHENTICATED
CALLERS = ("none", "malformed", "unknown", "admin", "gen_owner", "gen_other", "agent_self", "agent_other")
MANIFEST = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: demo\ndata:\n  a: b\n"


@dataclass
class World:
    g1: str
    g2: str
    a1: str
    a2: str
    s1: str
    s2: str
    d1: str
    keys: dict[str, str | None]
    #: A system template (no owner) and one owned by G1.
    t0: str = ""
    t1: str = ""
    #: A webhook (admin only).
    w1: str = ""
    #: A diagnostics request for A1 about S1 (admin only).
    x1: str = ""


class Stubs:
    def __init__(self, channel: grpc.Channel) -> None:
        self.agents = agent_service_pb2_grpc.AgentServiceStub(channel)
        self.generators = generator_service_pb2_grpc.GeneratorServiceStub(channel)
        self.stacks = stack_service_pb2_grpc.StackServiceStub(channel)
        self.deployment_objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(channel)
        self.statuses = deployment_status_service_pb2_grpc.DeploymentStatusServiceStub(channel)
        self.targets = target_service_pb2_grpc.TargetServiceStub(channel)
        self.auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        self.sessions = agent_session_service_pb2_grpc.AgentSessionServiceStub(channel)
        self.templates = template_service_pb2_grpc.TemplateServiceStub(channel)
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        self.events = event_service_pb2_grpc.EventServiceStub(channel)
        self.audit_logs = audit_log_service_pb2_grpc.AuditLogServiceStub(channel)
        self.diagnostics = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)


def _first_session_message(stubs: Stubs, metadata) -> Any:
    """Say Hello and read the broker's first answer (a Welcome) or its refusal."""
    hello = session_api.ConnectRequest(hello=session_pb2.Hello(agent_version="matrix-test"))
    responses = stubs.sessions.Connect(iter([hello]), metadata=metadata)
    try:
        first = next(responses)
        assert first.WhichOneof("message") == "welcome"
        return first
    finally:
        responses.cancel()


def _first_event(stubs: Stubs, metadata) -> Any:
    """Watch the whole log (building the world wrote events) and read the first one."""
    responses = stubs.events.WatchEvents(event_api.WatchEventsRequest(after_event_id="0"), metadata=metadata)
    try:
        return next(responses)
    finally:
        responses.cancel()


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def build_world(running: RunningBroker, stubs: Stubs, admin_key: str) -> World:
    md = running.metadata(admin_key)
    g1 = stubs.generators.CreateGenerator(
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_unique("g1"))),
        metadata=md,
    )
    g2 = stubs.generators.CreateGenerator(
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_unique("g2"))),
        metadata=md,
    )
    agents = [
        stubs.agents.CreateAgent(
            agent_api.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name=_unique(name),
                    cluster_name="cluster",
                    labels={"env": "prod"},
                    status=agent_pb2.AGENT_STATUS_ACTIVE,
                )
            ),
            metadata=md,
        )
        for name in ("a1", "a2")
    ]
    a1, a2 = agents
    stubs.targets.CreateRegistration(
        target_api.CreateRegistrationRequest(agent_id=a1.agent.id, generator_id=g1.generator.id), metadata=md
    )
    s1 = stubs.stacks.CreateStack(
        stack_api.CreateStackRequest(
            stack=stack_pb2.Stack(name=_unique("s1"), generator_id=g1.generator.id, labels={"env": "prod"})
        ),
        metadata=md,
    ).stack
    s2 = stubs.stacks.CreateStack(
        stack_api.CreateStackRequest(stack=stack_pb2.Stack(name=_unique("s2"), generator_id=g1.generator.id)),
        metadata=md,
    ).stack
    stubs.targets.CreateTarget(
        target_api.CreateTargetRequest(agent_id=a1.agent.id, stack_id=s2.id), metadata=md
    )
    d1 = stubs.deployment_objects.CreateDeploymentObject(
        do_api.CreateDeploymentObjectRequest(
            stack_id=s1.id, deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=MANIFEST)
        ),
        metadata=md,
    ).deployment_object
    t0, t1 = (
        stubs.templates.CreateTemplate(
            template_api.CreateTemplateRequest(
                template=template_pb2.Template(name=_unique("t"), content=MANIFEST, generator_id=owner)
            ),
            metadata=md,
        ).template.id
        for owner in ("", g1.generator.id)
    )
    w1 = stubs.webhooks.CreateWebhook(
        webhook_api.CreateWebhookRequest(
            webhook=webhook_pb2.Webhook(url="http://127.0.0.1:9/hook", event_types=["webhook.test"])
        ),
        metadata=md,
    ).webhook.id
    x1 = stubs.diagnostics.CreateDiagnostics(
        diag_api.CreateDiagnosticsRequest(
            diagnostics=diagnostics_pb2.Diagnostics(agent_id=a1.agent.id, stack_id=s1.id)
        ),
        metadata=md,
    ).diagnostics.id
    return World(
        x1=x1,
        w1=w1,
        t0=t0,
        t1=t1,
        g1=g1.generator.id,
        g2=g2.generator.id,
        a1=a1.agent.id,
        a2=a2.agent.id,
        s1=s1.id,
        s2=s2.id,
        d1=d1.id,
        keys={
            "none": None,
            "malformed": "not-a-brokkr-key",
            "unknown": keys.generate().plaintext,
            "admin": admin_key,
            "gen_owner": g1.key,
            "gen_other": g2.key,
            "agent_self": a1.key,
            "agent_other": a2.key,
        },
    )


Call = Callable[[Stubs, World, Any], Any]


@dataclass(frozen=True)
class Row:
    method: str
    call: Call
    expected: dict[str, grpc.StatusCode]


def row(method: str, call: Call, **expected: grpc.StatusCode) -> Row:
    codes = {"none": UNAUTH, "malformed": UNAUTH, "unknown": UNAUTH}
    codes.update(expected)
    missing = set(CALLERS) - set(codes)
    assert not missing, f"{method}: no expectation for {missing}"
    return Row(method, call, codes)


def everyone(code: grpc.StatusCode) -> dict[str, grpc.StatusCode]:
    return dict.fromkeys(("admin", "gen_owner", "gen_other", "agent_self", "agent_other"), code)


def admin_only() -> dict[str, grpc.StatusCode]:
    return {**everyone(PD), "admin": OK}


def owner_or_self(*, agent_self: grpc.StatusCode = PD) -> dict[str, grpc.StatusCode]:
    return {"admin": OK, "gen_owner": OK, "gen_other": PD, "agent_self": agent_self, "agent_other": PD}


ROWS = [
    # AgentService
    row(
        "/brokkr.v1.AgentService/CreateAgent",
        lambda s, w, md: s.agents.CreateAgent(
            agent_api.CreateAgentRequest(agent=agent_pb2.Agent(name=_unique("new"), cluster_name="c")),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.AgentService/GetAgent",
        lambda s, w, md: s.agents.GetAgent(agent_api.GetAgentRequest(id=w.a1), metadata=md),
        **owner_or_self(agent_self=OK),
    ),
    row(
        "/brokkr.v1.AgentService/ListAgents",
        lambda s, w, md: s.agents.ListAgents(agent_api.ListAgentsRequest(), metadata=md),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.AgentService/UpdateAgent",
        lambda s, w, md: s.agents.UpdateAgent(
            agent_api.UpdateAgentRequest(
                agent=agent_pb2.Agent(id=w.a1, labels={"tier": "web"}),
                update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
            ),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.AgentService/DeleteAgent",
        lambda s, w, md: s.agents.DeleteAgent(agent_api.DeleteAgentRequest(id=w.a1), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.AgentService/RotateAgentKey",
        lambda s, w, md: s.agents.RotateAgentKey(agent_api.RotateAgentKeyRequest(id=w.a1), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.AgentService/ListAgentStacks",
        lambda s, w, md: s.agents.ListAgentStacks(agent_api.ListAgentStacksRequest(id=w.a1), metadata=md),
        **owner_or_self(agent_self=OK),
    ),
    # GeneratorService
    row(
        "/brokkr.v1.GeneratorService/CreateGenerator",
        lambda s, w, md: s.generators.CreateGenerator(
            generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name=_unique("gen"))),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.GeneratorService/GetGenerator",
        lambda s, w, md: s.generators.GetGenerator(generator_api.GetGeneratorRequest(id=w.g1), metadata=md),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.GeneratorService/ListGenerators",
        lambda s, w, md: s.generators.ListGenerators(generator_api.ListGeneratorsRequest(), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.GeneratorService/UpdateGenerator",
        lambda s, w, md: s.generators.UpdateGenerator(
            generator_api.UpdateGeneratorRequest(
                generator=generator_pb2.Generator(id=w.g1, description="new"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.GeneratorService/DeleteGenerator",
        lambda s, w, md: s.generators.DeleteGenerator(
            generator_api.DeleteGeneratorRequest(id=w.g2), metadata=md
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.GeneratorService/RotateGeneratorKey",
        lambda s, w, md: s.generators.RotateGeneratorKey(
            generator_api.RotateGeneratorKeyRequest(id=w.g1), metadata=md
        ),
        **owner_or_self(),
    ),
    # StackService
    row(
        "/brokkr.v1.StackService/CreateStack",
        lambda s, w, md: s.stacks.CreateStack(
            stack_api.CreateStackRequest(stack=stack_pb2.Stack(name=_unique("stack"))), metadata=md
        ),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.StackService/GetStack",
        lambda s, w, md: s.stacks.GetStack(stack_api.GetStackRequest(id=w.s1), metadata=md),
        **owner_or_self(agent_self=OK),
    ),
    row(
        "/brokkr.v1.StackService/ListStacks",
        lambda s, w, md: s.stacks.ListStacks(stack_api.ListStacksRequest(), metadata=md),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.StackService/UpdateStack",
        lambda s, w, md: s.stacks.UpdateStack(
            stack_api.UpdateStackRequest(
                stack=stack_pb2.Stack(id=w.s1, description="changed"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=md,
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.StackService/DeleteStack",
        lambda s, w, md: s.stacks.DeleteStack(stack_api.DeleteStackRequest(id=w.s1), metadata=md),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.StackService/ListStackAgents",
        lambda s, w, md: s.stacks.ListStackAgents(stack_api.ListStackAgentsRequest(id=w.s1), metadata=md),
        **owner_or_self(),
    ),
    # DeploymentObjectService
    row(
        "/brokkr.v1.DeploymentObjectService/CreateDeploymentObject",
        lambda s, w, md: s.deployment_objects.CreateDeploymentObject(
            do_api.CreateDeploymentObjectRequest(
                stack_id=w.s1,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=MANIFEST + "  c: d\n"),
            ),
            metadata=md,
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.DeploymentObjectService/GetDeploymentObject",
        lambda s, w, md: s.deployment_objects.GetDeploymentObject(
            do_api.GetDeploymentObjectRequest(id=w.d1), metadata=md
        ),
        **owner_or_self(agent_self=OK),
    ),
    row(
        "/brokkr.v1.DeploymentObjectService/ListDeploymentObjects",
        lambda s, w, md: s.deployment_objects.ListDeploymentObjects(
            do_api.ListDeploymentObjectsRequest(stack_id=w.s1), metadata=md
        ),
        **owner_or_self(agent_self=OK),
    ),
    # DeploymentStatusService: agents list their own statuses by agent, never by stack.
    row(
        "/brokkr.v1.DeploymentStatusService/ListDeploymentStatuses",
        lambda s, w, md: s.statuses.ListDeploymentStatuses(
            status_api.ListDeploymentStatusesRequest(stack_id=w.s1), metadata=md
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.DeploymentStatusService/ListDeploymentStatuses",
        lambda s, w, md: s.statuses.ListDeploymentStatuses(
            status_api.ListDeploymentStatusesRequest(agent_id=w.a1), metadata=md
        ),
        **owner_or_self(agent_self=OK),
    ),
    # TargetService
    row(
        "/brokkr.v1.TargetService/CreateTarget",
        lambda s, w, md: s.targets.CreateTarget(
            target_api.CreateTargetRequest(agent_id=w.a1, stack_id=w.s1), metadata=md
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TargetService/ListTargets",
        lambda s, w, md: s.targets.ListTargets(target_api.ListTargetsRequest(agent_id=w.a1), metadata=md),
        **owner_or_self(agent_self=OK),
    ),
    row(
        "/brokkr.v1.TargetService/DeleteTarget",
        lambda s, w, md: s.targets.DeleteTarget(
            target_api.DeleteTargetRequest(agent_id=w.a1, stack_id=w.s2), metadata=md
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TargetService/CreateRegistration",
        lambda s, w, md: s.targets.CreateRegistration(
            target_api.CreateRegistrationRequest(agent_id=w.a2, generator_id=w.g1), metadata=md
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.TargetService/ListRegistrations",
        lambda s, w, md: s.targets.ListRegistrations(
            target_api.ListRegistrationsRequest(agent_id=w.a1), metadata=md
        ),
        **owner_or_self(agent_self=OK),
    ),
    row(
        "/brokkr.v1.TargetService/DeleteRegistration",
        lambda s, w, md: s.targets.DeleteRegistration(
            target_api.DeleteRegistrationRequest(agent_id=w.a1, generator_id=w.g1), metadata=md
        ),
        **admin_only(),
    ),
    # AgentSessionService: an agent opens its own session; no other role may.
    row(
        "/brokkr.v1.AgentSessionService/Connect",
        lambda s, w, md: _first_session_message(s, md),
        admin=PD,
        gen_owner=PD,
        gen_other=PD,
        agent_self=OK,
        agent_other=OK,
    ),
    # AuthService
    row(
        "/brokkr.v1.AuthService/WhoAmI",
        lambda s, w, md: s.auth.WhoAmI(auth_api.WhoAmIRequest(), metadata=md),
        **everyone(OK),
    ),
    row(
        "/brokkr.v1.AuthService/RotateAdminKey",
        lambda s, w, md: s.auth.RotateAdminKey(auth_api.RotateAdminKeyRequest(), metadata=md),
        **admin_only(),
    ),
    # EventService and AuditLogService: admin only.
    row(
        "/brokkr.v1.EventService/ListEvents",
        lambda s, w, md: s.events.ListEvents(event_api.ListEventsRequest(), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.EventService/WatchEvents",
        lambda s, w, md: _first_event(s, md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.AuditLogService/ListAuditLogs",
        lambda s, w, md: s.audit_logs.ListAuditLogs(audit_api.ListAuditLogsRequest(), metadata=md),
        **admin_only(),
    ),
    # DiagnosticsService: admin only (reports carry container logs).
    row(
        "/brokkr.v1.DiagnosticsService/CreateDiagnostics",
        lambda s, w, md: s.diagnostics.CreateDiagnostics(
            diag_api.CreateDiagnosticsRequest(
                diagnostics=diagnostics_pb2.Diagnostics(agent_id=w.a1, stack_id=w.s1)
            ),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.DiagnosticsService/GetDiagnostics",
        lambda s, w, md: s.diagnostics.GetDiagnostics(diag_api.GetDiagnosticsRequest(id=w.x1), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.DiagnosticsService/ListDiagnostics",
        lambda s, w, md: s.diagnostics.ListDiagnostics(diag_api.ListDiagnosticsRequest(), metadata=md),
        **admin_only(),
    ),
    # TemplateService: T0 is a system template, T1 belongs to G1; agents have no access.
    row(
        "/brokkr.v1.TemplateService/CreateTemplate",
        lambda s, w, md: s.templates.CreateTemplate(
            template_api.CreateTemplateRequest(
                template=template_pb2.Template(name=_unique("tpl"), content=MANIFEST)
            ),
            metadata=md,
        ),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.TemplateService/GetTemplate",
        lambda s, w, md: s.templates.GetTemplate(template_api.GetTemplateRequest(id=w.t1), metadata=md),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TemplateService/GetTemplate",
        lambda s, w, md: s.templates.GetTemplate(template_api.GetTemplateRequest(id=w.t0), metadata=md),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.TemplateService/ListTemplates",
        lambda s, w, md: s.templates.ListTemplates(template_api.ListTemplatesRequest(), metadata=md),
        admin=OK,
        gen_owner=OK,
        gen_other=OK,
        agent_self=PD,
        agent_other=PD,
    ),
    row(
        "/brokkr.v1.TemplateService/UpdateTemplate",
        lambda s, w, md: s.templates.UpdateTemplate(
            template_api.UpdateTemplateRequest(
                template=template_pb2.Template(id=w.t1, description="changed"),
                update_mask=field_mask_pb2.FieldMask(paths=["description"]),
            ),
            metadata=md,
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TemplateService/DeleteTemplate",
        lambda s, w, md: s.templates.DeleteTemplate(template_api.DeleteTemplateRequest(id=w.t1), metadata=md),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TemplateService/ListTemplateVersions",
        lambda s, w, md: s.templates.ListTemplateVersions(
            template_api.ListTemplateVersionsRequest(id=w.t1), metadata=md
        ),
        **owner_or_self(),
    ),
    row(
        "/brokkr.v1.TemplateService/InstantiateTemplate",
        lambda s, w, md: s.templates.InstantiateTemplate(
            template_api.InstantiateTemplateRequest(stack_id=w.s1, template_id=w.t1), metadata=md
        ),
        **owner_or_self(),
    ),
    # WebhookService: admin only.
    row(
        "/brokkr.v1.WebhookService/CreateWebhook",
        lambda s, w, md: s.webhooks.CreateWebhook(
            webhook_api.CreateWebhookRequest(
                webhook=webhook_pb2.Webhook(url="http://127.0.0.1:9/new", event_types=["*"], enabled=False)
            ),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/GetWebhook",
        lambda s, w, md: s.webhooks.GetWebhook(webhook_api.GetWebhookRequest(id=w.w1), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/ListWebhooks",
        lambda s, w, md: s.webhooks.ListWebhooks(webhook_api.ListWebhooksRequest(), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/UpdateWebhook",
        lambda s, w, md: s.webhooks.UpdateWebhook(
            webhook_api.UpdateWebhookRequest(
                webhook=webhook_pb2.Webhook(id=w.w1, max_attempts=2),
                update_mask=field_mask_pb2.FieldMask(paths=["max_attempts"]),
            ),
            metadata=md,
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/DeleteWebhook",
        lambda s, w, md: s.webhooks.DeleteWebhook(webhook_api.DeleteWebhookRequest(id=w.w1), metadata=md),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/ListWebhookDeliveries",
        lambda s, w, md: s.webhooks.ListWebhookDeliveries(
            webhook_api.ListWebhookDeliveriesRequest(webhook_id=w.w1), metadata=md
        ),
        **admin_only(),
    ),
    row(
        "/brokkr.v1.WebhookService/TestWebhook",
        lambda s, w, md: s.webhooks.TestWebhook(webhook_api.TestWebhookRequest(id=w.w1), metadata=md),
        **admin_only(),
    ),
]


def test_the_matrix_covers_every_rpc_the_broker_serves():
    assert {r.method for r in ROWS} == set(authz.POLICY)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('matrix') / 'brokkr.db'}"
    # Webhooks need an encryption key. Each world's webhook takes only test events (which go to it
    # alone) and points at a closed port: its deliveries fail quietly in the background.
    webhooks = {"encryption_key": generate_key(), "allowed_cidrs": "127.0.0.1/32"}
    with running_broker(url, webhooks=webhooks) as running:
        running.current_admin_key = running.admin_key
        yield running


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", ROWS, ids=lambda r: r.method.rsplit("/", 1)[-1])
def test_each_caller_gets_exactly_the_expected_status(running, case: Row, caller: str):
    stubs = Stubs(running.channel)
    world = build_world(running, stubs, running.current_admin_key)
    key = world.keys[caller]
    try:
        response = case.call(stubs, world, running.metadata(key))
        code = OK
    except grpc.RpcError as error:
        code, response, details = error.code(), None, error.details()
    else:
        details = ""
    assert code is case.expected[caller], f"{case.method} as {caller}: got {code.name} ({details})"
    if case.method.endswith("RotateAdminKey") and code is OK:
        running.current_admin_key = response.key
