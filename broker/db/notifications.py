"""Committed changes, from every broker replica to every replica, through PostgreSQL LISTEN/NOTIFY.

The database is the only shared state (DESIGN.md), yet a change committed through one replica must
reach the agents connected to all of them at once. The unit of work sends the changes of a
transaction with `pg_notify` inside that transaction (`notify`), so PostgreSQL delivers them when,
and only if, it commits, to every listening connection of the database, this replica's included.
Each replica runs one `listen` loop on a dedicated connection, outside the pool, which decodes them
and hands them on.

Notifications are not stored: what is sent while a listener is disconnected is lost to it. So the
listener reconnects forever (capped exponential backoff with full jitter) and, after each
reconnect, calls `on_reconnect`, with which the caller re-reads what it may have missed.

A payload is a JSON array of changes, `[{"type": "StackChanged", "stack_id": "..."}]`; the changes
of one transaction share as few payloads as PostgreSQL's 8000-byte limit allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

import psycopg
import structlog
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from broker.domain.changes import (
    AgentChanged,
    Change,
    DiagnosticsRequested,
    EventsAppended,
    KeyRevoked,
    StackChanged,
    TargetingChanged,
)
from broker.domain.model import Role
from broker.domain.ports import OnCommit
from brokkr_common.errors import InvalidArgument

log = structlog.get_logger("brokkr.db")

CHANNEL = "brokkr_changes"
#: PostgreSQL refuses payloads of 8000 bytes or more.
_MAX_PAYLOAD_BYTES = 7999
_TYPES: dict[str, Callable[..., Change]] = {
    kind.__name__: kind
    for kind in (
        StackChanged,
        AgentChanged,
        TargetingChanged,
        KeyRevoked,
        DiagnosticsRequested,
        EventsAppended,
    )
}
#: The listener's libpq options: a name to find it by in pg_stat_activity, and TCP keepalives so
#: that a connection whose peer vanished (no FIN, no RST) is noticed within a minute, not hours.
_LISTENER_OPTIONS: dict[str, Any] = {
    "application_name": "brokkr-change-listener",
    "connect_timeout": 5,
    "keepalives": 1,
    "keepalives_idle": 30,
    "keepalives_interval": 10,
    "keepalives_count": 3,
}
#: Waits between connection attempts: random, up to 0.5 s doubling per failure, at most 30 s.
_BACKOFF = wait_random_exponential(multiplier=0.5, max=30)


#: The boolean fields of each change type; every other field is a string (or null).
_FLAGS = frozenset(
    (kind, field.name)
    for kind in (StackChanged, AgentChanged, TargetingChanged, KeyRevoked)
    for field in dataclasses.fields(kind)
    if field.type == "bool"
)


class MalformedNotification(ValueError):
    """A payload on the channel that Brokkr did not write (or a newer Brokkr wrote differently)."""


def encode(changes: Iterable[Change]) -> list[str]:
    """The payloads announcing `changes`, each within PostgreSQL's limit."""
    payloads: list[str] = []
    items: list[str] = []
    size = 2  # the brackets
    for change in changes:
        item = json.dumps(
            {"type": type(change).__name__, **dataclasses.asdict(change)}, separators=(",", ":")
        )
        if items and size + len(item.encode()) + 1 > _MAX_PAYLOAD_BYTES:
            payloads.append(f"[{','.join(items)}]")
            items, size = [], 2
        items.append(item)
        size += len(item.encode()) + 1
    if items:
        payloads.append(f"[{','.join(items)}]")
    return payloads


def decode(payload: str) -> tuple[Change, ...]:
    """The changes a payload announces; MalformedNotification if it is not one `encode` made."""
    try:
        items = json.loads(payload)
    except (ValueError, RecursionError) as error:  # not JSON, or absurdly nested
        raise MalformedNotification(f"not JSON: {type(error).__name__}") from None
    if not isinstance(items, list):
        raise MalformedNotification("not a JSON array")
    return tuple(_change(item) for item in items)


def _change(item: object) -> Change:
    if not isinstance(item, dict):
        raise MalformedNotification("a change is not a JSON object")
    fields = dict(item)
    kind = _TYPES.get(fields.pop("type", None))
    if kind is None:
        raise MalformedNotification("unknown change type")
    for name, value in fields.items():
        if (kind, name) in _FLAGS:
            if not isinstance(value, bool):
                raise MalformedNotification(f"change field {name} must be a boolean")
        elif not (value is None or isinstance(value, str)):
            raise MalformedNotification("change fields must be strings")
    try:
        if kind is KeyRevoked:
            fields["role"] = Role(fields.get("role"))
        return kind(**fields)
    except (TypeError, ValueError) as error:  # missing or unexpected fields, unknown role
        raise MalformedNotification(str(error)) from None


async def notify(connection: AsyncConnection, changes: Iterable[Change]) -> None:
    """Announce `changes` when the connection's transaction commits (call it before committing)."""
    for payload in encode(changes):
        await connection.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": payload}
        )


def libpq_conninfo(url: str) -> str:
    """The libpq connection URI for a SQLAlchemy PostgreSQL URL (`postgresql+psycopg://...`)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise InvalidArgument.for_field(
            "database.url", "LISTEN/NOTIFY needs PostgreSQL", "UNSUPPORTED_DATABASE"
        )
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def listen(
    url: str,
    on_changes: OnCommit,
    on_reconnect: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Hand every change committed in the database at `url` to `on_changes`, until `stop` is set.

    Reconnects whenever the connection drops; calls `on_reconnect` each time the connection
    listens, the first time included. Exceptions from either
    callback are logged, never end the loop.
    """
    conninfo = libpq_conninfo(url)
    while not stop.is_set():
        connection = await _connect(conninfo, stop)
        if connection is None:
            return
        async with connection:
            # Changes committed before LISTEN took effect (at start, or while reconnecting) were
            # not heard: catch up once the connection listens.
            log.info("change listener listening")
            await _guarded(on_reconnect(), "catching up after (re)connecting failed")
            await _receive(connection, on_changes, stop)


async def _connect(conninfo: str, stop: asyncio.Event) -> psycopg.AsyncConnection[Any] | None:
    """A connection listening on the channel, or None once `stop` is set."""
    retrying = AsyncRetrying(
        retry=retry_if_exception_type(psycopg.OperationalError),
        wait=_BACKOFF,
        stop=lambda _state: stop.is_set(),
        sleep=partial(_sleep_unless_stopped, stop),
        before_sleep=_log_failed_attempt,
        retry_error_callback=lambda _state: None,
    )
    return await retrying(_open, conninfo, stop)


async def _open(conninfo: str, stop: asyncio.Event) -> psycopg.AsyncConnection[Any] | None:
    if stop.is_set():
        return None
    connection = await psycopg.AsyncConnection.connect(conninfo, autocommit=True, **_LISTENER_OPTIONS)
    try:
        await connection.execute(f"LISTEN {CHANNEL}")
    except BaseException:
        await connection.close()
        raise
    return connection


async def _receive(
    connection: psycopg.AsyncConnection[Any], on_changes: OnCommit, stop: asyncio.Event
) -> None:
    """Deliver notifications until `stop` is set or the connection drops."""
    delivering = asyncio.create_task(_deliver(connection, on_changes), name="change-listener-deliver")
    stopping = asyncio.create_task(stop.wait(), name="change-listener-stop")
    try:
        await asyncio.wait((delivering, stopping), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (delivering, stopping):
            task.cancel()
        await asyncio.gather(delivering, stopping, return_exceptions=True)
    error = None if delivering.cancelled() else delivering.exception()
    if isinstance(error, psycopg.OperationalError):
        log.warning("change listener lost its connection; reconnecting", error=str(error).strip())
    elif error is not None:
        raise error


async def _deliver(connection: psycopg.AsyncConnection[Any], on_changes: OnCommit) -> None:
    async for notification in connection.notifies():
        try:
            changes = decode(notification.payload)
        except MalformedNotification as error:
            log.warning("ignoring a malformed change notification", error=str(error), pid=notification.pid)
            continue
        await _guarded(on_changes(changes), "handling notified changes failed")


async def _guarded(call: Awaitable[None], failure: str) -> None:
    try:
        await call
    except Exception:
        log.exception(failure)


async def _sleep_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


def _log_failed_attempt(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning(
        "change listener cannot connect; retrying",
        attempt=state.attempt_number,
        wait_seconds=round(state.upcoming_sleep, 2),
        error=str(error).strip(),
    )
