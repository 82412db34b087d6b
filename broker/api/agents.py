"""brokkr.v1.AgentService: validate -> service -> convert."""

from __future__ import annotations

import grpc

from broker.api import convert
from broker.api.masks import changes_from_mask
from broker.context import current_principal
from broker.domain.model import AgentStatus
from broker.domain.ports import UnitOfWorkFactory
from broker.services import agents, targeting
from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import agent_pb2, agent_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as pb


def _status(field: str, value: int) -> AgentStatus | None:
    if value == agent_pb2.AGENT_STATUS_UNSPECIFIED:
        return None
    status = convert.agent_status_from_proto(value)
    if status is None:
        raise InvalidArgument.for_field(field, f"unknown agent status {value}")
    return status


_UPDATABLE = {
    "name": lambda a: a.name,
    "cluster_name": lambda a: a.cluster_name,
    "labels": lambda a: dict(a.labels),
    "annotations": lambda a: dict(a.annotations),
    "status": lambda a: _status("agent.status", a.status) or AgentStatus.INACTIVE,
}


class AgentServicer(agent_service_pb2_grpc.AgentServiceServicer):
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    async def CreateAgent(
        self, request: pb.CreateAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateAgentResponse:
        agent = request.agent
        created = await agents.create_agent(
            self._uow(),
            current_principal(),
            name=agent.name,
            cluster_name=agent.cluster_name,
            labels=dict(agent.labels),
            annotations=dict(agent.annotations),
            status=_status("agent.status", agent.status) or AgentStatus.INACTIVE,
            request_id=request.request_id or None,
        )
        return pb.CreateAgentResponse(agent=convert.agent(created.resource), key=created.key or "")

    async def GetAgent(
        self, request: pb.GetAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetAgentResponse:
        agent = await agents.get_agent(self._uow(), current_principal(), request.id)
        return pb.GetAgentResponse(agent=convert.agent(agent))

    async def ListAgents(
        self, request: pb.ListAgentsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAgentsResponse:
        page = await agents.list_agents(
            self._uow(),
            current_principal(),
            page_size=request.page_size,
            page_token=request.page_token,
            label_selector=request.label_selector,
            show_deleted=request.show_deleted,
        )
        return pb.ListAgentsResponse(
            agents=[convert.agent(a) for a in page.items], next_page_token=page.next_page_token
        )

    async def UpdateAgent(
        self, request: pb.UpdateAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.UpdateAgentResponse:
        changes = changes_from_mask(request.agent, request.update_mask, _UPDATABLE, field="agent")
        agent = await agents.update_agent(self._uow(), current_principal(), request.agent.id, changes)
        return pb.UpdateAgentResponse(agent=convert.agent(agent))

    async def DeleteAgent(
        self, request: pb.DeleteAgentRequest, context: grpc.aio.ServicerContext
    ) -> pb.DeleteAgentResponse:
        agent = await agents.delete_agent(self._uow(), current_principal(), request.id)
        return pb.DeleteAgentResponse(agent=convert.agent(agent))

    async def RotateAgentKey(
        self, request: pb.RotateAgentKeyRequest, context: grpc.aio.ServicerContext
    ) -> pb.RotateAgentKeyResponse:
        key = await agents.rotate_agent_key(self._uow(), current_principal(), request.id)
        return pb.RotateAgentKeyResponse(key=key)

    async def ListAgentStacks(
        self, request: pb.ListAgentStacksRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListAgentStacksResponse:
        reached = await targeting.list_agent_stacks(self._uow(), current_principal(), request.id)
        return pb.ListAgentStacksResponse(
            stacks=[convert.stack(stack) for stack, _ in reached],
            matches=[convert.target_match(match) for _, match in reached],
        )
