"""The admission gate in front of the database: bounded concurrency, a bounded queue, refusal
beyond it, and a waiter that gives up leaving no trace."""

from __future__ import annotations

import asyncio

import pytest

from broker.services.admission import Admission
from brokkr_common.errors import ResourceExhausted


def _gate(concurrent: int, waiting: int) -> Admission:
    return Admission(concurrent, waiting, refusal="busy; retry shortly", reason="TOO_BUSY")


async def test_at_most_concurrent_callers_are_inside_and_the_rest_wait_their_turn():
    gate = _gate(2, 10)
    inside = most = 0
    release = asyncio.Event()

    async def call() -> None:
        nonlocal inside, most
        async with gate.slot():
            inside += 1
            most = max(most, inside)
            await release.wait()
            inside -= 1

    calls = [asyncio.create_task(call()) for _ in range(6)]
    await asyncio.sleep(0.01)
    assert inside == 2
    release.set()
    await asyncio.gather(*calls)
    assert most == 2


async def test_beyond_the_queue_callers_are_refused_at_once_with_a_retry_delay():
    gate = _gate(1, 1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    holder, waiter = asyncio.create_task(hold()), asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    with pytest.raises(ResourceExhausted) as refused:
        async with gate.slot():
            pass
    release.set()
    await asyncio.gather(holder, waiter)

    assert refused.value.reason == "TOO_BUSY"
    assert refused.value.retry_after_seconds == 1.0


async def test_a_waiter_that_gives_up_frees_its_place_in_the_queue():
    gate = _gate(1, 1)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot():
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    quitter = asyncio.create_task(hold())
    await asyncio.sleep(0.01)
    quitter.cancel()  # its client went away
    await asyncio.gather(quitter, return_exceptions=True)

    late = asyncio.create_task(hold())  # takes the freed place instead of being refused
    await asyncio.sleep(0.01)
    release.set()
    await asyncio.gather(holder, late)
    assert late.exception() is None


async def test_work_admitted_with_run_finishes_though_its_caller_is_cancelled():
    """Cancelling a query mid-flight costs the pooled connection: the work finishes, keeping its
    place, and only then does the cancellation reach the caller."""
    gate = _gate(1, 10)
    release = asyncio.Event()
    inside = most = 0
    finished = 0

    async def query() -> str:
        nonlocal inside, most, finished
        inside += 1
        most = max(most, inside)
        await release.wait()
        inside -= 1
        finished += 1
        return "rows"

    caller = asyncio.create_task(gate.run(query))
    await asyncio.sleep(0.01)
    caller.cancel()
    follower = asyncio.create_task(gate.run(query))
    await asyncio.sleep(0.01)
    assert not caller.done()  # waiting for its work, which holds the only place
    assert inside == 1
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert finished >= 1  # the cancelled caller's work ran to its end
    assert await follower == "rows"
    assert (finished, most) == (2, 1)


async def test_with_no_queue_a_free_place_is_taken_and_work_refused_is_never_started():
    gate = _gate(1, 0)
    release = asyncio.Event()
    started = []

    async def query() -> None:
        started.append(True)
        await release.wait()

    holder = asyncio.create_task(gate.run(query))
    await asyncio.sleep(0.01)
    with pytest.raises(ResourceExhausted):
        await gate.run(query)
    release.set()
    await holder
    assert started == [True]
