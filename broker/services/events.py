"""Reading the event log: listing pages of it, and watching it live.

Watching is "read everything after my cursor, then wait for a wake-up, then read again". Event ids
grow in commit order (broker/db/repositories/events.py), so reading `id > cursor` after each
wake-up misses nothing and repeats nothing. Wake-ups come from `EventSignal`, which the
composition root pokes whenever a committed transaction appended events, on any replica (through
PostgreSQL NOTIFY, or in-process on SQLite); a slow poll covers a lost notification. Only the
admin reads events (docs/explanation/events.md says why generators do not, yet).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import datetime

from broker.domain.changes import Change, EventsAppended
from broker.domain.events import Event, EventType, compile_patterns, matches
from broker.domain.model import Page, Principal
from broker.domain.ports import UnitOfWorkFactory
from broker.domain.validation import Violations
from broker.services import access, checks, paging

#: Events read per query while catching up.
WATCH_BATCH = 500


class EventSignal:
    """Wakes every watcher of this replica when events were committed; closing ends the watches.

    A watcher takes `waiter()` *before* reading, then waits on it: a wake-up between the read and
    the wait is not lost, because it sets the event the watcher already holds.
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.closed = False

    def waiter(self) -> asyncio.Event:
        return self._event

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def on_changes(self, changes: tuple[Change, ...]) -> None:
        """An `OnCommit` callback: wake watchers if the transaction appended events."""
        if any(isinstance(change, EventsAppended) for change in changes):
            self.notify()

    def close(self) -> None:
        """End every watch (at shutdown): they return cleanly, and clients resume elsewhere."""
        self.closed = True
        self.notify()


def _types(violations: Violations, patterns: Sequence[str], field: str) -> frozenset[str] | None:
    """The concrete types the patterns select; None (no filter) for no patterns or `*`."""
    compiled = violations.check(compile_patterns, patterns, field) or ()
    if not compiled or "*" in compiled:
        return None
    return frozenset(event_type.value for event_type in EventType if matches(compiled, event_type))


def _event_id(violations: Violations, field: str, value: str) -> int:
    if not value.isdecimal() or len(value) > 19:
        violations.add(field, "must be an event id (a decimal number)", "INVALID_EVENT_ID")
        return 0
    return int(value)


async def list_events(
    uow_factory: UnitOfWorkFactory,
    actor: Principal,
    *,
    page_size: int,
    page_token: str,
    types: Sequence[str] = (),
    stack_id: str | None = None,
    agent_id: str | None = None,
    start_time: datetime | None = None,
    end_time: datetime | None = None,
) -> Page[Event]:
    """Events oldest first, matching every filter given."""
    access.require_admin(actor, "list events")
    violations = Violations()
    selected = _types(violations, types, "types")
    if stack_id is not None:
        stack_id = checks.resource_id(violations, "stack_id", stack_id)
    if agent_id is not None:
        agent_id = checks.resource_id(violations, "agent_id", agent_id)
    if start_time and end_time and end_time <= start_time:
        violations.add("end_time", "must be after start_time", "INVALID_TIME_RANGE")
    page = paging.plan(
        violations,
        page_size=page_size,
        page_token=page_token,
        position=(int,),
        method="ListEvents",
        types=sorted(selected) if selected is not None else None,
        stack_id=stack_id,
        agent_id=agent_id,
        start_time=start_time.isoformat() if start_time else None,
        end_time=end_time.isoformat() if end_time else None,
    )
    violations.raise_if_any()
    uow = uow_factory()
    async with uow:
        return await paging.collect(
            page,
            lambda after, limit: uow.events.list_page(
                after=int(after[0]) if after else 0,
                limit=limit,
                types=selected,
                stack_id=stack_id,
                agent_id=agent_id,
                start_time=start_time,
                end_time=end_time,
            ),
            lambda event: (int(event.id),),
        )


async def watch_events(
    uow_factory: UnitOfWorkFactory,
    actor: Principal,
    signal: EventSignal,
    *,
    types: Sequence[str] = (),
    after_event_id: str = "",
    poll_seconds: float = 5.0,
) -> AsyncIterator[Event]:
    """The matching events after `after_event_id` (or from now on), then new ones as they commit,
    until the signal closes. Validation happens before the first event is awaited."""
    access.require_admin(actor, "watch events")
    violations = Violations()
    selected = _types(violations, types, "types")
    cursor = _event_id(violations, "after_event_id", after_event_id) if after_event_id else None
    violations.raise_if_any()
    if cursor is None:
        uow = uow_factory()
        async with uow:
            cursor = await uow.events.last_id()
    return _follow(uow_factory, signal, selected, cursor, poll_seconds)


async def _follow(
    uow_factory: UnitOfWorkFactory,
    signal: EventSignal,
    types: frozenset[str] | None,
    cursor: int,
    poll_seconds: float,
) -> AsyncIterator[Event]:
    while not signal.closed:
        woken = signal.waiter()
        uow = uow_factory()
        async with uow:
            batch = await uow.events.list_page(after=cursor, limit=WATCH_BATCH, types=types)
        for event in batch:
            cursor = int(event.id)
            yield event
        if len(batch) == WATCH_BATCH:
            continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(woken.wait(), timeout=poll_seconds)
