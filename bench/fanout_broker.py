"""The broker under test: a `python -m broker serve` process on a fresh PostgreSQL database.

The broker runs exactly as deployed, configured through `BROKKR_*` variables, with its defaults
except for loopback ports and an admin key the benchmark generated (so it knows the key). It is
measured from the outside: bytes and updates sent from its /metrics, memory and CPU time from /proc
(`bench.fanout_workers`). Its log goes to a file, whose path a failed run prints.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import psycopg
from prometheus_client.parser import text_string_to_metric_families

from brokkr_common import keys

ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
_POLL_SECONDS = 0.1
#: Sets PR_SET_PDEATHSIG, then becomes the broker: it dies with the benchmark, however that ends.
_DIE_WITH_PARENT = (
    "import ctypes, os, signal, sys; "
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM); "
    "os.getppid() == int(sys.argv[1]) or sys.exit(1); "
    "os.execv(sys.executable, [sys.executable, '-m', 'broker', 'serve'])"
)


class Database:
    """A PostgreSQL database of its own, `brokkr_bench_<random>`, dropped by `drop()`."""

    def __init__(self, admin_url: str = ADMIN_URL) -> None:
        self._admin = admin_url.replace("postgresql+psycopg://", "postgresql://", 1)
        self.name = f"brokkr_bench_{secrets.token_hex(4)}"
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.name}"')
        self.url = f"{admin_url.rsplit('/', 1)[0]}/{self.name}"

    def drop(self) -> None:
        with psycopg.connect(self._admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')


@dataclass(frozen=True)
class Sent:
    """What the broker's /metrics says it sent since it started (or between two readings)."""

    session_bytes: float
    stack_updates: float

    def __sub__(self, earlier: Sent) -> Sent:
        return Sent(self.session_bytes - earlier.session_bytes, self.stack_updates - earlier.stack_updates)


class BrokerProcess:
    """One broker on `database_url`; `start()` again after `stop()` restarts it on the same ports.

    `settings` are more `BROKKR_*` variables (the fault suite shortens heartbeats with them);
    replicas of one database share `admin_key` and differ in `replica_name`.
    """

    def __init__(
        self,
        database_url: str,
        log_file: Path,
        *,
        settings: Mapping[str, str] | None = None,
        admin_key: str | None = None,
        replica_name: str = "bench",
    ) -> None:
        self.admin_key = admin_key or keys.generate().plaintext
        self.grpc_port, self.rest_port = free_port(), free_port()
        self.log_file = log_file
        self._env = {
            **os.environ,
            "BROKKR_DATABASE__URL": database_url,
            "BROKKR_GRPC__HOST": "127.0.0.1",
            "BROKKR_GRPC__PORT": str(self.grpc_port),
            "BROKKR_REST__HOST": "127.0.0.1",
            "BROKKR_REST__PORT": str(self.rest_port),
            "BROKKR_AUTH__ADMIN_KEY_HASH": keys.hash_for_config(self.admin_key),
            "BROKKR_REPLICA_NAME": replica_name,
            "BROKKR_LOG__FORMAT": "json",
            **(settings or {}),
        }
        self._process: asyncio.subprocess.Process | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def pid(self) -> int:
        assert self._process is not None, "broker not started"
        return self._process.pid

    async def start(self, deadline: float) -> None:
        """Start the broker and wait until /readyz says it serves."""
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _DIE_WITH_PARENT,
                str(os.getpid()),
                env=self._env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        while not await asyncio.to_thread(self._ready):
            if self._process.returncode is not None:
                raise RuntimeError(f"the broker exited with {self._process.returncode}; see {self.log_file}")
            if time.time() > deadline:
                raise TimeoutError(f"the broker did not become ready in time; see {self.log_file}")
            await asyncio.sleep(_POLL_SECONDS)

    async def stop(self, deadline: float) -> None:
        """SIGTERM, as Kubernetes does, and wait for the process to exit (SIGKILL at `deadline`)."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(max(deadline - time.time(), 1.0)):
                await process.wait()
        except TimeoutError:
            await self.kill()
            raise TimeoutError("the broker did not stop after SIGTERM in time") from None

    async def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """Every sample of its /metrics: (name, sorted labels) -> value."""
        text = await asyncio.to_thread(_get, f"http://127.0.0.1:{self.rest_port}/metrics")
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    async def sent(self) -> Sent:
        samples = await self.metrics()
        return Sent(
            session_bytes=samples.get(("brokkr_session_bytes_sent_total", ()), 0.0),
            stack_updates=samples.get(("brokkr_stack_updates_sent_total", (("kind", "update"),)), 0.0),
        )

    def _ready(self) -> bool:
        try:
            _get(f"http://127.0.0.1:{self.rest_port}/readyz")
        except (urllib.error.URLError, ConnectionError):
            return False
        return True


def free_port() -> int:
    """A loopback port free right now (the broker binds it a moment later)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.read().decode()
