"""The agent-side session client: one outbound bidi stream, kept up forever.

`SessionClient` dials the broker, says Hello with what the agent holds, and drives
`brokkr_common.session.AgentSession` from three tasks per stream: a reader (broker messages into the
machine), a worker (Apply and Remove handed to the `StackRuntime`, one at a time, in order) and a
timer (heartbeats, silence deadline). Diagnostics requests (capability `diagnostics`, advertised
when `ClientOptions.capabilities` lists it) run in tasks of their own, at most
`max_concurrent_diagnoses` at once, so collecting never holds up applying. Everything the machine
says to send goes through one bounded writer queue feeding the call's request iterator.

When a stream ends, for any reason, the client reconnects with capped exponential backoff and full
jitter (tenacity's `wait_random_exponential`), so a broker restart spreads thousands of agents'
reconnects over the backoff window instead of a stampede. A stream that got a Welcome resets the
backoff, but even its first reconnect waits a random fraction of the base delay. The next Hello
reports what the agent holds (`AgentSession.resume_state`), so resuming costs only what changed.

One channel serves every stream of the client: gRPC re-establishes its connection by itself (with
a backoff capped like ours), so a reconnect is a new stream, not a new TCP and TLS handshake. After
a broker restart, thousands of agents retrying would otherwise cost the broker a handshake each per
attempt. The Welcome timeout is long (two minutes) for the same storm: a broker that is taking up
thousands of returning agents keeps a new stream waiting until its turn (up to the broker's
`grpc.max_call_queue_seconds`, one minute by default), and an agent that gave up sooner would only
go to the back of the queue again.

Used by the real agent (with a Kubernetes runtime), by tests and by the fan-out benchmark (with
runtimes that apply nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import grpc
import structlog
from google.rpc import code_pb2, status_pb2
from tenacity import AsyncRetrying, retry_if_exception, wait_random_exponential

from brokkr_common.errors import BrokkrError, FailedPrecondition
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2_grpc, diagnostics_pb2
from brokkr_common.rpc_status import from_rpc_error, to_status
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceError, ResourceResult, StackHealth
from brokkr_common.session.stacks import HeldStack

log = structlog.get_logger("brokkr.agent.session")


class StackRuntime(Protocol):
    """What the session needs from the agent's cluster side."""

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        """Apply the update; raise `ApplyFailed` (or any `BrokkrError`) to nack it."""

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        """Delete everything of the stack; raise to nack."""

    async def probe(self) -> tuple[bool, int]:
        """(Kubernetes reachable, API latency in ms) for the next heartbeat."""


class DiagnosingRuntime(StackRuntime, Protocol):
    """A runtime that can also collect diagnostics (advertise the `diagnostics` capability)."""

    async def diagnose(self, work: machine.Diagnose) -> diagnostics_pb2.DiagnosticsReport:
        """Collect the diagnostics asked for; raise a `BrokkrError` when nothing can be collected."""


class ApplyFailed(Exception):
    """The runtime gave up on a piece of work: nack it with this status and per-object errors."""

    def __init__(self, error: BrokkrError, errors: Sequence[ResourceError] = ()) -> None:
        super().__init__(error.message)
        self.error = error
        self.errors = tuple(errors)


class _StreamEnded(Exception):
    """One stream is over; `welcomed` says whether it ever got a Welcome."""

    def __init__(self, reason: str, *, welcomed: bool) -> None:
        super().__init__(reason)
        self.welcomed = welcomed


@dataclass
class ClientOptions:
    """Connection settings; the defaults match the broker's (keepalive every 30 s is accepted)."""

    agent_version: str = "brokkr-agent"
    capabilities: Sequence[str] = ()
    keepalive_time_seconds: float = 30.0
    keepalive_timeout_seconds: float = 10.0
    reconnect_base_seconds: float = 1.0
    reconnect_max_seconds: float = 60.0
    #: Longer than the broker keeps a stream waiting to be taken up (`grpc.max_call_queue_seconds`).
    welcome_timeout_seconds: float = machine.WELCOME_TIMEOUT_SECONDS
    writer_queue_size: int = 256
    max_concurrent_diagnoses: int = 2
    credentials: grpc.ChannelCredentials | None = None
    extra_channel_options: Sequence[tuple[str, object]] = field(default_factory=tuple)

    def channel_options(self) -> list[tuple[str, object]]:
        return [
            # gRPC reconnects the channel's transport with its own backoff, capped as ours is.
            ("grpc.initial_reconnect_backoff_ms", int(self.reconnect_base_seconds * 1000)),
            ("grpc.max_reconnect_backoff_ms", int(self.reconnect_max_seconds * 1000)),
            ("grpc.keepalive_time_ms", int(self.keepalive_time_seconds * 1000)),
            ("grpc.keepalive_timeout_ms", int(self.keepalive_timeout_seconds * 1000)),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            *self.extra_channel_options,
        ]


class SessionClient:
    """Keeps one session with the broker up until `stop()`.

    `key` is a callable so a rotated key (a re-mounted Secret) is read on every reconnect.
    `held` is what the agent holds at start (after a restart: what it recorded in its cluster).
    """

    def __init__(
        self,
        target: str,
        key: Callable[[], str],
        runtime: StackRuntime,
        held: Mapping[str, HeldStack],
        options: ClientOptions | None = None,
    ) -> None:
        self._target = target
        self._key = key
        self._runtime = runtime
        self._held = dict(held)
        self._options = options or ClientOptions()
        self._stopping = asyncio.Event()
        self._session: machine.AgentSession | None = None
        self._outbox: asyncio.Queue[pb.ConnectRequest | None] | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self.connected = asyncio.Event()
        self.welcome: machine.Welcomed | None = None
        self.connects = 0
        #: Diagnoses running on the current stream; cancelled when it ends.
        self._diagnoses: set[asyncio.Task[None]] = set()
        self._diagnosis_slots = asyncio.Semaphore(self._options.max_concurrent_diagnoses)

    @property
    def held(self) -> Mapping[str, HeldStack]:
        """What the agent holds now, as far as the protocol knows."""
        return self._session.held if self._session is not None else self._held

    async def run(self) -> None:
        """Connect, and reconnect with backoff, until `stop()`; every stream on one channel."""
        async with self._channel() as channel:
            await self._keep_streaming(agent_session_service_pb2_grpc.AgentSessionServiceStub(channel))

    async def _keep_streaming(self, stub: agent_session_service_pb2_grpc.AgentSessionServiceStub) -> None:
        base = self._options.reconnect_base_seconds
        while not self._stopping.is_set():
            retrying = AsyncRetrying(
                wait=wait_random_exponential(multiplier=base, max=self._options.reconnect_max_seconds),
                # Streams that never got a Welcome back off further; one that did starts over below.
                retry=retry_if_exception(
                    lambda error: isinstance(error, _StreamEnded) and not error.welcomed
                ),
                before_sleep=lambda state: log.info(
                    "reconnecting", attempt=state.attempt_number, wait_s=round(state.upcoming_sleep, 2)
                ),
                sleep=self._sleep_unless_stopping,
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        await self._one_stream(stub)
            except _StreamEnded:
                # A welcomed stream ended (say, the broker restarted): reconnect after a random
                # fraction of the base delay, so thousands of agents do not all arrive at once.
                await self._sleep_unless_stopping(random.uniform(0, base))  # noqa: S311 - jitter

    async def stop(self) -> None:
        self._stopping.set()
        self._end_stream()

    def _end_stream(self) -> None:
        """End the current stream, if any; `run` then reconnects (or returns, when stopping)."""
        if self._call is not None:
            self._call.cancel()

    async def report_health(self, stacks: Sequence[StackHealth]) -> None:
        """Send a health report on the current stream; dropped while disconnected (after the next
        Welcome the runtime sends a full report anyway)."""
        if self._session is not None:
            await self._send(self._session.report_health(stacks))

    # -- one stream ----------------------------------------------------------------------------

    async def _one_stream(self, stub: agent_session_service_pb2_grpc.AgentSessionServiceStub) -> None:
        if self._stopping.is_set():
            return
        options = self._options
        session = machine.AgentSession(
            agent_version=options.agent_version,
            held=self._held,
            now=time.time(),
            capabilities=options.capabilities,
            welcome_timeout=options.welcome_timeout_seconds,
        )
        self._session = session
        outbox: asyncio.Queue[pb.ConnectRequest | None] = asyncio.Queue(options.writer_queue_size)
        self._outbox = outbox
        outbox.put_nowait(session.hello())
        work: asyncio.Queue[machine.Apply | machine.Remove] = asyncio.Queue()
        welcomed = False
        self.connects += 1
        call = stub.Connect(_drain(outbox), metadata=(("authorization", f"Bearer {self._key()}"),))
        self._call = call
        welcomed_now = asyncio.Event()
        tasks = [
            asyncio.create_task(self._work(session, work), name="session-worker"),
            asyncio.create_task(self._clock(session, welcomed_now), name="session-clock"),
        ]
        try:
            async for response in call:
                for action in session.receive(response, time.time()):
                    if isinstance(action, machine.Welcomed):
                        welcomed = True
                        welcomed_now.set()  # the clock owes a heartbeat at once
                        self.welcome = action
                        self.connected.set()
                        log.info("session welcomed", agent=action.agent_name, replica=action.replica_name)
                    await self._carry_out(action, work)
                if session.closed or self._stopping.is_set():
                    break
        except grpc.aio.AioRpcError as error:
            problem = from_rpc_error(error)
            log.warning("session ended", code=error.code().name, reason=problem.reason, error=problem.message)
        except asyncio.CancelledError:
            # `_end_stream` cancelled the call; anything cancelling this task goes on up.
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
        finally:
            self._call = None
            tasks += self._diagnoses
            self._diagnoses = set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            _end_requests(outbox)
            call.cancel()
            self.connected.clear()
            self._held = session.resume_state()
            self._outbox = None
        if self._stopping.is_set():
            return
        raise _StreamEnded("stream ended", welcomed=welcomed)

    @contextlib.asynccontextmanager
    async def _channel(self) -> AsyncIterator[grpc.aio.Channel]:
        options = self._options
        channel = (
            grpc.aio.secure_channel(self._target, options.credentials, options=options.channel_options())
            if options.credentials is not None
            else grpc.aio.insecure_channel(self._target, options=options.channel_options())
        )
        try:
            yield channel
        finally:
            await channel.close(grace=None)

    async def _carry_out(self, action: machine.Action, work: asyncio.Queue) -> None:
        if isinstance(action, machine.Send):
            await self._send([action])
        elif isinstance(action, machine.Apply | machine.Remove):
            work.put_nowait(action)
        elif isinstance(action, machine.Diagnose) and self._session is not None:
            task = asyncio.create_task(self._diagnose(self._session, action), name="session-diagnose")
            self._diagnoses.add(task)
            task.add_done_callback(self._diagnoses.discard)
        elif isinstance(action, machine.Close):
            log.warning("closing session", reason=action.error.reason, error=action.error.message)

    async def _send(self, actions: Sequence[machine.Action]) -> None:
        # The outbox is bounded: when the broker stops reading, writers wait here (backpressure)
        # instead of buffering without bound, until keepalive or the silence deadline ends the stream.
        outbox = self._outbox
        for action in actions:
            if isinstance(action, machine.Send) and outbox is not None:
                await outbox.put(action.message)

    async def _work(self, session: machine.AgentSession, work: asyncio.Queue) -> None:
        """Apply and Remove one at a time, in order, as the protocol requires."""
        while True:
            item = await work.get()
            try:
                if isinstance(item, machine.Apply):
                    results = await self._runtime.apply(item)
                else:
                    results = await self._runtime.remove(item)
                await self._send(session.applied(item.nonce, results))
            except ApplyFailed as failure:
                await self._send(session.failed(item.nonce, to_status(failure.error), failure.errors))
            except BrokkrError as error:
                await self._send(session.failed(item.nonce, to_status(error)))
            except Exception as error:  # a runtime bug must not kill the session silently
                log.exception("runtime failed", stack=item.stack_id)
                status = status_pb2.Status(
                    code=code_pb2.INTERNAL, message=f"agent error: {type(error).__name__}"
                )
                await self._send(session.failed(item.nonce, status))

    async def _diagnose(self, session: machine.AgentSession, work: machine.Diagnose) -> None:
        """Collect diagnostics beside the apply worker and answer the request, whatever happens."""
        async with self._diagnosis_slots:
            diagnose = getattr(self._runtime, "diagnose", None)
            try:
                if diagnose is None:
                    raise FailedPrecondition(
                        "this agent's runtime cannot diagnose", reason="AGENT_CANNOT_DIAGNOSE"
                    )
                report = await diagnose(work)
                await self._send(session.diagnosed(work.diagnostics_id, work.stack_id, report))
            except ApplyFailed as failure:
                await self._send(
                    session.diagnosis_failed(work.diagnostics_id, work.stack_id, to_status(failure.error))
                )
            except BrokkrError as error:
                await self._send(
                    session.diagnosis_failed(work.diagnostics_id, work.stack_id, to_status(error))
                )
            except Exception as error:  # a runtime bug must still answer the request
                log.exception("diagnosing failed", stack=work.stack_id)
                status = status_pb2.Status(
                    code=code_pb2.INTERNAL, message=f"agent error: {type(error).__name__}"
                )
                await self._send(session.diagnosis_failed(work.diagnostics_id, work.stack_id, status))

    async def _clock(self, session: machine.AgentSession, welcomed: asyncio.Event) -> None:
        """Heartbeats when due; close the stream when the broker has gone silent."""
        while True:
            now = time.time()
            due = session.next_heartbeat_at
            if due is not None and now >= due:
                reachable, latency_ms = await self._runtime.probe()
                await self._send(
                    session.heartbeat(
                        time.time(), kubernetes_reachable=reachable, kubernetes_api_latency_ms=latency_ms
                    )
                )
            for action in session.tick(time.time()):
                if isinstance(action, machine.Close):
                    log.warning("broker silent; reconnecting", reason=action.error.reason)
                    self._end_stream()
                    return
            wake = min(session.deadline, session.next_heartbeat_at or session.deadline)
            pause = max(0.05, wake - time.time())
            if welcomed.is_set():
                await asyncio.sleep(pause)
            else:  # before the Welcome nothing is due but the deadline; the Welcome makes a heartbeat due
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(welcomed.wait(), timeout=pause)

    async def _sleep_unless_stopping(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


async def _drain(outbox: asyncio.Queue[pb.ConnectRequest | None]) -> AsyncIterator[pb.ConnectRequest]:
    """The request iterator of the call: what the machine queued, until a None ends the stream."""
    while True:
        message = await outbox.get()
        if message is None:
            return
        yield message


def _end_requests(outbox: asyncio.Queue[pb.ConnectRequest | None]) -> None:
    """Make `_drain` return, so gRPC's task consuming it ends with the call instead of staying
    suspended on an outbox nobody fills any more. Unsent messages are dropped: the next stream
    starts from a fresh Hello."""
    while True:
        try:
            outbox.put_nowait(None)
            return
        except asyncio.QueueFull:
            outbox.get_nowait()
