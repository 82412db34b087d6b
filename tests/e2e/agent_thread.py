"""The real agent, `agent.runner.run`, on its own event loop in a background thread.

It is the agent users install, built from its own settings (`agent.config.load_settings`), with
only the addresses pointed at the test's broker and cluster. Its own loop keeps the tests plain
functions that may block (the admin client and the Kubernetes client are synchronous) without
stalling it. `stop()` is its SIGTERM: the agent shuts down in order, and whatever the agent
raised, if it died, is raised in the test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from pathlib import Path

from agent.config import load_settings
from agent.runner import run

STOP_SECONDS = 30.0


class AgentThread:
    """One run of the agent with key `key` against the broker at `broker_address`."""

    def __init__(self, broker_address: str, key: str, kubeconfig: Path, namespace: str | None = None) -> None:
        self.settings = load_settings(
            broker={"address": broker_address, "key": key, "reconnect_max_seconds": 1.0},
            kubernetes={"kubeconfig": kubeconfig, "namespace": namespace},
            health={"interval_seconds": 2.0},
            http={"host": "127.0.0.1", "port": 0},
        )
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._loop.run_forever, name="agent", daemon=True)
        self._run: concurrent.futures.Future[None] | None = None

    def start(self) -> AgentThread:
        self._thread.start()
        self._run = asyncio.run_coroutine_threadsafe(run(self.settings, self._stop), self._loop)
        return self

    def stop(self) -> None:
        """Stop the agent as SIGTERM does and wait until it has; re-raise what killed it, if anything.
        Stopping a stopped agent does nothing."""
        if self._run is None or self._loop.is_closed():
            return
        try:
            self._loop.call_soon_threadsafe(self._stop.set)
            self._run.result(STOP_SECONDS)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(STOP_SECONDS)
            self._loop.close()
