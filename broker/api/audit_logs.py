"""brokkr.v1.AuditLogService (read-only), and which calls the API edge audits.

A method is audited when it changes state, which the API already says: every method whose REST
binding is not a GET. Methods without a REST binding (the agent session stream) are not audited;
their effects (agent connected, deployment applied ...) are events.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.api import annotations_pb2
from google.protobuf.descriptor import FileDescriptor

from broker.api import convert
from broker.api.events import optional_time
from broker.context import current_principal
from broker.domain.audit import AuditEntry
from broker.domain.ports import UnitOfWorkFactory
from broker.services import audit
from brokkr_common.pb.brokkr.v1 import audit_log_pb2, audit_log_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import audit_log_service_pb2 as pb


def audited_methods(files: Iterable[FileDescriptor]) -> frozenset[str]:
    """The `/pkg.Service/Method` names of every state-changing method of these files."""
    audited = set()
    for file in files:
        for service in file.services_by_name.values():
            for method in service.methods:
                options = method.GetOptions()
                if not options.HasExtension(annotations_pb2.http):
                    continue
                if options.Extensions[annotations_pb2.http].WhichOneof("pattern") != "get":
                    audited.add(f"/{service.full_name}/{method.name}")
    return frozenset(audited)


def audit_log(value: AuditEntry) -> audit_log_pb2.AuditLog:
    return audit_log_pb2.AuditLog(
        id=value.id,
        time=convert.timestamp(value.time),
        actor_role=value.actor_role,
        actor_id=value.actor_id or "",
        action=value.action,
        resource=value.resource,
        outcome=value.outcome,
        peer=value.peer,
        request_id=value.request_id,
    )


class AuditLogServicer(audit_log_service_pb2_grpc.AuditLogServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def ListAuditLogs(
        self, request: pb.ListAuditLogsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAuditLogsResponse:
        page = await audit.list_audit_logs(
            self._uow,
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            actor_role=request.actor_role or None,
            actor_id=request.actor_id or None,
            action=request.action or None,
            resource=request.resource or None,
            outcome=request.outcome or None,
            start_time=optional_time(request, "start_time"),
            end_time=optional_time(request, "end_time"),
        )
        return pb.ListAuditLogsResponse(
            audit_logs=[audit_log(item) for item in page.items], next_page_token=page.next_page_token
        )
