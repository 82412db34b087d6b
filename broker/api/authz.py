"""Which role may call which RPC: the one table, checked before any servicer runs.

Resource-level rules (a generator's *own* stacks, an agent's *own* record) live in the services;
this table only says who may knock. Every method of every Brokkr service must appear here: a method
missing from the table is refused for everyone, and a test walks the descriptors to keep it complete.
"""

from __future__ import annotations

from collections.abc import Mapping

from broker.domain.model import Principal, Role
from brokkr_common.errors import PermissionDenied

ADMIN, GENERATOR, AGENT = Role.ADMIN, Role.GENERATOR, Role.AGENT
ANYONE = frozenset(Role)

#: Services anyone may call without a key: standard health checking and server reflection, so
#: grpcurl, grpc_health_probe and Kubernetes gRPC probes work out of the box.
PUBLIC_SERVICES = frozenset(
    {
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
        "grpc.reflection.v1alpha.ServerReflection",
    }
)

POLICY: Mapping[str, frozenset[Role]] = {
    "/brokkr.v1.AgentService/CreateAgent": frozenset({ADMIN}),
    "/brokkr.v1.AgentService/GetAgent": ANYONE,
    "/brokkr.v1.AgentService/ListAgents": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.AgentService/UpdateAgent": frozenset({ADMIN}),
    "/brokkr.v1.AgentService/DeleteAgent": frozenset({ADMIN}),
    "/brokkr.v1.AgentService/RotateAgentKey": frozenset({ADMIN}),
    "/brokkr.v1.AgentService/ListAgentStacks": ANYONE,
    "/brokkr.v1.GeneratorService/CreateGenerator": frozenset({ADMIN}),
    "/brokkr.v1.GeneratorService/GetGenerator": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.GeneratorService/ListGenerators": frozenset({ADMIN}),
    "/brokkr.v1.GeneratorService/UpdateGenerator": frozenset({ADMIN}),
    "/brokkr.v1.GeneratorService/DeleteGenerator": frozenset({ADMIN}),
    "/brokkr.v1.GeneratorService/RotateGeneratorKey": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.StackService/CreateStack": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.StackService/GetStack": ANYONE,
    "/brokkr.v1.StackService/ListStacks": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.StackService/UpdateStack": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.StackService/DeleteStack": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.StackService/ListStackAgents": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.DeploymentObjectService/CreateDeploymentObject": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.DeploymentObjectService/GetDeploymentObject": ANYONE,
    "/brokkr.v1.DeploymentObjectService/ListDeploymentObjects": ANYONE,
    "/brokkr.v1.DeploymentStatusService/ListDeploymentStatuses": ANYONE,
    "/brokkr.v1.TargetService/CreateTarget": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TargetService/ListTargets": ANYONE,
    "/brokkr.v1.TargetService/DeleteTarget": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TargetService/CreateRegistration": frozenset({ADMIN}),
    "/brokkr.v1.TargetService/ListRegistrations": ANYONE,
    "/brokkr.v1.TargetService/DeleteRegistration": frozenset({ADMIN}),
    "/brokkr.v1.AgentSessionService/Connect": frozenset({AGENT}),
    "/brokkr.v1.AuthService/WhoAmI": ANYONE,
    "/brokkr.v1.AuthService/RotateAdminKey": frozenset({ADMIN}),
    # Webhooks: admin only (events describe every generator's resources).
    "/brokkr.v1.WebhookService/CreateWebhook": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/GetWebhook": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/ListWebhooks": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/UpdateWebhook": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/DeleteWebhook": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/ListWebhookDeliveries": frozenset({ADMIN}),
    "/brokkr.v1.WebhookService/TestWebhook": frozenset({ADMIN}),
    "/brokkr.v1.TemplateService/CreateTemplate": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/GetTemplate": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/ListTemplates": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/UpdateTemplate": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/DeleteTemplate": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/ListTemplateVersions": frozenset({ADMIN, GENERATOR}),
    "/brokkr.v1.TemplateService/InstantiateTemplate": frozenset({ADMIN, GENERATOR}),
    # Events and the audit log: admin only (a generator's own stacks' events may come later).
    "/brokkr.v1.EventService/ListEvents": frozenset({ADMIN}),
    "/brokkr.v1.EventService/WatchEvents": frozenset({ADMIN}),
    "/brokkr.v1.AuditLogService/ListAuditLogs": frozenset({ADMIN}),
    # Diagnostics: admin only (reports carry container logs).
    "/brokkr.v1.DiagnosticsService/CreateDiagnostics": frozenset({ADMIN}),
    "/brokkr.v1.DiagnosticsService/GetDiagnostics": frozenset({ADMIN}),
    "/brokkr.v1.DiagnosticsService/ListDiagnostics": frozenset({ADMIN}),
}


def service_of(method: str) -> str:
    """`/pkg.Service/Method` -> `pkg.Service`."""
    return method.lstrip("/").split("/", 1)[0]


def is_public(method: str) -> bool:
    return service_of(method) in PUBLIC_SERVICES


def authorize(method: str, principal: Principal) -> None:
    """Raise PermissionDenied unless the principal's role may call the method."""
    allowed = POLICY.get(method, frozenset())
    if principal.role not in allowed:
        raise PermissionDenied(
            f"{principal.role.value} keys may not call {method.rsplit('/', 1)[-1]}",
            reason="ROLE_NOT_ALLOWED",
            metadata={"method": method, "role": principal.role.value},
        )
