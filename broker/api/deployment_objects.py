"""brokkr.v1.DeploymentObjectService: validate -> service -> convert."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.services import deployment_objects
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_pb2,
    deployment_object_service_pb2_grpc,
)
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_service_pb2 as pb,
)

FULL = deployment_object_pb2.DEPLOYMENT_OBJECT_VIEW_FULL
BASIC = deployment_object_pb2.DEPLOYMENT_OBJECT_VIEW_BASIC


class DeploymentObjectServicer(deployment_object_service_pb2_grpc.DeploymentObjectServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory, *, max_bytes: int) -> None:
        self._uow = uow
        self._max_bytes = max_bytes

    async def CreateDeploymentObject(
        self, request: pb.CreateDeploymentObjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateDeploymentObjectResponse:
        created = await deployment_objects.create_deployment_object(
            self._uow(),
            current_principal(),
            stack_id=request.stack_id,
            yaml_content=request.deployment_object.yaml_content,
            request_id=request.request_id or None,
            max_bytes=self._max_bytes,
        )
        return pb.CreateDeploymentObjectResponse(
            deployment_object=convert.deployment_object(created, full=True)
        )

    async def GetDeploymentObject(
        self, request: pb.GetDeploymentObjectRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetDeploymentObjectResponse:
        found = await deployment_objects.get_deployment_object(self._uow(), current_principal(), request.id)
        return pb.GetDeploymentObjectResponse(
            deployment_object=convert.deployment_object(found, full=request.view != BASIC)
        )

    async def ListDeploymentObjects(
        self, request: pb.ListDeploymentObjectsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListDeploymentObjectsResponse:
        full = request.view == FULL
        page = await deployment_objects.list_deployment_objects(
            self._uow(),
            current_principal(),
            stack_id=request.stack_id,
            page_size=request.page_size,
            page_token=request.page_token,
            include_content=full,
        )
        return pb.ListDeploymentObjectsResponse(
            deployment_objects=[convert.deployment_object(d, full=full) for d in page.items],
            next_page_token=page.next_page_token,
        )
