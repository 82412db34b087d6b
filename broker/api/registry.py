"""Every Brokkr gRPC service, registered in one place so the server, the REST shim and the
authorisation test all see the same list."""

from __future__ import annotations

import grpc
from google.protobuf.descriptor import FileDescriptor

from broker.api.agents import AgentServicer
from broker.api.audit_logs import AuditLogServicer
from broker.api.auth import AuthServicer
from broker.api.deployment_objects import DeploymentObjectServicer
from broker.api.deployment_statuses import DeploymentStatusServicer
from broker.api.diagnostics import DiagnosticsServicer
from broker.api.events import EventServicer
from broker.api.generators import GeneratorServicer
from broker.api.stacks import StackServicer
from broker.api.targets import TargetServicer
from broker.api.templates import TemplateServicer
from broker.api.webhooks import WebhookServicer, webhook_config
from broker.config import BrokerSettings
from broker.domain.ports import UnitOfWorkFactory
from broker.services.events import EventSignal
from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2,
    agent_service_pb2_grpc,
    agent_session_service_pb2,
    audit_log_service_pb2,
    audit_log_service_pb2_grpc,
    auth_service_pb2,
    auth_service_pb2_grpc,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
    deployment_status_service_pb2,
    deployment_status_service_pb2_grpc,
    diagnostics_service_pb2,
    diagnostics_service_pb2_grpc,
    event_service_pb2,
    event_service_pb2_grpc,
    generator_service_pb2,
    generator_service_pb2_grpc,
    stack_service_pb2,
    stack_service_pb2_grpc,
    target_service_pb2,
    target_service_pb2_grpc,
    template_service_pb2,
    template_service_pb2_grpc,
    webhook_service_pb2,
    webhook_service_pb2_grpc,
)

_FILES = (
    agent_service_pb2,
    # Served by broker.stream through a generic handler (it writes pre-serialized bytes).
    agent_session_service_pb2,
    audit_log_service_pb2,
    auth_service_pb2,
    deployment_object_service_pb2,
    deployment_status_service_pb2,
    diagnostics_service_pb2,
    event_service_pb2,
    generator_service_pb2,
    stack_service_pb2,
    target_service_pb2,
    template_service_pb2,
    webhook_service_pb2,
)


def file_descriptors() -> tuple[FileDescriptor, ...]:
    """The proto files whose services the broker serves."""
    return tuple(module.DESCRIPTOR for module in _FILES)


def service_names() -> list[str]:
    return [service.full_name for file in file_descriptors() for service in file.services_by_name.values()]


def add_servicers(
    server: grpc.aio.Server,
    uow: UnitOfWorkFactory,
    settings: BrokerSettings,
    *,
    event_signal: EventSignal | None = None,
) -> list[str]:
    """Register every servicer on `server`; returns the full service names.

    `event_signal` wakes WatchEvents streams; without one they only poll.
    """
    audit_log_service_pb2_grpc.add_AuditLogServiceServicer_to_server(AuditLogServicer(uow), server)
    event_service_pb2_grpc.add_EventServiceServicer_to_server(
        EventServicer(uow, event_signal or EventSignal(), poll_seconds=settings.events.watch_poll_seconds),
        server,
    )
    agent_service_pb2_grpc.add_AgentServiceServicer_to_server(AgentServicer(uow), server)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(uow), server)
    deployment_object_service_pb2_grpc.add_DeploymentObjectServiceServicer_to_server(
        DeploymentObjectServicer(uow, max_bytes=settings.limits.max_deployment_object_bytes), server
    )
    deployment_status_service_pb2_grpc.add_DeploymentStatusServiceServicer_to_server(
        DeploymentStatusServicer(uow), server
    )
    generator_service_pb2_grpc.add_GeneratorServiceServicer_to_server(GeneratorServicer(uow), server)
    diagnostics_service_pb2_grpc.add_DiagnosticsServiceServicer_to_server(
        DiagnosticsServicer(
            uow,
            timeout_seconds=settings.diagnostics.timeout_seconds,
            retention_seconds=settings.diagnostics.retention_seconds,
        ),
        server,
    )
    stack_service_pb2_grpc.add_StackServiceServicer_to_server(StackServicer(uow), server)
    target_service_pb2_grpc.add_TargetServiceServicer_to_server(TargetServicer(uow), server)
    template_service_pb2_grpc.add_TemplateServiceServicer_to_server(
        TemplateServicer(uow, max_bytes=settings.limits.max_deployment_object_bytes), server
    )
    webhook_service_pb2_grpc.add_WebhookServiceServicer_to_server(
        WebhookServicer(uow, webhook_config(settings)), server
    )
    return service_names()
