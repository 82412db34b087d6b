"""brokkr.v1.DeploymentStatusService: validate -> service -> convert.

The conversions of deployment statuses live here rather than in `convert`, next to their only user.
"""

from __future__ import annotations

import grpc
from google.rpc import code_pb2, status_pb2

from broker.api import convert
from broker.context import current_principal
from broker.domain.deployments import (
    DeploymentRecord,
    DeploymentState,
    DeploymentStatus,
    HealthState,
    ResourceHealthReport,
    ResourceOutcome,
)
from broker.domain.ports import UnitOfWorkFactory
from broker.services import deployment_statuses
from brokkr_common.pb.brokkr.v1 import (
    agent_session_pb2,
    deployment_object_pb2,
    deployment_status_pb2,
    deployment_status_service_pb2_grpc,
)
from brokkr_common.pb.brokkr.v1 import deployment_status_service_pb2 as pb

_STATE = {
    None: deployment_status_pb2.DEPLOYMENT_STATE_UNSPECIFIED,
    DeploymentState.PENDING: deployment_status_pb2.DEPLOYMENT_STATE_PENDING,
    DeploymentState.APPLIED: deployment_status_pb2.DEPLOYMENT_STATE_APPLIED,
    DeploymentState.FAILED: deployment_status_pb2.DEPLOYMENT_STATE_FAILED,
    DeploymentState.REMOVED: deployment_status_pb2.DEPLOYMENT_STATE_REMOVED,
}
_HEALTH = {
    None: agent_session_pb2.HEALTH_STATUS_UNSPECIFIED,
    HealthState.HEALTHY: agent_session_pb2.HEALTH_STATUS_HEALTHY,
    HealthState.PROGRESSING: agent_session_pb2.HEALTH_STATUS_PROGRESSING,
    HealthState.DEGRADED: agent_session_pb2.HEALTH_STATUS_DEGRADED,
    HealthState.FAILING: agent_session_pb2.HEALTH_STATUS_FAILING,
    HealthState.UNKNOWN: agent_session_pb2.HEALTH_STATUS_UNKNOWN,
}
#: Outcomes as the session layer records them (`ResourceOutcome.outcome`); others show UNSPECIFIED.
_OUTCOME = {
    "CREATED": deployment_status_pb2.RESOURCE_APPLY_OUTCOME_CREATED,
    "CONFIGURED": deployment_status_pb2.RESOURCE_APPLY_OUTCOME_CONFIGURED,
    "UNCHANGED": deployment_status_pb2.RESOURCE_APPLY_OUTCOME_UNCHANGED,
    "PRUNED": deployment_status_pb2.RESOURCE_APPLY_OUTCOME_PRUNED,
    "FAILED": deployment_status_pb2.RESOURCE_APPLY_OUTCOME_FAILED,
}


class DeploymentStatusServicer(deployment_status_service_pb2_grpc.DeploymentStatusServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def ListDeploymentStatuses(
        self, request: pb.ListDeploymentStatusesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeploymentStatusesResponse:
        page = await deployment_statuses.list_deployment_statuses(
            self._uow(),
            current_principal(),
            stack_id=request.stack_id,
            agent_id=request.agent_id,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListDeploymentStatusesResponse(
            deployment_statuses=[_deployment_status(s) for s in page.items],
            next_page_token=page.next_page_token,
        )


def _deployment_status(value: DeploymentStatus) -> deployment_status_pb2.DeploymentStatus:
    message = deployment_status_pb2.DeploymentStatus(
        agent_id=value.agent_id,
        stack_id=value.stack_id,
        desired_deployment_object=convert.deployment_object_ref(value.desired),
        state=_STATE[value.state],
    )
    if value.recorded is not None:
        _add_recorded(message, value.recorded)
    return message


def _add_recorded(message: deployment_status_pb2.DeploymentStatus, recorded: DeploymentRecord) -> None:
    if recorded.applied is not None:
        message.applied_deployment_object.CopyFrom(convert.deployment_object_ref(recorded.applied))
    if recorded.outcome is DeploymentState.FAILED and recorded.failed is not None:
        message.failed_deployment_object.CopyFrom(convert.deployment_object_ref(recorded.failed))
    if recorded.error_code:
        message.last_error.CopyFrom(_error(recorded.error_code, recorded.error_message))
    message.resource_results.extend(_result(r) for r in recorded.resources)
    message.health = _HEALTH[recorded.health]
    message.resource_health.extend(_health(r) for r in recorded.health_resources)
    message.update_time.CopyFrom(convert.timestamp(recorded.updated_at))


def _error(code_name: str, message: str) -> status_pb2.Status:
    try:
        code = code_pb2.Code.Value(code_name)
    except ValueError:  # not a google.rpc code name
        code = code_pb2.UNKNOWN
    return status_pb2.Status(code=code, message=message)


def _result(value: ResourceOutcome) -> deployment_status_pb2.ResourceApplyResult:
    return deployment_status_pb2.ResourceApplyResult(
        key=_resource_key(value.key),
        outcome=_OUTCOME.get(value.outcome, deployment_status_pb2.RESOURCE_APPLY_OUTCOME_UNSPECIFIED),
        message=value.message,
    )


def _health(value: ResourceHealthReport) -> agent_session_pb2.ResourceHealth:
    return agent_session_pb2.ResourceHealth(
        key=_resource_key(value.key), health=_HEALTH[value.health], reason=value.reason, message=value.message
    )


def _resource_key(key: str) -> deployment_object_pb2.ResourceKey:
    """`group/version/kind/namespace/name`, as the session layer records keys, to a ResourceKey."""
    group, version, kind, namespace, name = key.split("/", 4)
    return deployment_object_pb2.ResourceKey(
        group=group, version=version, kind=kind, namespace=namespace, name=name
    )
