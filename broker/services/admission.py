"""Admission control: bounded concurrency with a bounded queue, refusing the rest at once.

After a broker restart thousands of agents call at once. Letting all of them at the database pool
makes most wait out the pool's checkout timeout and fail with UNAVAILABLE after the broker has
spent CPU on them; the agents then come back and do it again. A gate in front keeps at most
`concurrent` callers on the database, lets up to `waiting` more wait their turn in memory (a
waiting caller holds no connection, and is simply cancelled if its client gives up), and refuses
the rest at once with RESOURCE_EXHAUSTED and a retry delay, which the agents' jittered backoff
spreads out.

Work admitted with `run` is not cancelled with its caller: an agent giving up while its session
is being read would otherwise cancel a query mid-flight, and a cancelled query costs the pooled
database connection (psycopg cancels it on the server, SQLAlchemy then discards the connection). The
work finishes, its place is given back, then the caller's cancellation goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from brokkr_common.errors import ResourceExhausted

T = TypeVar("T")


class Admission:
    def __init__(self, concurrent: int, waiting: int, *, refusal: str, reason: str) -> None:
        self._slots = asyncio.Semaphore(concurrent)
        self._max_waiting = waiting
        self._waiting = 0
        self._refusal = refusal
        self._reason = reason

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `concurrent` places for the block, after waiting for it if need be."""
        if self._slots.locked() and self._waiting >= self._max_waiting:
            raise ResourceExhausted(self._refusal, reason=self._reason, retry_after_seconds=1.0)
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._slots.release()

    async def run(self, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
        """Run `work()` in one of the places; if the caller is cancelled meanwhile, the work still
        finishes (holding its place) before the cancellation goes on."""
        async with self.slot():
            return await _finished(work())


async def _finished(work: Coroutine[Any, Any, T]) -> T:
    task = asyncio.ensure_future(work)
    # Retrieved here, so an error the cancelled caller never sees is not logged as unhandled.
    task.add_done_callback(lambda done: done.cancelled() or done.exception())
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
