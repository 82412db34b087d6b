"""brokkr.v1.AuthService: who am I, and admin key rotation."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.services import keys
from brokkr_common.pb.brokkr.v1 import auth_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import auth_service_pb2_grpc


class AuthServicer(auth_service_pb2_grpc.AuthServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def WhoAmI(self, request: pb.WhoAmIRequest, context: grpc.aio.ServicerContext) -> pb.WhoAmIResponse:
        principal = current_principal()
        return pb.WhoAmIResponse(
            role=convert.ROLES[principal.role], principal_id=principal.id or "", principal_name=principal.name
        )

    async def RotateAdminKey(
        self, request: pb.RotateAdminKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateAdminKeyResponse:
        return pb.RotateAdminKeyResponse(key=await keys.rotate_admin_key(self._uow(), current_principal()))
