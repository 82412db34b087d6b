"""The broker end of an agent session, as a state machine without I/O.

One `BrokerSession` per connected agent. Its inputs are the agent's messages (`receive`), changes
of what the agent should hold (`set_desired`, `retry`) and the passing of time (`tick`); each
returns the actions the stream loop must carry out, in order: send a message, record something in
the database, or close the stream. The loop owns the socket, the clock and the database; this
class owns the rules, so they can be tested without any of them.

The rules, per stack (Envoy's incremental xDS, narrowed to one stream per agent):

* The agent speaks first with a Hello saying what it holds. Anything else first, or a second
  Hello, closes the stream with FAILED_PRECONDITION; a malformed message closes it with
  INVALID_ARGUMENT naming the field.
* After the Welcome, every desired stack the agent does not hold exactly gets a StackUpdate with
  the delta against the hashes the agent reported, whatever deployment object it claims; every
  held stack that is not desired gets a StackRemoval; stacks held exactly get nothing.
* At most one StackUpdate or StackRemoval per stack is unanswered. Versions desired meanwhile are
  coalesced: when the answer comes, only the newest is sent.
* An Ack makes the sent version what the agent holds. A Nack records the failure and *parks* the
  version: it is not resent until a newer version is desired or `retry` is called. After a Nack
  the agent's holdings are unknown, so the next update is a full state.
* A removal does not wait for an unanswered update: like a newer xDS response, it supersedes it,
  and the Ack or Nack of the superseded nonce is then ignored. Deleting a stack or untargeting an
  agent thus takes effect at once, even while an apply is stuck. An update desired while a removal
  is unanswered waits for the removal's answer.
* Answers for nonces that are not the newest for their stack (duplicates, superseded, or never
  issued) are ignored, not errors; each produces an `Ignored` action so the loop can count it.
* Nonces are `<session id>/<counter>`: unique per session and never reused.
* Silence for `HeartbeatPolicy.timeout` (no message of any kind, Hello included) closes the
  stream with UNAVAILABLE; `deadline` says when the loop must next call `tick`.

Diagnostics (capability `diagnostics`) travel beside stack updates, without nonces:

* `request_diagnostics` before the Welcome waits for it; after it, the request is sent (with a
  `RecordDiagnosticsSent`) to an agent whose Hello advertised `diagnostics`, and answered at once
  with `DiagnosticsUnsupported` for one that did not. A request already sent on this session is
  not sent again.
* A DiagnosticsResult for a request this session sent and still awaits becomes a
  `RecordDiagnostics`; any other (unknown id, duplicate answer) is `Ignored`. A malformed one
  closes the stream with INVALID_ARGUMENT.

Parked versions survive reconnects only because the broker records nacks in its database and
passes them back in (`parked`) when the agent's next session starts.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType

from google.rpc import status_pb2

from brokkr_common.errors import BrokkrError, FailedPrecondition, InvalidArgument, Unavailable
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, agent_session_service_pb2, diagnostics_pb2
from brokkr_common.session.delta import compute_delta
from brokkr_common.session.reports import ResourceError, ResourceResult, StackHealth, parse_all
from brokkr_common.session.stacks import (
    UNKNOWN,
    DeploymentObjectRef,
    DesiredStack,
    HeldStack,
    parse_held_stacks,
)
from brokkr_common.session.times import duration, timestamp, to_datetime
from brokkr_common.session.updates import PlannedUpdate

_CAPABILITY = re.compile(r"[a-z0-9_]{1,63}")
#: The capability of agents that answer DiagnosticsRequest.
DIAGNOSTICS = "diagnostics"
#: The largest DiagnosticsResult accepted, in bytes of its encoding.
MAX_DIAGNOSTICS_RESULT_BYTES = 4 * 1024 * 1024
_MAX_CAPABILITIES = 64
_MAX_AGENT_VERSION = 128


@dataclass(frozen=True)
class HeartbeatPolicy:
    """How often the agent proves it is alive, and how long the broker waits for it."""

    interval: float = 30.0
    """Seconds between the agent's heartbeats; sent to the agent in the Welcome. Every heartbeat is
    read, answered and recorded, about half a millisecond of broker CPU: at 10,000 agents a 10 s
    interval took half a core, 30 s takes a sixth. A dead connection is caught sooner anyway, by
    HTTP/2 keepalive (40 s with the broker's defaults); heartbeats catch an agent that is connected
    but stuck, and carry whether its Kubernetes API answers."""

    timeout: float = 90.0
    """Seconds without any message after which the session is closed and the agent marked
    disconnected; also sent to the agent, which reconnects after as long a silence of the broker.
    Three intervals: one lost heartbeat is no outage."""


# -- actions -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send `message` to the agent."""

    message: agent_session_service_pb2.ConnectResponse


@dataclass(frozen=True)
class SendUpdate:
    """Send `update` with `nonce`; encode it with the shared `updates.UpdateEncoder`."""

    update: PlannedUpdate
    nonce: str


@dataclass(frozen=True)
class RecordConnected:
    """The agent said Hello: record it connected, with the version it reports for each held stack
    (None: it holds something of the stack but completed no apply)."""

    agent_version: str
    capabilities: tuple[str, ...]
    held: Mapping[str, DeploymentObjectRef | None]


@dataclass(frozen=True)
class RecordAck:
    """The agent applied a version (`deployment_object`) or removed the stack (None)."""

    stack_id: str
    deployment_object: DeploymentObjectRef | None
    results: tuple[ResourceResult, ...]


@dataclass(frozen=True)
class RecordNack:
    """Applying a version (`deployment_object`) or removing the stack (None) failed; it is parked."""

    stack_id: str
    deployment_object: DeploymentObjectRef | None
    status: status_pb2.Status
    errors: tuple[ResourceError, ...]


@dataclass(frozen=True)
class RecordHealth:
    """The agent reported the health of one stack."""

    report: StackHealth


@dataclass(frozen=True)
class RecordHeartbeat:
    """The agent is alive; `agent_time` is its clock, for skew diagnostics."""

    agent_time: datetime | None
    kubernetes_reachable: bool
    kubernetes_api_latency_ms: int
    sequence: int


@dataclass(frozen=True)
class RecordDiagnosticsSent:
    """The diagnostics request was handed to the agent's stream."""

    diagnostics_id: str


@dataclass(frozen=True)
class DiagnosticsUnsupported:
    """The agent did not advertise the `diagnostics` capability: the request fails."""

    diagnostics_id: str


@dataclass(frozen=True)
class RecordDiagnostics:
    """The agent answered a diagnostics request: with `report`, or with `error` (code not OK)."""

    diagnostics_id: str
    stack_id: str
    error: status_pb2.Status | None
    report: diagnostics_pb2.DiagnosticsReport | None


class IgnoredReason(enum.StrEnum):
    STALE_NONCE = "STALE_NONCE"
    """An answer for a nonce of this session that is no longer awaited (answered or superseded)."""
    UNKNOWN_NONCE = "UNKNOWN_NONCE"
    """An answer for a nonce this session never issued."""
    UNKNOWN_STACK = "UNKNOWN_STACK"
    """Health of a stack the agent neither holds nor should hold."""
    UNKNOWN_MESSAGE = "UNKNOWN_MESSAGE"
    """A message type from a newer agent."""
    UNKNOWN_DIAGNOSTICS = "UNKNOWN_DIAGNOSTICS"
    """A diagnostics result this session does not await (never sent, or already answered)."""


@dataclass(frozen=True)
class Ignored:
    """A message (or part of one) was ignored, as the protocol requires; count it."""

    reason: IgnoredReason
    stack_id: str = ""
    nonce: str = ""


@dataclass(frozen=True)
class Close:
    """End the stream with `error` (mapped to a google.rpc.Status at the edge); nothing follows."""

    error: BrokkrError


Action = (
    Send
    | SendUpdate
    | RecordConnected
    | RecordAck
    | RecordNack
    | RecordHealth
    | RecordHeartbeat
    | RecordDiagnosticsSent
    | DiagnosticsUnsupported
    | RecordDiagnostics
    | Ignored
    | Close
)


# -- state -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _InFlight:
    nonce: str
    target: DesiredStack | None  # None: a removal


@dataclass
class _Stack:
    """What the session knows of one stack: desired, held (None: nothing), awaited, parked."""

    desired: DesiredStack | None = None
    held: HeldStack | None = None
    in_flight: _InFlight | None = None
    parked_version: str | None = None
    removal_parked: bool = False


class _Nonces:
    """`<session id>/<counter>`, counting from 1, so a nonce can be told issued without a record."""

    def __init__(self, session_id: str) -> None:
        self._prefix = f"{session_id}/"
        self._last = 0

    def next(self) -> str:
        self._last += 1
        return f"{self._prefix}{self._last}"

    def issued(self, nonce: str) -> bool:
        counter = nonce.removeprefix(self._prefix)
        return (
            nonce.startswith(self._prefix)
            and 0 < len(counter) <= len(str(self._last))
            and counter.isascii()
            and counter.isdigit()
            and 0 < int(counter) <= self._last
        )


class BrokerSession:
    """The broker end of one agent's stream. See the module docstring for the rules.

    `desired` is every stack the agent should hold when the stream opens; later changes arrive
    through `set_desired`. `parked` maps stack ids to the deployment object id whose last
    delivery to this agent failed (as recorded in the database): those are not sent again.
    `session_id` should be a UUID: nonces are `<session id>/<counter>` and must stay short.
    """

    def __init__(
        self,
        *,
        agent_id: str,
        agent_name: str,
        session_id: str,
        replica_name: str,
        desired: Mapping[str, DesiredStack],
        now: float,
        parked: Mapping[str, str] = MappingProxyType({}),
        heartbeats: HeartbeatPolicy = HeartbeatPolicy(),
    ) -> None:
        self._agent_id = agent_id
        self._agent_name = agent_name
        self._session_id = session_id
        self._replica_name = replica_name
        self._heartbeats = heartbeats
        self._nonces = _Nonces(session_id)
        self._stacks = {stack_id: _Stack(desired=stack) for stack_id, stack in desired.items()}
        for stack_id, deployment_object_id in parked.items():
            self._stacks.setdefault(stack_id, _Stack()).parked_version = deployment_object_id
        self._welcomed = False
        self._closed = False
        self._heard_at = now
        self._diagnoses = False  # the agent advertised `diagnostics`
        #: Diagnostics requests waiting for the Welcome, by id, in arrival order.
        self._diagnostics_waiting: dict[str, agent_session_pb2.DiagnosticsRequest] = {}
        #: Diagnostics requests sent and not answered yet.
        self._diagnostics_sent: set[str] = set()

    @property
    def deadline(self) -> float:
        """When the session times out unless the agent speaks: call `tick` then."""
        return self._heard_at + self._heartbeats.timeout

    @property
    def closed(self) -> bool:
        return self._closed

    # -- inputs --------------------------------------------------------------------------------

    def receive(self, message: agent_session_service_pb2.ConnectRequest, now: float) -> list[Action]:
        """Handle one message from the agent."""
        if self._closed:
            return []
        self._heard_at = now
        try:
            return self._dispatch(message, now)
        except BrokkrError as error:
            return self._close(error)

    def set_desired(self, stack_id: str, desired: DesiredStack | None) -> list[Action]:
        """The agent should now hold `desired` of the stack, or nothing: None when the stack is no
        longer targeted at the agent, or was deleted (its newest deployment object is a deletion
        marker). Repeating the current state is harmless, so a periodic sweep may call this."""
        if self._closed:
            return []
        stack = self._stacks.setdefault(stack_id, _Stack())
        if desired is None and stack.in_flight is not None and stack.in_flight.target is not None:
            # The removal supersedes the update; the agent may have applied part of it.
            stack.in_flight = None
            stack.held = UNKNOWN
        if desired is not None:
            stack.removal_parked = False
        stack.desired = desired
        return self._reconcile(stack_id)

    def retry(self, stack_id: str) -> list[Action]:
        """Un-park the stack: send its desired state (or removal) again if the agent lacks it."""
        stack = self._stacks.get(stack_id)
        if self._closed or stack is None:
            return []
        stack.parked_version = None
        stack.removal_parked = False
        return self._reconcile(stack_id)

    def request_diagnostics(
        self, diagnostics_id: str, stack_id: str, options: diagnostics_pb2.DiagnosticsOptions
    ) -> list[Action]:
        """Ask the agent for diagnostics of a stack (see the module docstring)."""
        if self._closed or diagnostics_id in self._diagnostics_sent:
            return []
        request = agent_session_pb2.DiagnosticsRequest(
            diagnostics_id=diagnostics_id, stack_id=stack_id, options=options
        )
        if not self._welcomed:
            self._diagnostics_waiting[diagnostics_id] = request
            return []
        return self._send_diagnostics(request)

    def tick(self, now: float) -> list[Action]:
        """Let time pass: close the session if the agent has been silent past the deadline."""
        if self._closed or now < self.deadline:
            return []
        timeout = self._heartbeats.timeout
        if not self._welcomed:
            return self._close(Unavailable(f"no Hello within {timeout:g} s", reason="HELLO_TIMEOUT"))
        return self._close(
            Unavailable(f"nothing heard from the agent for {timeout:g} s", reason="HEARTBEAT_TIMEOUT")
        )

    # -- messages ------------------------------------------------------------------------------

    def _dispatch(self, message: agent_session_service_pb2.ConnectRequest, now: float) -> list[Action]:
        kind = message.WhichOneof("message")
        if not self._welcomed:
            if kind != "hello":
                raise FailedPrecondition("the first message must be a Hello", reason="HELLO_REQUIRED")
            return self._on_hello(message.hello, now)
        match kind:
            case "hello":
                raise FailedPrecondition("Hello may be sent only once per stream", reason="DUPLICATE_HELLO")
            case "ack":
                return self._on_ack(message.ack)
            case "nack":
                return self._on_nack(message.nack)
            case "health_report":
                return self._on_health_report(message.health_report)
            case "heartbeat":
                return self._on_heartbeat(message.heartbeat, now)
            case "diagnostics_result":
                return self._on_diagnostics_result(message.diagnostics_result)
            case _:
                return [Ignored(IgnoredReason.UNKNOWN_MESSAGE)]

    def _on_hello(self, hello: agent_session_pb2.Hello, now: float) -> list[Action]:
        agent_version = _validate_agent_version(hello.agent_version)
        capabilities = _validate_capabilities(hello.capabilities)
        held = parse_held_stacks(hello.stacks, "hello.stacks")
        self._welcomed = True
        self._diagnoses = DIAGNOSTICS in capabilities
        for stack_id, stack in held.items():
            self._stacks.setdefault(stack_id, _Stack()).held = stack
        actions: list[Action] = [
            RecordConnected(
                agent_version,
                capabilities,
                MappingProxyType({stack_id: stack.deployment_object for stack_id, stack in held.items()}),
            ),
            Send(agent_session_service_pb2.ConnectResponse(welcome=self._welcome(now))),
        ]
        for stack_id in sorted(self._stacks):
            actions += self._reconcile(stack_id)
        waiting, self._diagnostics_waiting = self._diagnostics_waiting, {}
        for request in waiting.values():
            actions += self._send_diagnostics(request)
        return actions

    def _on_ack(self, ack: agent_session_pb2.Ack) -> list[Action]:
        awaited = self._awaiting(ack.stack_id, ack.nonce)
        if isinstance(awaited, Ignored):
            return [awaited]
        results = parse_all(ResourceResult.from_proto, ack.results, "ack.results")
        target = awaited.target
        sent = target.deployment_object if target else None
        if ack.HasField("deployment_object") and sent != DeploymentObjectRef.from_proto(
            ack.deployment_object, "ack.deployment_object"
        ):
            raise InvalidArgument.for_field(
                "ack.deployment_object", "differs from the deployment object sent with this nonce"
            )
        stack = self._stacks[ack.stack_id]
        stack.in_flight = None
        stack.parked_version = None
        stack.removal_parked = False
        stack.held = HeldStack(target.deployment_object, target.hashes) if target else None
        return [RecordAck(ack.stack_id, sent, results), *self._reconcile(ack.stack_id)]

    def _on_nack(self, nack: agent_session_pb2.Nack) -> list[Action]:
        awaited = self._awaiting(nack.stack_id, nack.nonce)
        if isinstance(awaited, Ignored):
            return [awaited]
        errors = parse_all(ResourceError.from_proto, nack.errors, "nack.errors")
        if nack.status.code == 0:
            raise InvalidArgument.for_field("nack.status.code", "must not be OK (0) in a Nack")
        target = awaited.target
        stack = self._stacks[nack.stack_id]
        stack.in_flight = None
        stack.held = UNKNOWN
        if target is None:
            # Parked only while nothing is wanted: a version committed since makes the removal moot.
            stack.removal_parked = stack.desired is None
        else:
            stack.parked_version = target.deployment_object.id
        sent = target.deployment_object if target else None
        return [RecordNack(nack.stack_id, sent, nack.status, errors), *self._reconcile(nack.stack_id)]

    def _on_health_report(self, report: agent_session_pb2.HealthReport) -> list[Action]:
        stacks = parse_all(StackHealth.from_proto, report.stacks, "health_report.stacks")
        return [
            RecordHealth(stack)
            if stack.stack_id in self._stacks
            else Ignored(IgnoredReason.UNKNOWN_STACK, stack.stack_id)
            for stack in stacks
        ]

    def _on_heartbeat(self, heartbeat: agent_session_pb2.Heartbeat, now: float) -> list[Action]:
        agent_time = (
            to_datetime(heartbeat.agent_time, "heartbeat.agent_time")
            if heartbeat.HasField("agent_time")
            else None
        )
        answer = agent_session_pb2.HeartbeatAck(server_time=timestamp(now), sequence=heartbeat.sequence)
        return [
            RecordHeartbeat(
                agent_time,
                heartbeat.kubernetes_reachable,
                heartbeat.kubernetes_api_latency_ms,
                heartbeat.sequence,
            ),
            Send(agent_session_service_pb2.ConnectResponse(heartbeat_ack=answer)),
        ]

    def _on_diagnostics_result(self, result: agent_session_pb2.DiagnosticsResult) -> list[Action]:
        if result.diagnostics_id not in self._diagnostics_sent:
            return [Ignored(IgnoredReason.UNKNOWN_DIAGNOSTICS, result.stack_id)]
        if result.ByteSize() > MAX_DIAGNOSTICS_RESULT_BYTES:
            raise InvalidArgument.for_field(
                "diagnostics_result", f"must be at most {MAX_DIAGNOSTICS_RESULT_BYTES} bytes"
            )
        has_error, has_report = result.HasField("error"), result.HasField("report")
        if has_error == has_report:
            raise InvalidArgument.for_field("diagnostics_result", "must set exactly one of error and report")
        if has_error and result.error.code == 0:
            raise InvalidArgument.for_field("diagnostics_result.error.code", "must not be OK (0)")
        self._diagnostics_sent.discard(result.diagnostics_id)
        return [
            RecordDiagnostics(
                result.diagnostics_id,
                result.stack_id,
                result.error if has_error else None,
                result.report if has_report else None,
            )
        ]

    # -- decisions -----------------------------------------------------------------------------

    def _send_diagnostics(self, request: agent_session_pb2.DiagnosticsRequest) -> list[Action]:
        if not self._diagnoses:
            return [DiagnosticsUnsupported(request.diagnostics_id)]
        self._diagnostics_sent.add(request.diagnostics_id)
        return [
            Send(agent_session_service_pb2.ConnectResponse(diagnostics_request=request)),
            RecordDiagnosticsSent(request.diagnostics_id),
        ]

    def _awaiting(self, stack_id: str, nonce: str) -> _InFlight | Ignored:
        """What the stack awaits, if `nonce` answers it, else why the answer is ignored."""
        stack = self._stacks.get(stack_id)
        if stack is not None and stack.in_flight is not None and stack.in_flight.nonce == nonce:
            return stack.in_flight
        reason = IgnoredReason.STALE_NONCE if self._nonces.issued(nonce) else IgnoredReason.UNKNOWN_NONCE
        return Ignored(reason, stack_id, nonce)

    def _reconcile(self, stack_id: str) -> list[Action]:
        """Send what brings the agent's holding of the stack to the desired state, if allowed now."""
        stack = self._stacks[stack_id]
        desired, held = stack.desired, stack.held
        if desired is None and held is None and stack.in_flight is None:
            del self._stacks[stack_id]
            return []
        if not self._welcomed or stack.in_flight is not None:
            return []
        if desired is None:
            return [] if stack.removal_parked else self._send_removal(stack_id, stack)
        if held is not None and held.holds(desired):
            return []
        if stack.parked_version == desired.deployment_object.id:
            return []
        return self._send_update(stack, desired)

    def _send_update(self, stack: _Stack, desired: DesiredStack) -> list[Action]:
        held = stack.held
        full_state = held is None or held.is_unknown  # an unknown holding has no resources listed
        delta = compute_delta(held.resources if held else {}, desired.hashes)
        nonce = self._nonces.next()
        stack.in_flight = _InFlight(nonce, desired)
        return [SendUpdate(PlannedUpdate(desired, delta, full_state), nonce)]

    def _send_removal(self, stack_id: str, stack: _Stack) -> list[Action]:
        nonce = self._nonces.next()
        stack.in_flight = _InFlight(nonce, None)
        removal = agent_session_pb2.StackRemoval(stack_id=stack_id)
        return [Send(agent_session_service_pb2.ConnectResponse(stack_removal=removal, nonce=nonce))]

    def _welcome(self, now: float) -> agent_session_pb2.Welcome:
        return agent_session_pb2.Welcome(
            agent_id=self._agent_id,
            agent_name=self._agent_name,
            heartbeat_interval=duration(self._heartbeats.interval),
            heartbeat_timeout=duration(self._heartbeats.timeout),
            server_time=timestamp(now),
            session_id=self._session_id,
            replica_name=self._replica_name,
        )

    def _close(self, error: BrokkrError) -> list[Action]:
        self._closed = True
        return [Close(error)]


def _validate_agent_version(value: str) -> str:
    if len(value) > _MAX_AGENT_VERSION or not value.isprintable():
        raise InvalidArgument.for_field("hello.agent_version", "must be at most 128 printable characters")
    return value


def _validate_capabilities(values: Sequence[str]) -> tuple[str, ...]:
    if len(values) > _MAX_CAPABILITIES:
        raise InvalidArgument.for_field("hello.capabilities", "must list at most 64 capabilities")
    for index, value in enumerate(values):
        if not _CAPABILITY.fullmatch(value):
            raise InvalidArgument.for_field(
                f"hello.capabilities[{index}]", "must be lower_snake_case of at most 63 characters"
            )
    return tuple(values)
