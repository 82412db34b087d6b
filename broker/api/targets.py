"""brokkr.v1.TargetService: explicit targets and registrations."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.services import targets
from brokkr_common.errors import FieldViolation, InvalidArgument
from brokkr_common.pb.brokkr.v1 import target_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import target_service_pb2_grpc


def _exactly_one(**candidates: str) -> None:
    given = [name for name, value in candidates.items() if value]
    if len(given) != 1:
        names = " or ".join(candidates)
        raise InvalidArgument(
            f"set exactly one of {names}",
            reason="INVALID_FILTER",
            field_violations=[FieldViolation(name, f"set exactly one of {names}") for name in candidates],
        )


class TargetServicer(target_service_pb2_grpc.TargetServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def CreateTarget(
        self, request: pb.CreateTargetRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateTargetResponse:
        target = await targets.create_target(
            self._uow(), current_principal(), request.agent_id, request.stack_id
        )
        return pb.CreateTargetResponse(target=convert.target(target))

    async def ListTargets(
        self, request: pb.ListTargetsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListTargetsResponse:
        _exactly_one(agent_id=request.agent_id, stack_id=request.stack_id)
        page = await targets.list_targets(
            self._uow(),
            current_principal(),
            agent_id=request.agent_id or None,
            stack_id=request.stack_id or None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListTargetsResponse(
            targets=[convert.target(t) for t in page.items], next_page_token=page.next_page_token
        )

    async def DeleteTarget(
        self, request: pb.DeleteTargetRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteTargetResponse:
        await targets.delete_target(self._uow(), current_principal(), request.agent_id, request.stack_id)
        return pb.DeleteTargetResponse()

    async def CreateRegistration(
        self, request: pb.CreateRegistrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateRegistrationResponse:
        registration = await targets.create_registration(
            self._uow(), current_principal(), request.agent_id, request.generator_id
        )
        return pb.CreateRegistrationResponse(registration=convert.registration(registration))

    async def ListRegistrations(
        self, request: pb.ListRegistrationsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListRegistrationsResponse:
        _exactly_one(agent_id=request.agent_id, generator_id=request.generator_id)
        page = await targets.list_registrations(
            self._uow(),
            current_principal(),
            agent_id=request.agent_id or None,
            generator_id=request.generator_id or None,
            page_size=request.page_size,
            page_token=request.page_token,
        )
        return pb.ListRegistrationsResponse(
            registrations=[convert.registration(r) for r in page.items], next_page_token=page.next_page_token
        )

    async def DeleteRegistration(
        self, request: pb.DeleteRegistrationRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteRegistrationResponse:
        await targets.delete_registration(
            self._uow(), current_principal(), request.agent_id, request.generator_id
        )
        return pb.DeleteRegistrationResponse()
