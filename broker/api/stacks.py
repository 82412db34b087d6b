"""brokkr.v1.StackService: validate -> service -> convert."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.api.masks import changes_from_mask
from broker.context import current_principal
from broker.domain.ports import UnitOfWorkFactory
from broker.services import stacks, targeting
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import stack_service_pb2_grpc

_UPDATABLE = {
    "name": lambda s: s.name,
    "description": lambda s: s.description,
    "labels": lambda s: dict(s.labels),
    "annotations": lambda s: dict(s.annotations),
}


class StackServicer(stack_service_pb2_grpc.StackServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def CreateStack(
        self, request: pb.CreateStackRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateStackResponse:
        stack = request.stack
        created = await stacks.create_stack(
            self._uow(),
            current_principal(),
            name=stack.name,
            description=stack.description,
            generator_id=stack.generator_id or None,
            labels=dict(stack.labels),
            annotations=dict(stack.annotations),
            request_id=request.request_id or None,
        )
        return pb.CreateStackResponse(stack=convert.stack(created))

    async def GetStack(
        self, request: pb.GetStackRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetStackResponse:
        stack = await stacks.get_stack(self._uow(), current_principal(), request.id)
        return pb.GetStackResponse(stack=convert.stack(stack))

    async def ListStacks(
        self, request: pb.ListStacksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStacksResponse:
        page = await stacks.list_stacks(
            self._uow(),
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            label_selector=request.label_selector,
            generator_id=request.generator_id or None,
            show_deleted=request.show_deleted,
        )
        return pb.ListStacksResponse(
            stacks=[convert.stack(s) for s in page.items], next_page_token=page.next_page_token
        )

    async def UpdateStack(
        self, request: pb.UpdateStackRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateStackResponse:
        changes = changes_from_mask(request.stack, request.update_mask, _UPDATABLE, field="stack")
        stack = await stacks.update_stack(self._uow(), current_principal(), request.stack.id, changes)
        return pb.UpdateStackResponse(stack=convert.stack(stack))

    async def DeleteStack(
        self, request: pb.DeleteStackRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteStackResponse:
        stack = await stacks.delete_stack(self._uow(), current_principal(), request.id)
        return pb.DeleteStackResponse(stack=convert.stack(stack))

    async def ListStackAgents(
        self, request: pb.ListStackAgentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListStackAgentsResponse:
        reached = await targeting.list_stack_agents(self._uow(), current_principal(), request.id)
        return pb.ListStackAgentsResponse(
            agents=[convert.agent(agent) for agent, _ in reached],
            matches=[convert.target_match(match) for _, match in reached],
        )
