"""The fan-out benchmark's processes: children driven over a pipe, and what /proc says of any.

Simulated agents, floor clients and the floor server each run in their own process, on one asyncio
loop, around a handler object. The parent sends `(method, args)` and gets back the method's return
value, or the child's traceback raised as `WorkerFailed`. A child dies with the parent
(PR_SET_PDEATHSIG) and stops at EOF on its pipe, so no process outlives a crashed or killed run.
Memory and CPU time of the processes under test are read from /proc, from the outside.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import resource
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

_PR_SET_PDEATHSIG = 1
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_GRACE_SECONDS = 5.0


class WorkerFailed(Exception):
    """A child process raised; the message carries its traceback."""


def raise_open_files_limit() -> None:
    """Lift the soft open-files limit to the hard one: every stream is a socket."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def die_with_parent(parent_pid: int) -> None:
    """Have the kernel kill this process when its parent exits, however that happens."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit(1)


def rss_kib(pid: int) -> int:
    """Resident memory of process `pid` (VmRSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def cpu_percent(pid: int, seconds: float) -> float:
    """CPU use of process `pid` over the next `seconds`, in % of one core."""
    before, started = cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(seconds)
    return (cpu_seconds(pid) - before) / (time.monotonic() - started) * 100


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time process `pid` has used, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


class Worker:
    """The parent's handle on one child running `handler_type(*args)`; `ready()` first."""

    def __init__(self, name: str, handler_type: type, *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self.name = name
        self._conn, child_end = context.Pipe()
        self._process = context.Process(
            target=_child_main,
            args=(child_end, os.getpid(), handler_type, args),
            name=name,
            daemon=True,
        )
        self._process.start()
        child_end.close()

    @property
    def pid(self) -> int:
        assert self._process.pid is not None
        return self._process.pid

    async def ready(self, deadline: float) -> None:
        """Wait until the child has imported everything and built its handler."""
        await self._reply("start-up", deadline)

    async def call(self, method: str, *args: Any, deadline: float) -> Any:
        """Run `handler.method(*args)` in the child and return its result; give up at `deadline`
        (seconds since the epoch) plus a grace period for the child to report its own timeout."""
        self._conn.send((method, args))
        return await self._reply(method, deadline)

    async def _reply(self, what: str, deadline: float) -> Any:
        if not await asyncio.to_thread(self._conn.poll, max(deadline - time.time(), 0.0) + _GRACE_SECONDS):
            raise TimeoutError(f"{self.name}: {what} did not finish in time")
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise WorkerFailed(f"{self.name} exited (code {self._process.exitcode})") from None
        if status == "error":
            raise WorkerFailed(f"{self.name}: {what} failed:\n{value}")
        return value

    def kill(self) -> None:
        """End the child now; nothing it holds needs a graceful shutdown."""
        self._conn.close()
        if self._process.is_alive():
            self._process.kill()
        self._process.join(10)


def _child_main(conn: Connection, parent_pid: int, handler_type: type, args: tuple[Any, ...]) -> None:
    die_with_parent(parent_pid)
    raise_open_files_limit()
    handler = handler_type(*args)
    conn.send(("ok", None))  # ready
    asyncio.run(_serve(conn, handler))


async def _serve(conn: Connection, handler: Any) -> None:
    while True:
        try:
            method, args = await asyncio.to_thread(conn.recv)
        except EOFError:
            return
        try:
            reply = ("ok", await getattr(handler, method)(*args))
        except Exception:
            reply = ("error", traceback.format_exc())
        conn.send(reply)
