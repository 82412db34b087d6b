"""What every fault scenario stands on: broker processes, simulated agents and the admin's view.

The broker is the benchmark's `python -m broker serve` process (`bench.fanout_broker`), configured
through `BROKKR_*` variables; the agents are the benchmark's fleets of real `SessionClient`s in
separate processes (`bench.fanout_agents`), with short reconnect backoff so a scenario converges in
seconds rather than minutes. The admin talks to the broker through the public gRPC API only, like
any client, and the scenarios check end state through it (ListDeploymentStatuses, GetAgent,
ListEvents, WatchEvents) and, where the API cannot tell (one row per agent x stack), in the database.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import grpc

from agent.stream.client import ClientOptions
from bench.fanout_api import LABEL
from brokkr_common.errors import BrokkrError
from brokkr_common.pb.brokkr.v1 import (
    agent_pb2,
    agent_service_pb2,
    agent_service_pb2_grpc,
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
    deployment_status_pb2,
    deployment_status_service_pb2,
    deployment_status_service_pb2_grpc,
    event_pb2,
    event_service_pb2,
    event_service_pb2_grpc,
    stack_pb2,
    stack_service_pb2,
    stack_service_pb2_grpc,
)
from brokkr_common.rpc_status import from_rpc_error
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceOutcome, ResourceResult

R = TypeVar("R")

#: Agents reconnect fast here: the scenarios are about what happens, not about waiting.
FAST_AGENTS = ClientOptions(
    agent_version="brokkr-faults", reconnect_base_seconds=0.2, reconnect_max_seconds=2.0
)
#: Client channels retry connecting at most this far apart (grpc's default grows to 120 s).
_CHANNEL_OPTIONS = (("grpc.max_reconnect_backoff_ms", 1000), ("grpc.initial_reconnect_backoff_ms", 100))
_CALL_TIMEOUT_SECONDS = 20.0
_POLL_SECONDS = 0.25


def configmaps(version: int, count: int = 3, changing: int | None = None) -> str:
    """A small stack: `count` ConfigMaps, of which the first `changing` (default: all) change
    with `version`."""
    changing = count if changing is None else changing
    return "---\n".join(
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: fault-{index}\n  namespace: faults\n"
        f"data:\n  version: v{version if index < changing else 0}\n"
        for index in range(count)
    )


class Admin:
    """The broker's API as the admin, over one grpc.aio channel; failures raise `BrokkrError`s."""

    def __init__(self, target: str, admin_key: str) -> None:
        self.channel = grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        self.metadata = (("authorization", f"Bearer {admin_key}"),)
        self.agents = agent_service_pb2_grpc.AgentServiceStub(self.channel)
        self.stacks = stack_service_pb2_grpc.StackServiceStub(self.channel)
        self.deployment_objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(self.channel)
        self.status_service = deployment_status_service_pb2_grpc.DeploymentStatusServiceStub(self.channel)
        self.events = event_service_pb2_grpc.EventServiceStub(self.channel)

    async def call(self, method: Callable[..., Any], request: Any) -> Any:
        try:
            return await method(request, metadata=self.metadata, timeout=_CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as error:
            raise from_rpc_error(error) from None

    async def create_agents(self, count: int, prefix: str = "fault") -> list[tuple[str, str]]:
        """`count` active agents labelled like the benchmark's; (id, key) of each, in order."""
        slots = asyncio.Semaphore(16)

        async def create(index: int) -> tuple[str, str]:
            agent = agent_pb2.Agent(
                name=f"{prefix}-{index:04d}",
                cluster_name=f"{prefix}-{index:04d}",
                labels=dict([LABEL]),
                status=agent_pb2.AGENT_STATUS_ACTIVE,
            )
            async with slots:
                created = await self.call(
                    self.agents.CreateAgent, agent_service_pb2.CreateAgentRequest(agent=agent)
                )
            return created.agent.id, created.key

        return list(await asyncio.gather(*(create(i) for i in range(count))))

    async def create_stack(self, name: str = "faults") -> str:
        """A stack reaching every agent `create_agents` made; its id."""
        created = await self.call(
            self.stacks.CreateStack,
            stack_service_pb2.CreateStackRequest(stack=stack_pb2.Stack(name=name, labels=dict([LABEL]))),
        )
        return created.stack.id

    async def commit(
        self, stack_id: str, content: str, request_id: str = ""
    ) -> deployment_object_pb2.DeploymentObject:
        created = await self.call(
            self.deployment_objects.CreateDeploymentObject,
            deployment_object_service_pb2.CreateDeploymentObjectRequest(
                stack_id=stack_id,
                deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=content),
                request_id=request_id,
            ),
        )
        return created.deployment_object

    async def agent(self, agent_id: str) -> agent_pb2.Agent:
        return (await self.call(self.agents.GetAgent, agent_service_pb2.GetAgentRequest(id=agent_id))).agent

    async def statuses(self, stack_id: str) -> list[deployment_status_pb2.DeploymentStatus]:
        """Every agent x stack status of the stack, all pages."""
        found: list[deployment_status_pb2.DeploymentStatus] = []
        token = ""
        while True:
            page = await self.call(
                self.status_service.ListDeploymentStatuses,
                deployment_status_service_pb2.ListDeploymentStatusesRequest(
                    stack_id=stack_id, page_size=1000, page_token=token
                ),
            )
            found += page.deployment_statuses
            if not (token := page.next_page_token):
                return found

    async def events_listed(self, types: Sequence[str] = ()) -> list[event_pb2.Event]:
        """Every stored event (of `types`), oldest first, all pages."""
        found: list[event_pb2.Event] = []
        token = ""
        while True:
            page = await self.call(
                self.events.ListEvents,
                event_service_pb2.ListEventsRequest(page_size=1000, page_token=token, types=types),
            )
            found += page.events
            if not (token := page.next_page_token):
                return found

    async def events_watched(self, count: int, timeout: float) -> list[event_pb2.Event]:
        """The first `count` events a WatchEvents from the very beginning ("0") sends."""
        call = self.events.WatchEvents(
            event_service_pb2.WatchEventsRequest(after_event_id="0"), metadata=self.metadata
        )
        found: list[event_pb2.Event] = []
        try:
            async with asyncio.timeout(timeout):
                async for response in call:
                    found.append(response.event)
                    if len(found) >= count:
                        break
        finally:
            call.cancel()
        return found

    async def close(self) -> None:
        await self.channel.close()


async def converged(
    admin: Admin, stack_id: str, agent_ids: Sequence[str], newest: int, timeout: float
) -> list[deployment_status_pb2.DeploymentStatus]:
    """Wait until ListDeploymentStatuses shows every agent of `agent_ids` APPLIED with `newest`
    acknowledged (and desired); fail naming the agents that are not there when `timeout` passes."""
    deadline = time.monotonic() + timeout
    wanted = set(agent_ids)
    while True:
        statuses = [s for s in await admin.statuses(stack_id) if s.agent_id in wanted]
        behind = {
            s.agent_id: (s.applied_deployment_object.sequence_id, s.desired_deployment_object.sequence_id)
            for s in statuses
            if not (
                s.state == deployment_status_pb2.DEPLOYMENT_STATE_APPLIED
                and s.applied_deployment_object.sequence_id == newest
                and s.desired_deployment_object.sequence_id == newest
            )
        }
        missing = wanted - {s.agent_id for s in statuses}
        if not behind and not missing:
            return statuses
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not converged to version {newest}: {len(behind)} agents behind "
                f"(applied, desired) e.g. {sorted(behind.items())[:5]}, {len(missing)} without a status"
            )
        await asyncio.sleep(_POLL_SECONDS)


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll the coroutine function `check` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = await check()
        except BrokkrError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting until {what}")
        await asyncio.sleep(_POLL_SECONDS)


class RecordingRuntime:
    """For an agent run inside the test: applies nothing, records every piece of work it got."""

    def __init__(self) -> None:
        self.work: list[machine.Apply | machine.Remove] = []
        self._changed = asyncio.Event()

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        self.work.append(work)
        self._changed.set()
        return [ResourceResult(r.key, ResourceOutcome.CREATED) for r in work.apply]

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        self.work.append(work)
        self._changed.set()
        return []

    async def probe(self) -> tuple[bool, int]:
        return True, 1

    async def applied(self, sequence_id: int, timeout: float) -> machine.Apply:
        """The work that brought version `sequence_id`, once it arrived."""
        async with asyncio.timeout(timeout):
            while True:
                for work in self.work:
                    if isinstance(work, machine.Apply) and work.deployment_object.sequence_id == sequence_id:
                        return work
                self._changed.clear()
                await self._changed.wait()
