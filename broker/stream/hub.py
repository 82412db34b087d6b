"""The live sessions of this replica, and how committed changes reach them.

The database is the only shared state (DESIGN.md): a change committed anywhere arrives here as a
`Change` (from this replica's unit of work on SQLite, through LISTEN/NOTIFY on PostgreSQL), the hub
re-reads what the affected agents should hold, and hands it to their `BrokerSession`s, which decide
what to send. A periodic sweep re-reads everything for every local session, so a missed
notification costs at most one sweep interval.

The common change, a new version of a stack that already had one, reaches the same agents as the
version before: the hub then reads the stack alone and tells the sessions that hold it, instead of
asking the database which agents the stack reaches. Versions are read once per replica
(`DesiredStacks`), not once per agent.

Opening a session only reads the database (opens take turns, see `SessionHub.open`); that the
session opened, its Hello and its end are written behind by the `Recorder`, with the agents'
reports, and what waits there lets a fan-out being delivered go first (`SessionHub.delivering`).

Diagnostics requests reach sessions the same way (`DiagnosticsRequested`): the hub reads the
agent's open requests and hands them to its session, also when a session opens and on every sweep;
the session sends each at most once per stream. What sessions report back about them (sent,
answered, refused) is written at once, not batched: requests are rare and an admin waits for them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Coroutine, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from google.protobuf import json_format
from google.rpc import error_details_pb2
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from broker.domain import deployments
from broker.domain.changes import (
    AgentChanged,
    Change,
    DiagnosticsRequested,
    KeyRevoked,
    StackChanged,
    TargetingChanged,
)
from broker.domain.diagnostics import Diagnostics, DiagnosticsError
from broker.domain.model import Agent, Role, Stack
from broker.domain.ports import UnitOfWorkFactory
from broker.services import diagnostics, sessions
from broker.services.admission import Admission
from broker.stream.desired import DesiredStacks
from broker.stream.recording import Recorder, wait_while
from brokkr_common.errors import BrokkrError, FailedPrecondition, ResourceExhausted, Unauthenticated
from brokkr_common.pb.brokkr.v1 import diagnostics_pb2
from brokkr_common.rpc_status import grpc_code
from brokkr_common.session import broker_session as machine
from brokkr_common.session.stacks import DesiredStack
from brokkr_common.session.updates import UpdateEncoder

log = structlog.get_logger("brokkr.stream")

#: Put in an outbox to end the stream normally.
END = object()
#: How long an agent cut off for not reading has to take its error before its stream is cancelled.
CUT_OFF_GRACE_SECONDS = 5.0


class SessionMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.connected = Gauge(
            "brokkr_agents_connected", "Agent sessions open on this replica.", registry=registry
        )
        self.updates = Counter(
            "brokkr_stack_updates_sent",
            "Stack updates and removals sent to agents.",
            ["kind"],
            registry=registry,
        )
        self.bytes = Counter(
            "brokkr_session_bytes_sent", "Bytes of session messages sent to agents.", registry=registry
        )
        self.answers = Counter(
            "brokkr_stack_answers", "Acks and nacks received from agents.", ["kind"], registry=registry
        )
        self.ignored = Counter(
            "brokkr_session_messages_ignored",
            "Agent messages ignored by the protocol.",
            ["reason"],
            registry=registry,
        )
        self.commit_to_ack = Histogram(
            "brokkr_commit_to_ack_seconds",
            "From a deployment object's commit to an agent's ack of it.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=registry,
        )
        # Bound once: `labels()` on every message of a push to thousands of agents shows in profiles.
        self.updates_sent = self.updates.labels("update")
        self.removals_sent = self.updates.labels("removal")
        self.acks = self.answers.labels("ack")
        self.nacks = self.answers.labels("nack")
        self.ignored_by_reason = {
            reason: self.ignored.labels(reason.value) for reason in machine.IgnoredReason
        }


class Backlog:
    """How many messages wait in a hub's outboxes to be handed to gRPC."""

    __slots__ = ("queued",)

    def __init__(self) -> None:
        self.queued = 0


class Outbox(asyncio.Queue[object]):
    """A session's queue of messages to send, counted in its hub's `Backlog` while queued."""

    def __init__(self, maxsize: int, backlog: Backlog) -> None:
        super().__init__(maxsize)
        self._backlog = backlog

    # asyncio.Queue's hooks for subclasses (as in PriorityQueue): every put and get passes here.
    def _put(self, item: object) -> None:
        super()._put(item)  # type: ignore[misc]
        self._backlog.queued += 1

    def _get(self) -> object:
        self._backlog.queued -= 1
        return super()._get()  # type: ignore[misc]

    def drain(self) -> None:
        """Drop what is queued (the stream is over)."""
        while not self.empty():
            self.get_nowait()


@dataclass
class Opened:
    agent: Agent
    desired: dict[str, DesiredStack]
    parked: dict[str, str]
    #: How the session is to be recorded once it is live.
    record: deployments.SessionOpened
    #: The hub's fan-out count when the database was read (see `SessionHub.register`).
    fan_outs: int = 0
    #: Diagnostics requests waiting for the agent when the session opened.
    diagnostics: list[Diagnostics] = field(default_factory=list)


@dataclass
class LiveSession:
    """One agent's open stream on this replica: its protocol state and its outbox."""

    agent_id: str
    session_id: str
    session: machine.BrokerSession
    outbox: Outbox
    encoder: UpdateEncoder
    recorder: Recorder
    metrics: SessionMetrics | None = None
    hub: SessionHub | None = None
    created_at: Mapping[str, datetime] = field(default_factory=dict)
    #: How the session was recorded (submitted again by the sweep if the record was lost).
    record: deployments.SessionOpened | None = None
    #: Stacks this session may hold or has been told about; changes to others cannot concern it.
    stacks: set[str] = field(default_factory=set)
    #: Stacks the agent should hold now (a version, not a removal).
    wanted: set[str] = field(default_factory=set)
    ended: bool = False
    #: The task serving the stream (set by the Connect handler), cancelled when an agent that does
    #: not read is cut off and the handler cannot even take the error from the outbox.
    task: asyncio.Task[Any] | None = None

    async def carry_out(self, actions: Iterable[machine.Action]) -> None:
        # Messages are queued before anything is awaited: while this waits for the database, the
        # hub may hand the session more work (a diagnostics request), whose messages must not
        # overtake the ones decided here (the Welcome first of all).
        actions = list(actions)
        for action in actions:
            if not isinstance(action, _DIAGNOSTICS_ACTIONS):
                self._carry_out(action)
        for action in actions:
            if isinstance(action, _DIAGNOSTICS_ACTIONS) and self.hub is not None:
                await self.hub.record_diagnostics(self, action)

    def set_desired(self, stack_id: str, desired: DesiredStack | None) -> None:
        if desired is not None:
            self.stacks.add(stack_id)
            self.wanted.add(stack_id)
        elif stack_id not in self.stacks:
            return
        else:
            self.wanted.discard(stack_id)
        for action in self.session.set_desired(stack_id, desired):
            self._carry_out(action)

    def end(self, error: BrokkrError | None) -> None:
        """End the stream: normally after what is queued has been sent, or at once with `error`
        as its status (queued messages are then dropped)."""
        if self.ended:
            return
        self.ended = True
        if error is not None or self.outbox.full():
            self.outbox.drain()
        self.outbox.put_nowait(error if error is not None else END)

    def _carry_out(self, action: machine.Action) -> None:
        now = datetime.now(UTC)
        metrics = self.metrics
        match action:
            case machine.Send(message=message):
                self._put(message.SerializeToString())
                if metrics and message.HasField("stack_removal"):
                    metrics.removals_sent.inc()
            case machine.SendUpdate(update=update, nonce=nonce):
                data = self.encoder.encode(update, nonce)
                self._put(data)
                if metrics:
                    metrics.updates_sent.inc()
            case machine.RecordConnected(agent_version=agent_version, held=held):
                self.stacks.update(held)
                self.recorder.submit(
                    deployments.Hello(
                        self.agent_id,
                        self.session_id,
                        agent_version,
                        {stack_id: ref.id if ref else None for stack_id, ref in held.items()},
                        now,
                    )
                )
            case machine.RecordAck(stack_id=stack_id, deployment_object=applied, results=results):
                self.recorder.submit(
                    deployments.ApplyReport(
                        agent_id=self.agent_id,
                        stack_id=stack_id,
                        deployment_object_id=applied.id if applied else None,
                        succeeded=True,
                        at=now,
                        resources=tuple(
                            deployments.ResourceOutcome(_key(r.key), r.outcome.value, r.message)
                            for r in results
                        ),
                    )
                )
                if metrics:
                    metrics.acks.inc()
                    committed = self.created_at.get(applied.id) if applied else None
                    if committed is not None:
                        metrics.commit_to_ack.observe((now - committed).total_seconds())
            case machine.RecordNack(
                stack_id=stack_id, deployment_object=target, status=status, errors=errors
            ):
                self.recorder.submit(
                    deployments.ApplyReport(
                        agent_id=self.agent_id,
                        stack_id=stack_id,
                        deployment_object_id=target.id if target else None,
                        succeeded=False,
                        at=now,
                        error_code=_code_name(status.code),
                        error_message=status.message,
                        resources=tuple(
                            deployments.ResourceOutcome(_key(e.key), "FAILED", f"{e.reason}: {e.message}")
                            for e in errors
                        ),
                    )
                )
                if metrics:
                    metrics.nacks.inc()
            case machine.RecordHealth(report=report):
                self.recorder.submit(
                    deployments.HealthReport(
                        agent_id=self.agent_id,
                        stack_id=report.stack_id,
                        deployment_object_id=report.deployment_object.id
                        if report.deployment_object
                        else None,
                        health=deployments.HealthState(report.health.value),
                        at=now,
                        resources=tuple(
                            deployments.ResourceHealthReport(
                                _key(r.key), deployments.HealthState(r.health.value), r.reason, r.message
                            )
                            for r in report.resources
                        ),
                    )
                )
            case machine.RecordHeartbeat(kubernetes_reachable=reachable, kubernetes_api_latency_ms=latency):
                self.recorder.submit(deployments.Heartbeat(self.agent_id, now, reachable, latency))
            case machine.Ignored(reason=reason):
                if metrics:
                    metrics.ignored_by_reason[reason].inc()
            case machine.Close(error=error):
                self.end(error)

    def _put(self, data: bytes) -> None:
        if self.ended:
            return
        try:
            self.outbox.put_nowait(data)
        except asyncio.QueueFull:
            self.end(ResourceExhausted("the agent is not reading its stream", reason="AGENT_NOT_READING"))
            # A slow reader takes the error within the grace period and gets it as its status. A
            # stream whose sends HTTP/2 flow control has stalled keeps the handler in `yield`
            # forever: it is cancelled, which ends the call and releases the session.
            asyncio.get_running_loop().call_later(CUT_OFF_GRACE_SECONDS, self._cancel_if_still_open)
            return
        if self.metrics:
            self.metrics.bytes.inc(len(data))

    def _cancel_if_still_open(self) -> None:
        if self.task is not None and not self.task.done():
            log.warning("cutting off an agent that does not read its stream", agent=self.agent_id)
            self.task.cancel()


class SessionHub:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        recorder: Recorder,
        *,
        replica_name: str,
        registry: CollectorRegistry,
        heartbeat_timeout: float,
        max_opening: int = 8,
        max_waiting: int = 4096,
        diagnostics_policy: diagnostics.DiagnosticsPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._diagnostics_policy = diagnostics_policy or diagnostics.DiagnosticsPolicy()
        self._recorder = recorder
        self._replica = replica_name
        self._desired = DesiredStacks()
        self._sessions: dict[str, LiveSession] = {}
        self._heartbeat_timeout = heartbeat_timeout
        self._changes: asyncio.Queue[tuple[Change, ...] | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        #: The ids of the live sessions, kept up to date for the sweep (`mark_stale_sessions`).
        self._live_ids: set[str] = set()
        #: Counts fan-outs, so a session opened meanwhile knows it may have missed one.
        self._fan_outs = 0
        #: At most `max_opening` sessions read the database at once, at most `max_waiting` wait
        #: for their turn, the others are told at once to come back later.
        self._opening = Admission(
            max_opening,
            max_waiting,
            refusal="too many agents are connecting to this broker; retry shortly",
            reason="TOO_MANY_SESSIONS_OPENING",
        )
        self._backlog = Backlog()
        self.metrics = SessionMetrics(registry)

    @property
    def sessions(self) -> Mapping[str, LiveSession]:
        return self._sessions

    def outbox(self, capacity: int) -> Outbox:
        """A new session's outbox, holding at most `capacity` messages."""
        return Outbox(capacity, self._backlog)

    def delivering(self) -> bool:
        """Whether messages wait to be handed to gRPC: a fan-out is being delivered, and what
        can wait (report batches, the sweep) should let it finish first."""
        return self._backlog.queued > 0

    async def open(self, agent_id: str, *, session_id: str, peer: str) -> Opened:
        """Read what the session starts from (it is recorded once `register`ed).

        Opens take turns (`broker.services.admission`): after a broker restart thousands of
        agents connect at once, and beyond a bounded queue an agent is refused at once with
        RESOURCE_EXHAUSTED and a retry delay.
        """
        return await self._opening.run(lambda: self._open(agent_id, session_id=session_id, peer=peer))

    async def _open(self, agent_id: str, *, session_id: str, peer: str) -> Opened:
        record = deployments.SessionOpened(agent_id, session_id, self._replica, peer, datetime.now(UTC))
        fan_outs = self._fan_outs
        start = await sessions.start_session(self._uow(), agent_id)
        desired = await self._resolve(start.desired)
        return Opened(start.agent, desired, dict(start.parked), record, fan_outs, start.diagnostics)

    def register(self, live: LiveSession, opened: Opened) -> None:
        """Make the session live and have it recorded. If changes were fanned out while it was
        being opened, it may have missed them: it then re-reads what it should hold."""
        live.hub = self
        live.record = opened.record
        live.metrics = self.metrics
        live.created_at = self._desired.created_at
        previous = self._sessions.get(live.agent_id)
        if previous is not None:
            previous.end(
                FailedPrecondition(
                    "a newer session of this agent replaced this one", reason="SESSION_REPLACED"
                )
            )
        self._sessions[live.agent_id] = live
        self._live_ids.add(live.session_id)
        self._recorder.submit(opened.record)
        self.metrics.connected.set(len(self._sessions))
        missed = opened.fan_outs != self._fan_outs
        if missed:
            self._spawn(self.resync(live.agent_id), "resync-after-open")
        # Requests stored while the agent was away, read when the session opened (read again if a
        # request may have arrived since); the session holds them until the Hello.
        if missed or opened.diagnostics:
            known = None if missed else opened.diagnostics
            self._spawn(self._send_diagnostics_guarded(live.agent_id, known), "diagnostics-after-open")

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run `work` in the background; `stop()` waits for it."""
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def send_diagnostics(self, agent_id: str | None) -> None:
        """Hand the agent's open diagnostics requests to its session, if it is here; with None,
        every local session's (one query, for the sweep)."""
        if agent_id is not None and agent_id not in self._sessions:
            return
        await self._hand_diagnostics(await diagnostics.open_requests(self._uow(), agent_id))

    async def _hand_diagnostics(self, requests: Iterable[Diagnostics]) -> None:
        for request in requests:
            live = self._sessions.get(request.agent_id)
            if live is None:
                continue
            options = diagnostics_pb2.DiagnosticsOptions(
                log_tail_lines=request.options.log_tail_lines,
                max_log_bytes=request.options.max_log_bytes,
                include_previous_logs=request.options.include_previous_logs,
            )
            await live.carry_out(live.session.request_diagnostics(request.id, request.stack_id, options))

    async def _send_diagnostics_guarded(self, agent_id: str, known: list[Diagnostics] | None) -> None:
        """`known` requests, or (None) those the database holds for the agent now."""
        try:
            if known is None:
                await self.send_diagnostics(agent_id)
            else:
                await self._hand_diagnostics(known)
        except BrokkrError as error:  # the sweep tries again
            log.warning("sending diagnostics requests failed", agent=agent_id, error=error.message)

    async def record_diagnostics(self, live: LiveSession, action: machine.Action) -> None:
        """Write what the session says about a diagnostics request; failures are logged (an
        unwritten SENT is harmless, an unwritten answer leaves the request to expire)."""
        uow, policy = self._uow(), self._diagnostics_policy
        try:
            match action:
                case machine.RecordDiagnosticsSent(diagnostics_id=diagnostics_id):
                    await diagnostics.mark_sent(uow, diagnostics_id)
                case machine.DiagnosticsUnsupported(diagnostics_id=diagnostics_id):
                    await diagnostics.fail_unsupported(uow, live.agent_id, diagnostics_id, policy)
                case machine.RecordDiagnostics(diagnostics_id=diagnostics_id, error=error, report=report):
                    stored = await diagnostics.record_result(
                        uow,
                        live.agent_id,
                        diagnostics_id,
                        report=json_format.MessageToDict(report, preserving_proto_field_name=True)
                        if report is not None
                        else None,
                        error=_diagnostics_error(error) if error is not None else None,
                        policy=policy,
                    )
                    if not stored:  # expired meanwhile, or not this agent's
                        self.metrics.ignored_by_reason[machine.IgnoredReason.UNKNOWN_DIAGNOSTICS].inc()
        except BrokkrError as error:
            log.warning("recording diagnostics failed", agent=live.agent_id, error=error.message)

    def release(self, live: LiveSession) -> None:
        """The stream ended: forget the session and have its end recorded (write-behind: the
        stream's handler may be being closed by gRPC and must not wait for the database)."""
        live.ended = True  # nothing more is queued for it (a resync may still hold it)
        live.outbox.drain()
        if self._sessions.get(live.agent_id) is live:
            del self._sessions[live.agent_id]
        self._live_ids.discard(live.session_id)
        self.metrics.connected.set(len(self._sessions))
        self._recorder.submit(deployments.SessionClosed(live.agent_id, live.session_id))

    async def publish(self, changes: tuple[Change, ...]) -> None:
        """Hand over committed changes (after commit on SQLite, on NOTIFY on PostgreSQL) without
        making the committing request wait for the fan-out; `run_changes` handles them in order."""
        self._changes.put_nowait(changes)

    async def run_changes(self) -> None:
        """Fan changes out in commit order until `stop()`."""
        while (changes := await self._changes.get()) is not None:
            try:
                await self.on_changes(changes)
            except Exception:
                log.exception("fanning out changes failed; the next sweep catches up", changes=len(changes))

    async def on_changes(self, changes: tuple[Change, ...]) -> None:
        """React to committed changes: re-read what the affected local sessions should hold."""
        relevant = [c for c in dict.fromkeys(changes) if isinstance(c, _SESSION_CHANGES)]
        if not relevant:  # e.g. only events appended, which concern event watchers
            return
        self._fan_outs += 1
        agents: set[str] = set()
        diagnosed: set[str] = set()
        for change in relevant:
            match change:
                case DiagnosticsRequested(agent_id=agent_id):
                    diagnosed.add(agent_id)
                case StackChanged(stack_id=stack_id, new_version_only=True):
                    await self._new_version(stack_id)
                case StackChanged(stack_id=stack_id):
                    await self._stack_changed(stack_id)
                case AgentChanged(agent_id=agent_id) | TargetingChanged(agent_id=agent_id):
                    agents.add(agent_id)
                case KeyRevoked(role=Role.AGENT, principal_id=agent_id) if agent_id in self._sessions:
                    self._sessions[agent_id].end(
                        Unauthenticated("the agent's key was revoked", reason="KEY_REVOKED")
                    )
        for agent_id in agents:
            await self.resync(agent_id)
        for agent_id in diagnosed:
            await self.send_diagnostics(agent_id)

    async def resync(self, agent_id: str) -> None:
        """Re-read everything the agent should hold and hand it to its session, if it is here."""
        live = self._sessions.get(agent_id)
        if live is None:
            return
        await self._hand_over(live, await sessions.desired_for_agent(self._uow(), agent_id))

    async def _hand_over(self, live: LiveSession, found: list[Stack] | None) -> None:
        """Give the session what its agent should hold now (None: the agent was deleted)."""
        if found is None:
            live.end(FailedPrecondition("the agent was deleted", reason="AGENT_DELETED"))
            return
        desired = await self._resolve(found)
        for stack_id in set(live.stacks) | set(desired):
            live.set_desired(stack_id, desired.get(stack_id))

    async def sweep(self) -> None:
        """The safety net: resync every local session and mark dead sessions disconnected.

        What the sessions' agents should hold is read in bulk, `_SWEEP_BATCH` agents a query round."""
        agent_ids = list(self._sessions)
        for start in range(0, len(agent_ids), _SWEEP_BATCH):
            batch = agent_ids[start : start + _SWEEP_BATCH]
            try:
                found = await sessions.desired_for_agents(self._uow(), batch)
            except BrokkrError as error:
                log.warning("sweep failed for agents", agents=len(batch), error=error.message)
                continue
            for agent_id in batch:
                if (live := self._sessions.get(agent_id)) is not None:
                    await self._hand_over(live, found[agent_id])
        try:
            if self._sessions:
                await self.send_diagnostics(None)
            await diagnostics.expire_and_purge(self._uow(), self._diagnostics_policy)
        except BrokkrError as error:
            log.warning("expiring diagnostics failed", error=error.message)
        async with self._recorder.writing:
            recorded = await sessions.mark_stale_sessions(
                self._uow(), self._replica, self._live_ids, heartbeat_timeout=self._heartbeat_timeout
            )
        # A live session not recorded here: its record was lost (a batch failed) or is still
        # queued. Submitting it again is harmless either way (see `record_reports`).
        for live in list(self._sessions.values()):
            if live.session_id not in recorded and live.record is not None:
                self._recorder.submit(live.record)

    async def run_sweeps(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)
            if stop.is_set():
                return
            # Like report batches, the safety net lets a fan-out being delivered go first.
            await wait_while(self.delivering, interval, _SWEEP_DEFER_STEP_SECONDS)
            started = time.perf_counter()
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
            else:
                log.debug(
                    "sweep done",
                    sessions=len(self._sessions),
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )

    def close_all(self, error: BrokkrError) -> None:
        for live in list(self._sessions.values()):
            live.end(error)

    async def stop(self) -> None:
        """After the streams have ended: let `run_changes` finish, and the disconnects be recorded."""
        self._changes.put_nowait(None)
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _stack_changed(self, stack_id: str) -> None:
        reach = await sessions.stack_reach(self._uow(), stack_id)
        desired = (await self._resolve([reach.stack])).get(stack_id) if reach.stack else None
        for agent_id, live in list(self._sessions.items()):
            live.set_desired(stack_id, desired if agent_id in reach.agent_ids else None)

    async def _new_version(self, stack_id: str) -> None:
        """A stack that had a version has a newer one: the sessions wanting it get that one."""
        stack = await sessions.stack(self._uow(), stack_id)
        if stack is None:
            return
        desired = (await self._resolve([stack])).get(stack_id)
        for live in list(self._sessions.values()):
            if stack_id in live.wanted:
                live.set_desired(stack_id, desired)

    async def _resolve(self, stacks: Iterable[Stack]) -> dict[str, DesiredStack]:
        """What an agent should hold of each stack (those with nothing to hold left out), loading
        only the versions this replica has not seen yet."""
        stacks = list(stacks)
        if missing := self._desired.missing(stacks):
            loaded = await sessions.deployment_objects(self._uow(), missing)
            for stack in stacks:
                if stack.desired is not None and stack.desired.id in loaded:
                    self._desired.add(stack, loaded[stack.desired.id])
        desired = {}
        for stack in stacks:
            try:
                stack_desired = self._desired.get(stack)
            except KeyError:  # its version vanished meanwhile; the next change or sweep tells
                continue
            if stack_desired is not None:
                desired[stack.id] = stack_desired
        return desired


#: Agents whose desired state one sweep query round reads.
_SWEEP_BATCH = 500
#: How often a sweep waiting for a fan-out to be delivered looks again.
_SWEEP_DEFER_STEP_SECONDS = 0.05

#: The changes agent sessions react to.
_SESSION_CHANGES = (StackChanged, AgentChanged, TargetingChanged, KeyRevoked, DiagnosticsRequested)
#: Session actions about diagnostics requests, written by the hub.
_DIAGNOSTICS_ACTIONS = (
    machine.RecordDiagnosticsSent,
    machine.DiagnosticsUnsupported,
    machine.RecordDiagnostics,
)


def _diagnostics_error(status: object) -> DiagnosticsError:
    """An agent's google.rpc.Status, with the reason of its ErrorInfo if it carries one."""
    reason = ""
    for detail in getattr(status, "details", ()):
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reason = info.reason[:128]
            break
    return DiagnosticsError(
        int(getattr(status, "code", 2)), reason, str(getattr(status, "message", ""))[:4096]
    )


def _key(key: object) -> str:
    group, version, kind, namespace, name = key  # type: ignore[misc]
    return f"{group}/{version}/{kind}/{namespace}/{name}"


def _code_name(code: int) -> str:
    return grpc_code(code).name
