"""A hand-driven agent stream on the raw generated stub, for traffic no real agent would send.

`RawSession` sends exactly the messages the test puts in (`send`), in that order, and hands back
what the broker answers (`receive`) and how the stream ended (`ending`); nothing is validated,
retried or answered on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from brokkr_common.errors import BrokkrError
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, agent_session_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as session_pb2
from brokkr_common.rpc_status import from_rpc_error

_RECEIVE_TIMEOUT_SECONDS = 15.0


class RawSession:
    def __init__(self, target: str, key: str) -> None:
        self._channel = grpc.aio.insecure_channel(target)
        self._requests: asyncio.Queue[session_pb2.ConnectRequest | None] = asyncio.Queue()
        self._call = agent_session_service_pb2_grpc.AgentSessionServiceStub(self._channel).Connect(
            self._drain(), metadata=(("authorization", f"Bearer {key}"),)
        )

    def send(self, *messages: session_pb2.ConnectRequest) -> None:
        for message in messages:
            self._requests.put_nowait(message)

    def hello(self, *held: agent_session_pb2.HeldStack) -> None:
        self.send(
            session_pb2.ConnectRequest(hello=agent_session_pb2.Hello(agent_version="forged", stacks=held))
        )

    async def receive(self, timeout: float = _RECEIVE_TIMEOUT_SECONDS) -> session_pb2.ConnectResponse:
        """The broker's next message; fails if the stream ends first."""
        async with asyncio.timeout(timeout):
            response = await self._call.read()
        if response is grpc.aio.EOF:
            raise AssertionError(f"the stream ended: {await self.ending()!r}")
        return response

    async def receive_kind(self, kind: str) -> session_pb2.ConnectResponse:
        """The broker's next message of `kind` (e.g. "stack_update"), skipping heartbeat acks."""
        while True:
            response = await self.receive()
            if response.WhichOneof("message") == kind:
                return response
            assert response.WhichOneof("message") == "heartbeat_ack", response

    async def ending(self, timeout: float = _RECEIVE_TIMEOUT_SECONDS) -> BrokkrError | None:
        """How the stream ended (None: OK), once it has, reading past anything still unread."""
        try:
            async with asyncio.timeout(timeout):
                while await self._call.read() is not grpc.aio.EOF:
                    pass
        except grpc.aio.AioRpcError as error:
            return from_rpc_error(error)
        return None

    async def close(self) -> None:
        self._requests.put_nowait(None)
        self._call.cancel()
        await self._channel.close()

    async def _drain(self) -> AsyncIterator[session_pb2.ConnectRequest]:
        while (message := await self._requests.get()) is not None:
            yield message
