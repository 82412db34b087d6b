"""The agent end of an agent session, as a state machine without I/O.

One `AgentSession` per stream. The agent's stream loop sends `hello()` first, feeds every broker
message to `receive`, reports what its runtime did with `applied` and `failed`, sends heartbeats
when `next_heartbeat_at` comes and health when it changes, and carries out the returned actions in
order: send a message, apply or remove a stack, or close the stream.

The session tracks what the agent holds per stack (`held`), which is what the next stream's Hello
reports (`resume_state`), so a reconnect costs only the changes made meanwhile.

Rules on this end:

* The broker speaks first with a Welcome; anything else first, or a second Welcome, closes the
  stream with FAILED_PRECONDITION. A StackUpdate or StackRemoval without nonce or stack id closes
  it with INVALID_ARGUMENT. Broker messages of types this agent does not know are ignored.
* A StackUpdate becomes an `Apply` with the objects to apply and the keys to remove. A malformed
  one (bad key, content hash not matching the manifest, a key listed twice) is not applied but
  nacked with INVALID_ARGUMENT, so the broker parks it instead of the agent reconnecting forever.
* A StackRemoval becomes a `Remove`. It supersedes unfinished work on the stack: when that work
  finishes, its nonce is not answered (the broker would ignore the answer anyway).
* `applied` answers with an Ack and records the new holding; `failed` answers with a Nack and
  records the stack as held but unknown, so the next Hello asks for a full state.
* The runtime must work on one stack at a time, in the order of the actions, since a removal may
  follow an apply of the same stack before the apply has finished.
* A DiagnosticsRequest becomes a `Diagnose`, if the agent advertised the `diagnostics` capability
  (else it is ignored, as any message the agent does not know); one without id or stack id closes
  the stream with INVALID_ARGUMENT. The runtime collects concurrently with its apply work and calls
  `diagnosed` or `diagnosis_failed`, each answering once; a request repeated while it is being
  collected starts nothing more.
* Silence of the broker for the Welcome's heartbeat timeout (before the Welcome: `welcome_timeout`)
  closes the stream with UNAVAILABLE; `deadline` says when the loop must next call `tick`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from google.rpc import error_details_pb2, status_pb2

from brokkr_common.errors import (
    ERROR_DOMAIN,
    BrokkrError,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, agent_session_service_pb2, diagnostics_pb2
from brokkr_common.session.delta import Delta, Hashes, apply_delta
from brokkr_common.session.reports import ResourceError, ResourceResult, StackHealth
from brokkr_common.session.resource_key import ResourceKey, validate_content_hash
from brokkr_common.session.stacks import (
    UNKNOWN,
    DeploymentObjectRef,
    DesiredResource,
    HeldStack,
    validate_id,
)
from brokkr_common.session.times import timestamp, to_datetime

# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send `message` to the broker."""

    message: agent_session_service_pb2.ConnectRequest


@dataclass(frozen=True)
class Welcomed:
    """The broker accepted the session. Send the full current health of every held stack now."""

    agent_id: str
    agent_name: str
    session_id: str
    replica_name: str
    heartbeat_interval: float
    heartbeat_timeout: float
    server_time: datetime


@dataclass(frozen=True)
class Apply:
    """Apply `apply` and delete `remove` for the stack, then call `applied` or `failed` with
    `nonce`. With `full_state`, also delete every other object recorded for the stack."""

    nonce: str
    stack_id: str
    stack_name: str
    deployment_object: DeploymentObjectRef
    apply: tuple[DesiredResource, ...]
    remove: tuple[ResourceKey, ...]
    full_state: bool
    #: The stack asks for conflicts with other field managers to be forced, not nacked.
    force_conflicts: bool = False


@dataclass(frozen=True)
class Remove:
    """Delete every object of the stack, then call `applied` or `failed` with `nonce`."""

    nonce: str
    stack_id: str


@dataclass(frozen=True)
class Close:
    """End the stream with `error`, then reconnect with backoff; nothing follows."""

    error: BrokkrError


@dataclass(frozen=True)
class Diagnose:
    """Collect diagnostics of the stack, then call `diagnosed` or `diagnosis_failed` with
    `diagnostics_id`. Independent of Apply and Remove: it may run beside them."""

    diagnostics_id: str
    stack_id: str
    options: diagnostics_pb2.DiagnosticsOptions


Action = Send | Welcomed | Apply | Remove | Diagnose | Close

#: The capability an agent advertises when its runtime handles `Diagnose`.
DIAGNOSTICS = "diagnostics"
#: How long an agent waits for the Welcome by default. Long on purpose: after a broker restart the
#: broker takes returning agents up in turn, and one that gave up while queued would only queue
#: again at the back.
WELCOME_TIMEOUT_SECONDS = 120.0


@dataclass(frozen=True)
class _Work:
    """An Apply or Remove handed to the runtime and not finished yet."""

    stack_id: str
    target: DeploymentObjectRef | None  # None: a removal
    result: Hashes  # what the agent holds of the stack once the work succeeds


class AgentSession:
    """The agent end of one stream. See the module docstring for the rules.

    `held` is what the agent holds when the stream opens: the previous session's
    `resume_state()`, or after a restart what the agent recorded in its cluster.
    """

    def __init__(
        self,
        *,
        agent_version: str,
        held: Mapping[str, HeldStack],
        now: float,
        capabilities: Sequence[str] = (),
        welcome_timeout: float = WELCOME_TIMEOUT_SECONDS,
    ) -> None:
        self._agent_version = agent_version
        self._capabilities = tuple(capabilities)
        self._held = dict(held)
        self._work: dict[str, _Work] = {}  # by nonce
        self._newest_nonce: dict[str, str] = {}  # by stack id
        self._welcome: Welcomed | None = None
        self._closed = False
        self._heard_at = now
        self._welcome_timeout = welcome_timeout
        self._next_heartbeat_at: float | None = None
        self._heartbeat_sequence = 0
        #: Diagnostics being collected, by id.
        self._diagnosing: set[str] = set()

    @property
    def held(self) -> Mapping[str, HeldStack]:
        """What the agent holds, by stack id, as far as finished work tells."""
        return MappingProxyType(self._held)

    def resume_state(self) -> dict[str, HeldStack]:
        """What the next stream's Hello should report: `held`, except that stacks with unfinished
        work are unknown, since that work may still change them."""
        resumed = dict(self._held)
        resumed.update(dict.fromkeys(self._newest_nonce, UNKNOWN))
        return resumed

    @property
    def next_heartbeat_at(self) -> float | None:
        """When to call `heartbeat` next; None until the Welcome."""
        return self._next_heartbeat_at

    @property
    def deadline(self) -> float:
        """When the stream times out unless the broker speaks: call `tick` then."""
        timeout = self._welcome.heartbeat_timeout if self._welcome else self._welcome_timeout
        return self._heard_at + timeout

    @property
    def closed(self) -> bool:
        return self._closed

    # -- inputs --------------------------------------------------------------------------------

    def hello(self) -> agent_session_service_pb2.ConnectRequest:
        """The first message of the stream."""
        hello = agent_session_pb2.Hello(
            agent_version=self._agent_version,
            capabilities=self._capabilities,
            stacks=[stack.to_proto(stack_id) for stack_id, stack in sorted(self._held.items())],
        )
        return agent_session_service_pb2.ConnectRequest(hello=hello)

    def receive(self, message: agent_session_service_pb2.ConnectResponse, now: float) -> list[Action]:
        """Handle one message from the broker."""
        if self._closed:
            return []
        self._heard_at = now
        try:
            return self._dispatch(message, now)
        except BrokkrError as error:
            return self._close(error)

    def applied(self, nonce: str, results: Sequence[ResourceResult] = ()) -> list[Action]:
        """The runtime finished the Apply or Remove with `nonce`."""
        work = self._finish(nonce)
        if work is None:
            return []
        if work.target is None:
            self._held.pop(work.stack_id, None)
        else:
            self._held[work.stack_id] = HeldStack(work.target, MappingProxyType(work.result))
        ack = agent_session_pb2.Ack(
            nonce=nonce,
            stack_id=work.stack_id,
            deployment_object=work.target.to_proto() if work.target else None,
            results=[result.to_proto() for result in results],
        )
        return [Send(agent_session_service_pb2.ConnectRequest(ack=ack))]

    def failed(
        self, nonce: str, status: status_pb2.Status, errors: Sequence[ResourceError] = ()
    ) -> list[Action]:
        """The runtime gave up on the Apply or Remove with `nonce`; `status.code` is not OK."""
        work = self._finish(nonce)
        if work is None:
            return []
        self._held[work.stack_id] = UNKNOWN
        return [_nack(nonce, work.stack_id, status, errors)]

    def heartbeat(
        self, now: float, *, kubernetes_reachable: bool, kubernetes_api_latency_ms: int
    ) -> list[Action]:
        """A heartbeat with the runtime's latest Kubernetes probe; nothing before the Welcome."""
        if self._welcome is None or self._closed:
            return []
        self._heartbeat_sequence += 1
        self._next_heartbeat_at = now + self._welcome.heartbeat_interval
        heartbeat = agent_session_pb2.Heartbeat(
            agent_time=timestamp(now),
            kubernetes_reachable=kubernetes_reachable,
            kubernetes_api_latency_ms=kubernetes_api_latency_ms,
            sequence=self._heartbeat_sequence,
        )
        return [Send(agent_session_service_pb2.ConnectRequest(heartbeat=heartbeat))]

    def report_health(self, stacks: Sequence[StackHealth]) -> list[Action]:
        """A health report; nothing before the Welcome (which asks for a full report)."""
        if self._welcome is None or self._closed or not stacks:
            return []
        report = agent_session_pb2.HealthReport(stacks=[stack.to_proto() for stack in stacks])
        return [Send(agent_session_service_pb2.ConnectRequest(health_report=report))]

    def diagnosed(
        self, diagnostics_id: str, stack_id: str, report: diagnostics_pb2.DiagnosticsReport
    ) -> list[Action]:
        """The runtime collected the diagnostics `diagnostics_id` asked for."""
        if self._closed or diagnostics_id not in self._diagnosing:
            return []
        self._diagnosing.discard(diagnostics_id)
        result = agent_session_pb2.DiagnosticsResult(
            diagnostics_id=diagnostics_id, stack_id=stack_id, report=report
        )
        return [Send(agent_session_service_pb2.ConnectRequest(diagnostics_result=result))]

    def diagnosis_failed(self, diagnostics_id: str, stack_id: str, status: status_pb2.Status) -> list[Action]:
        """The runtime could not collect anything; `status.code` is not OK."""
        if self._closed or diagnostics_id not in self._diagnosing:
            return []
        self._diagnosing.discard(diagnostics_id)
        result = agent_session_pb2.DiagnosticsResult(
            diagnostics_id=diagnostics_id, stack_id=stack_id, error=status
        )
        return [Send(agent_session_service_pb2.ConnectRequest(diagnostics_result=result))]

    def tick(self, now: float) -> list[Action]:
        """Let time pass: close the stream if the broker has been silent past the deadline."""
        if self._closed or now < self.deadline:
            return []
        if self._welcome is None:
            return self._close(
                Unavailable(f"no Welcome within {self._welcome_timeout:g} s", reason="WELCOME_TIMEOUT")
            )
        timeout = self._welcome.heartbeat_timeout
        return self._close(
            Unavailable(f"nothing heard from the broker for {timeout:g} s", reason="BROKER_SILENT")
        )

    # -- messages ------------------------------------------------------------------------------

    def _dispatch(self, message: agent_session_service_pb2.ConnectResponse, now: float) -> list[Action]:
        kind = message.WhichOneof("message")
        if self._welcome is None:
            if kind != "welcome":
                raise FailedPrecondition("the first message must be a Welcome", reason="WELCOME_REQUIRED")
            return self._on_welcome(message.welcome, now)
        match kind:
            case "welcome":
                raise FailedPrecondition(
                    "Welcome may be sent only once per stream", reason="DUPLICATE_WELCOME"
                )
            case "stack_update":
                return self._on_update(message.stack_update, message.nonce)
            case "stack_removal":
                return self._on_removal(message.stack_removal, message.nonce)
            case "diagnostics_request" if DIAGNOSTICS in self._capabilities:
                return self._on_diagnostics_request(message.diagnostics_request)
            case _:  # heartbeat_ack, or a message type from a newer broker
                return []

    def _on_welcome(self, welcome: agent_session_pb2.Welcome, now: float) -> list[Action]:
        interval = _positive_seconds(welcome, "heartbeat_interval")
        timeout = _positive_seconds(welcome, "heartbeat_timeout")
        self._welcome = Welcomed(
            welcome.agent_id,
            welcome.agent_name,
            welcome.session_id,
            welcome.replica_name,
            interval,
            timeout,
            to_datetime(welcome.server_time, "welcome.server_time"),
        )
        self._next_heartbeat_at = now
        return [self._welcome]

    def _on_update(self, update: agent_session_pb2.StackUpdate, nonce: str) -> list[Action]:
        stack_id = _addressed(update.stack_id, nonce, "stack_update")
        try:
            target, to_apply, to_remove = _parse_update(update)
        except InvalidArgument as error:
            return [_nack(nonce, stack_id, _status(error), ())]
        base = {} if update.full_state else self._held.get(stack_id, UNKNOWN).resources
        delta = Delta(tuple((r.key, r.content_hash) for r in to_apply), to_remove)
        self._start(nonce, _Work(stack_id, target, apply_delta(base, delta)))
        return [
            Apply(
                nonce,
                stack_id,
                update.stack_name,
                target,
                to_apply,
                to_remove,
                update.full_state,
                update.force_conflicts,
            )
        ]

    def _on_removal(self, removal: agent_session_pb2.StackRemoval, nonce: str) -> list[Action]:
        stack_id = _addressed(removal.stack_id, nonce, "stack_removal")
        self._start(nonce, _Work(stack_id, None, {}))
        return [Remove(nonce, stack_id)]

    def _on_diagnostics_request(self, request: agent_session_pb2.DiagnosticsRequest) -> list[Action]:
        diagnostics_id = validate_id(request.diagnostics_id, "diagnostics_request.diagnostics_id")
        stack_id = validate_id(request.stack_id, "diagnostics_request.stack_id")
        if diagnostics_id in self._diagnosing:
            return []
        self._diagnosing.add(diagnostics_id)
        return [Diagnose(diagnostics_id, stack_id, request.options)]

    # -- work ----------------------------------------------------------------------------------

    def _start(self, nonce: str, work: _Work) -> None:
        superseded = self._newest_nonce.get(work.stack_id)
        if superseded is not None:
            del self._work[superseded]
        self._newest_nonce[work.stack_id] = nonce
        self._work[nonce] = work

    def _finish(self, nonce: str) -> _Work | None:
        """The work `nonce` started, unless it was superseded, already answered or is unknown."""
        if self._closed:
            return None
        work = self._work.pop(nonce, None)
        if work is not None:
            del self._newest_nonce[work.stack_id]
        return work

    def _close(self, error: BrokkrError) -> list[Action]:
        self._closed = True
        return [Close(error)]


def _addressed(stack_id: str, nonce: str, field: str) -> str:
    """The stack id of an update or removal, which must also carry a nonce to be answerable."""
    if not nonce:
        raise InvalidArgument.for_field("nonce", f"a {field} needs a nonce")
    return validate_id(stack_id, f"{field}.stack_id")


def _parse_update(
    update: agent_session_pb2.StackUpdate,
) -> tuple[DeploymentObjectRef, tuple[DesiredResource, ...], tuple[ResourceKey, ...]]:
    if not update.HasField("deployment_object"):
        raise InvalidArgument.for_field("stack_update.deployment_object", "is required")
    target = DeploymentObjectRef.from_proto(update.deployment_object, "stack_update.deployment_object")
    to_apply = tuple(_parse_manifest(item, f"stack_update.apply[{i}]") for i, item in enumerate(update.apply))
    to_remove = tuple(
        ResourceKey.from_proto(key, f"stack_update.remove[{i}]") for i, key in enumerate(update.remove)
    )
    keys = [resource.key for resource in to_apply] + list(to_remove)
    if len(set(keys)) != len(keys):
        raise InvalidArgument.for_field("stack_update", "lists a resource key more than once")
    return target, to_apply, to_remove


def _parse_manifest(message: agent_session_pb2.ResourceManifest, field: str) -> DesiredResource:
    key = ResourceKey.from_proto(message.key, f"{field}.key")
    digest = validate_content_hash(message.content_hash, f"{field}.content_hash")
    if hashlib.sha256(message.manifest.encode()).hexdigest() != digest:
        raise InvalidArgument.for_field(
            f"{field}.content_hash", "is not the SHA-256 of the manifest", reason="CONTENT_HASH_MISMATCH"
        )
    return DesiredResource(key, digest, message.manifest)


def _positive_seconds(welcome: agent_session_pb2.Welcome, name: str) -> float:
    seconds = getattr(welcome, name).ToNanoseconds() / 1e9
    if seconds <= 0:
        raise InvalidArgument.for_field(f"welcome.{name}", "must be positive")
    return seconds


def _status(error: BrokkrError) -> status_pb2.Status:
    status = status_pb2.Status(code=error.code, message=error.message)
    status.details.add().Pack(error_details_pb2.ErrorInfo(reason=error.reason, domain=ERROR_DOMAIN))
    return status


def _nack(nonce: str, stack_id: str, status: status_pb2.Status, errors: Sequence[ResourceError]) -> Send:
    nack = agent_session_pb2.Nack(
        nonce=nonce, stack_id=stack_id, status=status, errors=[error.to_proto() for error in errors]
    )
    return Send(agent_session_service_pb2.ConnectRequest(nack=nack))
