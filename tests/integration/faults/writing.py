"""A CI pipeline that keeps committing versions of a stack while the scenario breaks things.

It runs in its own thread with a synchronous channel, so it keeps writing whatever the test's event
loop is doing. Each version is created with its own `request_id` and retried with the same one for
as long as the broker answers UNAVAILABLE (down, restarting, or its database gone), as AIP-155
clients do: a retry of a create that did commit returns the same deployment object, never a
second one. Any other failure stops the writer and is raised by `stop()`.
"""

from __future__ import annotations

import threading
import time
import uuid

import grpc

from brokkr_common.errors import BrokkrError, Unavailable
from brokkr_common.pb.brokkr.v1 import (
    deployment_object_pb2,
    deployment_object_service_pb2,
    deployment_object_service_pb2_grpc,
)
from brokkr_common.rpc_status import from_rpc_error
from tests.integration.faults.world import configmaps

_CHANNEL_OPTIONS = (("grpc.max_reconnect_backoff_ms", 500), ("grpc.initial_reconnect_backoff_ms", 100))
_RETRY_SECONDS = 0.1
_CALL_TIMEOUT_SECONDS = 10.0


class VersionWriter:
    """Commits versions `first_version`, `first_version + 1` ... of a stack, `pause` seconds apart."""

    def __init__(
        self, target: str, admin_key: str, stack_id: str, first_version: int, pause: float = 0.1
    ) -> None:
        self._channel = grpc.insecure_channel(target, options=_CHANNEL_OPTIONS)
        self._stub = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(self._channel)
        self._metadata = (("authorization", f"Bearer {admin_key}"),)
        self._stack_id = stack_id
        self._next_version = first_version
        self._pause = pause
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="version-writer", daemon=True)
        #: (deployment object id, sequence id) of every version created, in order.
        self.created: list[tuple[str, int]] = []
        #: The UNAVAILABLE answers received (each retried), with their reason and retry hint.
        self.unavailable: list[Unavailable] = []
        self.failure: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def created_count(self) -> int:
        with self._lock:
            return len(self.created)

    def unavailable_count(self) -> int:
        with self._lock:
            return len(self.unavailable)

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the version being written, stop, and raise what stopped the writer early."""
        self._stop.set()
        self._thread.join(timeout)
        self._channel.close()
        if self._thread.is_alive():
            raise TimeoutError("the version writer did not stop")
        if self.failure is not None:
            raise AssertionError(f"the version writer failed: {self.failure!r}") from self.failure

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                created = self._create(configmaps(self._next_version), str(uuid.uuid4()))
                with self._lock:
                    self.created.append(created)
                self._next_version += 1
                self._stop.wait(self._pause)
        except BaseException as error:  # reported by stop()
            self.failure = error

    def _create(self, content: str, request_id: str) -> tuple[str, int]:
        request = deployment_object_service_pb2.CreateDeploymentObjectRequest(
            stack_id=self._stack_id,
            deployment_object=deployment_object_pb2.DeploymentObject(yaml_content=content),
            request_id=request_id,
        )
        while True:
            try:
                response = self._stub.CreateDeploymentObject(
                    request, metadata=self._metadata, timeout=_CALL_TIMEOUT_SECONDS
                )
            except grpc.RpcError as error:
                problem: BrokkrError = from_rpc_error(error)
                if not isinstance(problem, Unavailable):
                    raise problem from None
                with self._lock:
                    self.unavailable.append(problem)
                time.sleep(_RETRY_SECONDS)
                continue
            return response.deployment_object.id, response.deployment_object.sequence_id
