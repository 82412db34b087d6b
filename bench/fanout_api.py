"""The admin's side of the benchmark: agents, the stack and its versions, through the public API.

Everything goes through the broker's gRPC API with the admin key, as a CI pipeline would: agents
are created many calls at a time (each answer carries the agent's key, shown once), active and with
the label the stack targets; the stack's versions are 100 ConfigMaps of 2,048 bytes of YAML each.
A deployment object's commit time is the moment CreateDeploymentObject returned.
"""

from __future__ import annotations

import asyncio
import hashlib
import time

import grpc

from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2,
    stack_service_pb2_grpc,
)

LABEL = ("brokkr-bench", "fanout")
OBJECTS = 100
OBJECT_BYTES = 2048
_PARALLEL_CALLS = 32
_CALL_TIMEOUT_SECONDS = 60.0


def stack_yaml(version: int) -> str:
    """The stack's content: `OBJECTS` ConfigMaps, of which only the first differs between versions
    (its payload, at the same size): each version is a 1-of-100 change of the one before."""
    return "---\n".join(_configmap(index, version if index == 0 else 1) for index in range(OBJECTS))


def _configmap(index: int, version: int) -> str:
    head = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bench-{index:03d}\n"
        f"  namespace: brokkr-bench\ndata:\n  payload: "
    )
    room = OBJECT_BYTES - len(head) - 1
    # Hex digests: YAML-safe, different per object and version, the same in every run.
    blocks = (hashlib.sha256(f"{index}/{version}/{n}".encode()).hexdigest() for n in range(room // 64 + 1))
    return f"{head}{''.join(blocks)[:room]}\n"


class AdminApi:
    """The broker's API as the admin, over one asyncio channel."""

    def __init__(self, target: str, admin_key: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._metadata = (("authorization", f"Bearer {admin_key}"),)
        self._agents = agent_service_pb2_grpc.AgentServiceStub(self._channel)
        self._stacks = stack_service_pb2_grpc.StackServiceStub(self._channel)
        self._deployment_objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(
            self._channel
        )

    async def create_agents(self, count: int) -> list[str]:
        """`count` active agents labelled `LABEL`, `_PARALLEL_CALLS` calls at a time; their keys."""
        slots = asyncio.Semaphore(_PARALLEL_CALLS)

        async def create(index: int) -> str:
            agent = agent_pb2.Agent(
                name=f"bench-{index:05d}",
                cluster_name=f"bench-{index:05d}",
                labels=dict([LABEL]),
                status=agent_pb2.AGENT_STATUS_ACTIVE,
            )
            async with slots:
                created = await self._agents.CreateAgent(
                    agent_service_pb2.CreateAgentRequest(agent=agent),
                    metadata=self._metadata,
                    timeout=_CALL_TIMEOUT_SECONDS,
                )
            return created.key

        return list(await asyncio.gather(*(create(i) for i in range(count))))

    async def create_stack(self) -> str:
        stack = stack_pb2.Stack(name="bench-fanout", labels=dict([LABEL]))
        created = await self._stacks.CreateStack(
            stack_service_pb2.CreateStackRequest(stack=stack),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        return created.stack.id

    async def commit(self, stack_id: str, yaml_content: str) -> tuple[int, float]:
        """Create a deployment object; its sequence id, and when the call returned."""
        created = await self._deployment_objects.CreateDeploymentObject(
            deployment_object_service_pb2.CreateDeploymentObjectRequest(
                stack_id=stack_id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=yaml_content),
            ),
            metadata=self._metadata,
            timeout=_CALL_TIMEOUT_SECONDS,
        )
        return created.deployment_object.sequence_id, time.time()

    async def close(self) -> None:
        await self._channel.close()
