"""A real broker for integration tests: `Broker` from the composition root, on free loopback ports,
running on its own event loop in a background thread.

Tests talk to it like any client does, over real gRPC and real HTTP, with synchronous stubs; the
broker's event loop is never the test's, so a test can be a plain function.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc

from broker.config import load_settings
from broker.server import Broker
from brokkr_common.log import configure_logging


@dataclass
class RunningBroker:
    broker: Broker
    grpc_target: str
    rest_url: str | None
    #: The admin key this broker created at start-up; None when the database already had one.
    admin_key: str | None
    channel: grpc.Channel
    _loop: asyncio.AbstractEventLoop = field(repr=False)

    def metadata(self, key: str | None) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {key}"),) if key is not None else ()

    def run(self, coroutine: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the broker's loop (e.g. to inspect its database) and return its result."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)


@contextlib.contextmanager
def running_broker(database_url: str, **overrides: Any) -> Iterator[RunningBroker]:
    # The authorization matrices fail to authenticate hundreds of times from one address; the
    # failure limit has its own tests (tests/integration/api/test_authentication_failures.py).
    overrides.setdefault("auth", {"failure_limit": 0})
    settings = load_settings(
        database={"url": database_url},
        grpc={"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 0, **overrides.pop("grpc", {})},
        rest={"host": "127.0.0.1", "port": 0},
        **overrides,
    )
    # Logs go to stderr through the standard library, as in `brokkr-broker serve`; left unconfigured,
    # structlog would print to stdout, into whatever a test captures there.
    configure_logging("info", "console")
    broker = Broker(settings)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    thread = threading.Thread(target=_run_loop, args=(loop, started), name="broker", daemon=True)
    thread.start()
    started.wait(10)
    ports = asyncio.run_coroutine_threadsafe(broker.start(), loop).result(60)
    target = f"127.0.0.1:{ports.grpc}"
    channel = grpc.insecure_channel(target)
    try:
        yield RunningBroker(
            broker=broker,
            grpc_target=target,
            rest_url=f"http://127.0.0.1:{ports.rest}" if ports.rest else None,
            admin_key=broker.bootstrap_admin_key,
            channel=channel,
            _loop=loop,
        )
    finally:
        channel.close()
        asyncio.run_coroutine_threadsafe(broker.stop(grace=0), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def _run_loop(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    loop.run_forever()
