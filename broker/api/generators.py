"""brokkr.v1.GeneratorService: validate -> service -> convert."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.api.masks import changes_from_mask
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.services import generators
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import generator_service_pb2_grpc

_UPDATABLE = {"name": lambda g: g.name, "description": lambda g: g.description}


class GeneratorServicer(generator_service_pb2_grpc.GeneratorServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def CreateGenerator(
        self, request: pb.CreateGeneratorRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateGeneratorResponse:
        created = await generators.create_generator(
            self._uow(),
            current_principal(),
            name=request.generator.name,
            description=request.generator.description,
            request_id=request.request_id or None,
        )
        return pb.CreateGeneratorResponse(
            generator=convert.generator(created.resource), key=created.key or ""
        )

    async def GetGenerator(
        self, request: pb.GetGeneratorRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetGeneratorResponse:
        generator = await generators.get_generator(self._uow(), current_principal(), request.id)
        return pb.GetGeneratorResponse(generator=convert.generator(generator))

    async def ListGenerators(
        self, request: pb.ListGeneratorsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListGeneratorsResponse:
        page = await generators.list_generators(
            self._uow(),
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            show_deleted=request.show_deleted,
        )
        return pb.ListGeneratorsResponse(
            generators=[convert.generator(g) for g in page.items], next_page_token=page.next_page_token
        )

    async def UpdateGenerator(
        self, request: pb.UpdateGeneratorRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateGeneratorResponse:
        changes = changes_from_mask(request.generator, request.update_mask, _UPDATABLE, field="generator")
        generator = await generators.update_generator(
            self._uow(), current_principal(), request.generator.id, changes
        )
        return pb.UpdateGeneratorResponse(generator=convert.generator(generator))

    async def DeleteGenerator(
        self, request: pb.DeleteGeneratorRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteGeneratorResponse:
        generator = await generators.delete_generator(self._uow(), current_principal(), request.id)
        return pb.DeleteGeneratorResponse(generator=convert.generator(generator))

    async def RotateGeneratorKey(
        self, request: pb.RotateGeneratorKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateGeneratorKeyResponse:
        key = await generators.rotate_generator_key(self._uow(), current_principal(), request.id)
        return pb.RotateGeneratorKeyResponse(key=key)
