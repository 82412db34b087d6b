"""`brokkr.v1.AgentSessionService.Connect`: the thin grpc.aio loop around `BrokerSession`.

Per stream: the agent is authenticated by the interceptor (role `agent`); the session is opened
in the database; one reader task feeds the agent's messages to the state machine, one clock task
ticks it at its deadline, and the handler itself is the writer, yielding already-serialized bytes
from a bounded outbox. An update is encoded once and shared by every agent that needs the same
bytes (`UpdateEncoder`); only the nonce differs. An agent that stops reading fills its outbox and is
disconnected rather than let the broker's memory grow; it resumes with Hello when it comes back.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import structlog

from broker.context import current_principal
from broker.domain.model import Role
from broker.stream.hub import END, LiveSession, SessionHub
from broker.stream.recording import Recorder
from brokkr_common.errors import BrokkrError, PermissionDenied, ResourceExhausted
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as pb
from brokkr_common.session import broker_session as machine
from brokkr_common.session.updates import UpdateEncoder

log = structlog.get_logger("brokkr.stream")

SERVICE = "brokkr.v1.AgentSessionService"


@dataclass(frozen=True)
class StreamLimits:
    outbox_messages: int = 512
    """Messages queued for one agent before it counts as not reading and is disconnected."""
    heartbeat: machine.HeartbeatPolicy = field(default_factory=machine.HeartbeatPolicy)


class AgentSessionServicer:
    def __init__(
        self, hub: SessionHub, recorder: Recorder, *, replica_name: str, limits: StreamLimits = StreamLimits()
    ) -> None:
        self._hub = hub
        self._recorder = recorder
        self._replica = replica_name
        self._limits = limits
        self._encoder = UpdateEncoder()

    def handler(self) -> grpc.GenericRpcHandler:
        """The method handler; responses are bytes the loop serialized (or shared) itself."""
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Connect": grpc.stream_stream_rpc_method_handler(
                    self.Connect,
                    request_deserializer=pb.ConnectRequest.FromString,
                    response_serializer=lambda data: data,
                )
            },
        )

    async def Connect(
        self, requests: AsyncIterator[pb.ConnectRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        principal = current_principal()
        if principal.role is not Role.AGENT or principal.id is None:
            raise PermissionDenied("only agent keys may open a session", reason="ROLE_NOT_ALLOWED")
        session_id = str(uuid.uuid4())
        opened = await self._hub.open(principal.id, session_id=session_id, peer=context.peer())
        session = machine.BrokerSession(
            agent_id=opened.agent.id,
            agent_name=opened.agent.name,
            session_id=session_id,
            replica_name=self._replica,
            desired=opened.desired,
            now=time.time(),
            parked=opened.parked,
            heartbeats=self._limits.heartbeat,
        )
        live = LiveSession(
            opened.agent.id,
            session_id,
            session,
            self._hub.outbox(self._limits.outbox_messages),
            self._encoder,
            self._recorder,
        )
        live.task = asyncio.current_task()
        live.stacks.update(opened.desired, opened.parked)
        live.wanted.update(opened.desired)
        structlog.contextvars.bind_contextvars(agent=opened.agent.name, session=session_id)
        self._hub.register(live, opened)
        reader = asyncio.create_task(self._read(live, requests), name=f"session-reader-{session_id}")
        clock = asyncio.create_task(self._clock(live), name=f"session-clock-{session_id}")
        try:
            while True:
                item = await live.outbox.get()
                if item is END:
                    return
                if isinstance(item, BrokkrError):
                    raise item
                yield item
        finally:
            # No awaiting here: when gRPC closes this generator (the call was cancelled, or the
            # server is stopping) awaiting is not allowed. The hub records the disconnect.
            reader.cancel()
            clock.cancel()
            self._hub.release(live)

    async def _read(self, live: LiveSession, requests: AsyncIterator[pb.ConnectRequest]) -> None:
        try:
            async for request in requests:
                await live.carry_out(live.session.receive(request, time.time()))
                if live.session.closed:
                    return
            live.end(None)
        except BrokkrError as error:
            live.end(error)
        except Exception:  # the loop must end the stream, not leave it hanging
            log.exception("session reader failed")
            live.end(ResourceExhausted("session failed", reason="SESSION_FAILED"))

    async def _clock(self, live: LiveSession) -> None:
        while not live.session.closed:
            await asyncio.sleep(max(0.0, live.session.deadline - time.time()))
            await live.carry_out(live.session.tick(time.time()))
