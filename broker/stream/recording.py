"""Write-behind recording of agent sessions and of what agents report: acks, nacks, health and
heartbeats.

At 10,000 agents a push produces 10,000 acks within seconds and heartbeats arrive at over 300 a
second; one transaction each would make the database the bottleneck. The recorder queues reports and
writes them in batches (one transaction per batch), flushing as soon as a batch is full or a short
interval has passed. Reports are facts an agent will restate (its next Hello says what it holds,
heartbeats repeat), so a crash losing the last few milliseconds of them costs nothing but a moment
of staleness in the API.

Sessions are recorded the same way: that one opened (the agent CONNECTED through it), its Hello,
that it closed. A session starts from what the database says the agent should hold and from the
Hello itself, never from what was stored of them, so nothing needs to wait for those writes, and
a reconnect storm of thousands of agents costs a few transactions instead of one per agent. One
queue keeps each session's records in order; `sessions.record_reports` says how a batch orders
them, and why a record arriving late from another replica cannot undo a newer one. Session
records are never dropped, and the sweep submits again the record of any live session the
database does not show connected here.

Writing a batch costs the broker's own CPU (building statements, encoding rows), the same CPU that
delivers a fan-out. While the hub still has messages waiting to be handed to gRPC, a batch waits
(up to `MAX_DEFER_SECONDS`): an agent waiting for an update is worth more than a status row
written a moment sooner, and the acks of a fan-out then go into one larger, cheaper batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import structlog

from broker.domain.deployments import SESSION_RECORDS, Report
from broker.domain.ports import UnitOfWorkFactory
from broker.services import sessions
from brokkr_common.errors import Aborted

log = structlog.get_logger("brokkr.stream")

#: The longest a batch waits for a fan-out to be delivered before it is written anyway.
MAX_DEFER_SECONDS = 1.0
#: Tries to write a batch that meets a deadlock or serialization failure (another replica's
#: transaction, say).
_ATTEMPTS = 3


async def wait_while(busy: Callable[[], bool], limit: float, step: float) -> None:
    """Return once `busy()` is false, looking every `step` seconds, or after about `limit`."""
    waited = 0.0
    while busy() and waited < limit:
        await asyncio.sleep(step)
        waited += step


class Recorder:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        *,
        batch_size: int = 1000,
        interval: float = 0.05,
        capacity: int = 100_000,
    ) -> None:
        self._uow = uow
        self._defer_while: Callable[[], bool] = lambda: False
        #: Held while a batch is written. Whoever else writes many agents' connection columns at
        #: once (the sweep) holds it too: on PostgreSQL two transactions updating many agent rows
        #: in different orders deadlock.
        self.writing = asyncio.Lock()
        self._batch_size = batch_size
        self._interval = interval
        self._queue: asyncio.Queue[Report | None] = asyncio.Queue()
        self._capacity = capacity
        self._task: asyncio.Task[None] | None = None
        self._unwritten = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.dropped = 0

    def submit(self, report: Report) -> None:
        """Queue a report; when the queue is full (the database is down or far behind) the report is
        dropped and counted: agents restate their state, the broker must not run out of memory.
        Session records are kept whatever the queue holds (there are a few per connect, and the
        database must learn where each agent is)."""
        if self._queue.qsize() >= self._capacity and not isinstance(report, SESSION_RECORDS):
            self.dropped += 1
            return
        self._queue.put_nowait(report)
        self._unwritten += 1
        self._idle.clear()

    def defer_while(self, busy: Callable[[], bool]) -> None:
        """Let batches wait while `busy()` says a fan-out is being delivered (up to
        `MAX_DEFER_SECONDS`)."""
        self._defer_while = busy

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="report-recorder")

    async def stop(self) -> None:
        """Write what is queued, then stop (never cancelled mid-write: that would leak a connection)."""
        if self._task is None:
            return
        self._queue.put_nowait(None)
        await self._task

    async def flushed(self) -> None:
        """Wait until every report submitted so far has been written (or failed to be)."""
        await self._idle.wait()

    def _drain(self, batch: list[Report]) -> bool:
        """Move queued reports into `batch` (up to the batch size); False once the stop mark is read."""
        while not self._queue.empty() and len(batch) < self._batch_size:
            report = self._queue.get_nowait()
            if report is None:
                return False
            batch.append(report)
        return True

    async def _run(self) -> None:
        running = True
        while running:
            first = await self._queue.get()
            if first is None:
                return
            await asyncio.sleep(self._interval)  # let a burst gather into one batch
            await wait_while(self._defer_while, MAX_DEFER_SECONDS, self._interval)
            batch = [first]
            running = self._drain(batch)
            await self._flush(batch)

    async def _flush(self, batch: list[Report]) -> None:
        if not batch:
            return
        try:
            async with self.writing:
                for attempt in range(_ATTEMPTS):
                    try:
                        await sessions.record_reports(self._uow(), batch)
                        break
                    except Aborted:  # a deadlock or serialization failure: the next try can pass
                        if attempt == _ATTEMPTS - 1:
                            raise
        except Exception:
            log.exception("recording agent reports failed", reports=len(batch))
        finally:
            self._unwritten -= len(batch)
            if self._unwritten == 0:
                self._idle.set()
