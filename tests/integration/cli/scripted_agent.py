"""An agent that speaks the session protocol over real gRPC and applies nothing: it acks (or nacks)
every stack update and reports a chosen health, so brokkrctl's rollout view has something to watch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

import grpc
from google.rpc import code_pb2, status_pb2

from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as session
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as session_api
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2_grpc as session_grpc

_STOP = object()


class ScriptedAgent:
    def __init__(
        self, target: str, key: str, *, nack: bool = False, health: int = session.HEALTH_STATUS_HEALTHY
    ) -> None:
        self._channel = grpc.insecure_channel(target)
        self._key = key
        self._nack = nack
        self._health = health
        self._outbox: queue.Queue[object] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="scripted-agent", daemon=True)
        self._call: grpc.Future | None = None
        self.updates: list[session.StackUpdate] = []

    def __enter__(self) -> ScriptedAgent:
        self._outbox.put(session_api.ConnectRequest(hello=session.Hello(agent_version="scripted")))
        self._call = session_grpc.AgentSessionServiceStub(self._channel).Connect(
            self._requests(), metadata=(("authorization", f"Bearer {self._key}"),)
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._outbox.put(_STOP)
        if self._call is not None:
            self._call.cancel()
        self._thread.join(10)
        self._channel.close()

    def _requests(self) -> Iterator[session_api.ConnectRequest]:
        while (message := self._outbox.get()) is not _STOP:
            yield message  # type: ignore[misc]

    def _run(self) -> None:
        assert self._call is not None
        try:
            for response in self._call:
                if response.WhichOneof("message") == "stack_update":
                    self._answer(response.stack_update, response.nonce)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                raise

    def _answer(self, update: session.StackUpdate, nonce: str) -> None:
        self.updates.append(update)
        if self._nack:
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="the cluster refused it")
            self._outbox.put(
                session_api.ConnectRequest(
                    nack=session.Nack(nonce=nonce, stack_id=update.stack_id, status=status)
                )
            )
            return
        self._outbox.put(
            session_api.ConnectRequest(
                ack=session.Ack(
                    nonce=nonce, stack_id=update.stack_id, deployment_object=update.deployment_object
                )
            )
        )
        health = session.StackHealth(
            stack_id=update.stack_id, deployment_object=update.deployment_object, health=self._health
        )
        self._outbox.put(session_api.ConnectRequest(health_report=session.HealthReport(stacks=[health])))
