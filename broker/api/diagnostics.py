"""brokkr.v1.DiagnosticsService: validate -> service -> convert.

Reports are stored as the JSON form of `brokkr.v1.DiagnosticsReport` (proto field names) and
parsed back here, so what the agent sent is what the admin reads.
"""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2

from broker.api import convert
from broker.context import current_principal
from broker.domain.diagnostics import Diagnostics, DiagnosticsState
from broker.domain.ports import UnitOfWorkFactory
from broker.services import diagnostics
from brokkr_common.errors import ERROR_DOMAIN
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2, diagnostics_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import diagnostics_service_pb2 as pb

_STATES = {
    state: diagnostics_pb2.DiagnosticsState.Value(f"DIAGNOSTICS_STATE_{state.value}")
    for state in DiagnosticsState
}


def report_to_json(report: diagnostics_pb2.DiagnosticsReport) -> dict[str, object]:
    """How a report is stored."""
    return json_format.MessageToDict(report, preserving_proto_field_name=True)


def diagnostics_message(value: Diagnostics) -> diagnostics_pb2.Diagnostics:
    message = diagnostics_pb2.Diagnostics(
        id=value.id,
        agent_id=value.agent_id,
        stack_id=value.stack_id,
        options=diagnostics_pb2.DiagnosticsOptions(
            log_tail_lines=value.options.log_tail_lines,
            max_log_bytes=value.options.max_log_bytes,
            include_previous_logs=value.options.include_previous_logs,
        ),
        state=_STATES[value.state],
        request_time=convert.timestamp(value.requested_at),
        send_time=convert.timestamp(value.sent_at),
        complete_time=convert.timestamp(value.completed_at),
        expire_time=convert.timestamp(value.expires_at),
    )
    if value.error is not None:
        status = status_pb2.Status(code=value.error.code, message=value.error.message)
        if value.error.reason:
            status.details.add().Pack(
                error_details_pb2.ErrorInfo(reason=value.error.reason, domain=ERROR_DOMAIN)
            )
        message.error.CopyFrom(status)
    if value.report is not None:
        json_format.ParseDict(value.report, message.report, ignore_unknown_fields=True)
    return message


class DiagnosticsServicer(diagnostics_service_pb2_grpc.DiagnosticsServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, *, timeout_seconds: float, retention_seconds: float) -> None:
        self._uow = uow
        self._policy = diagnostics.DiagnosticsPolicy(
            timeout=timedelta(seconds=timeout_seconds), retention=timedelta(seconds=retention_seconds)
        )

    async def CreateDiagnostics(
        self, request: pb.CreateDiagnosticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDiagnosticsResponse:
        asked = request.diagnostics
        created = await diagnostics.create_diagnostics(
            self._uow(),
            current_principal(),
            agent_id=asked.agent_id,
            stack_id=asked.stack_id,
            log_tail_lines=asked.options.log_tail_lines,
            max_log_bytes=asked.options.max_log_bytes,
            include_previous_logs=asked.options.include_previous_logs,
            request_id=request.request_id or None,
            policy=self._policy,
        )
        return pb.CreateDiagnosticsResponse(diagnostics=diagnostics_message(created))

    async def GetDiagnostics(
        self, request: pb.GetDiagnosticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDiagnosticsResponse:
        found = await diagnostics.get_diagnostics(self._uow(), current_principal(), request.id)
        return pb.GetDiagnosticsResponse(diagnostics=diagnostics_message(found))

    async def ListDiagnostics(
        self, request: pb.ListDiagnosticsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDiagnosticsResponse:
        page = await diagnostics.list_diagnostics(
            self._uow(),
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            agent_id=request.agent_id or None,
            stack_id=request.stack_id or None,
        )
        return pb.ListDiagnosticsResponse(
            diagnostics=[diagnostics_message(item) for item in page.items],
            next_page_token=page.next_page_token,
        )
