"""Simulated agents: thousands of real `SessionClient`s, many per process, applying instantly.

Each agent is the session client the real agent runs, with its default reconnect backoff, on its
own channel and TCP connection, and a runtime that applies nothing: every object of an update is
CREATED at once. The runtime records when it finished applying each deployment object; commit→ack
latency is measured to that moment. Welcome times are the broker's own `server_time` in the
Welcome (same machine, same clock), so polling for them costs no precision.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from agent.stream.client import ClientOptions, SessionClient
from bench.fanout_workers import Worker
from brokkr_common.log import configure_logging
from brokkr_common.session import agent_session as machine
from brokkr_common.session.reports import ResourceOutcome, ResourceResult

#: How often a process looks for agents still waiting for a Welcome.
_POLL_SECONDS = 0.05
#: One TCP connection per agent, as with real agents (each in its own cluster): without this,
#: grpc shares one subchannel between every channel to the same target in a process.
_OWN_CONNECTION = (("grpc.use_local_subchannel_pool", 1),)


@dataclass(frozen=True)
class Applied:
    """When one agent finished applying a deployment object, and how many objects it applied."""

    at: float
    objects: int


class InstantRuntime:
    """A `StackRuntime` that applies nothing and reports every object CREATED at once."""

    def __init__(self, on_applied: Callable[[int, Applied], None]) -> None:
        self._on_applied = on_applied

    async def apply(self, work: machine.Apply) -> Sequence[ResourceResult]:
        results = [ResourceResult(r.key, ResourceOutcome.CREATED) for r in work.apply]
        self._on_applied(work.deployment_object.sequence_id, Applied(time.time(), len(work.apply)))
        return results

    async def remove(self, work: machine.Remove) -> Sequence[ResourceResult]:
        return []

    async def probe(self) -> tuple[bool, int]:
        return True, 1


class AgentProcess:
    """The handler of one agent process (see `bench.fanout_workers`); `options` (default: the
    agent's defaults) lets the fault suite shorten backoff and keepalive."""

    def __init__(self, target: str, keys: Sequence[str], options: ClientOptions | None = None) -> None:
        # One line per agent and reconnect would flood the benchmark's output.
        configure_logging("error", "json")
        self._target = target
        self._keys = keys
        self._options = options or ClientOptions(agent_version="brokkr-bench")
        self._clients: list[SessionClient] = []
        self._tasks: list[asyncio.Task[None]] = []  # referenced, so the sessions are not collected
        self._applied: dict[int, dict[int, Applied]] = {}
        self._progress = asyncio.Event()

    async def start(self) -> float:
        """Start every agent's session (they connect on their own, as real agents do); returns when
        this began."""
        started = time.time()
        options = dataclasses.replace(
            self._options,
            extra_channel_options=(*self._options.extra_channel_options, *_OWN_CONNECTION),
        )
        for index, key in enumerate(self._keys):
            runtime = InstantRuntime(lambda sequence, applied, i=index: self._record(i, sequence, applied))
            client = SessionClient(self._target, lambda key=key: key, runtime, {}, options)
            self._clients.append(client)
            self._tasks.append(asyncio.create_task(client.run()))
        return started

    async def welcomed(self, since: float, deadline: float) -> list[float]:
        """Wait until every agent has been welcomed at or after `since`, or until `deadline`; the
        broker's time of each such Welcome (one per agent welcomed in time)."""
        # Polled: the session client has no hook for a Welcome; the Welcome's own time is recorded.
        times = [_welcome_time(c, since) for c in self._clients]
        while None in times and time.time() < deadline:
            await asyncio.sleep(_POLL_SECONDS)
            times = [_welcome_time(c, since) for c in self._clients]
        return [at for at in times if at is not None]

    async def applied(self, sequence_id: int, deadline: float) -> list[Applied]:
        """Wait until every agent has applied deployment object `sequence_id`."""
        done = self._applied.setdefault(sequence_id, {})
        try:
            async with asyncio.timeout(deadline - time.time()):
                while len(done) < len(self._clients):
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            missing = len(self._clients) - len(done)
            raise TimeoutError(
                f"{missing} of {len(self._clients)} agents did not apply version {sequence_id} in time"
            ) from None
        return list(done.values())

    async def sessions(self) -> list[tuple[str | None, int]]:
        """Per agent: the replica of its latest Welcome (None before the first), and how many
        streams it has opened."""
        return [
            (c.welcome.replica_name if c.welcome is not None else None, c.connects) for c in self._clients
        ]

    def _record(self, index: int, sequence_id: int, applied: Applied) -> None:
        # An agent sent the same version twice (after a reconnect) counts when it first applied it.
        self._applied.setdefault(sequence_id, {}).setdefault(index, applied)
        self._progress.set()


class Fleet:
    """The parent's view of all agent processes: the agents split evenly between them."""

    def __init__(
        self, target: str, keys: Sequence[str], processes: int, options: ClientOptions | None = None
    ) -> None:
        per_process = math.ceil(len(keys) / processes)
        self._workers = [
            Worker(f"agents-{i}", AgentProcess, target, keys[start : start + per_process], options)
            for i, start in enumerate(range(0, len(keys), per_process))
        ]

    async def start(self, deadline: float) -> float:
        """Start every agent once all processes are up; returns when the first process began."""
        await asyncio.gather(*(w.ready(deadline) for w in self._workers))
        return min(await asyncio.gather(*(w.call("start", deadline=deadline) for w in self._workers)))

    async def welcomed(self, since: float, deadline: float) -> list[float]:
        """Wait until every agent has been welcomed at or after `since`, or until `deadline`; the
        broker's time of each such Welcome (one per agent welcomed in time)."""
        replies = await asyncio.gather(
            *(w.call("welcomed", since, deadline, deadline=deadline) for w in self._workers)
        )
        return [at for reply in replies for at in reply]

    async def applied(self, sequence_id: int, deadline: float) -> list[Applied]:
        """Wait until every agent has applied deployment object `sequence_id`."""
        replies = await asyncio.gather(
            *(w.call("applied", sequence_id, deadline, deadline=deadline) for w in self._workers)
        )
        return [applied for reply in replies for applied in reply]

    async def sessions(self, deadline: float) -> list[tuple[str | None, int]]:
        """Per agent, in key order: the replica of its latest Welcome and its streams opened."""
        replies = await asyncio.gather(*(w.call("sessions", deadline=deadline) for w in self._workers))
        return [session for reply in replies for session in reply]

    def kill(self) -> None:
        for worker in self._workers:
            worker.kill()


def _welcome_time(client: SessionClient, since: float) -> float | None:
    """The broker's time of the client's latest Welcome, if that came at or after `since`."""
    at = client.welcome.server_time.timestamp() if client.welcome is not None else None
    return at if at is not None and at >= since else None
