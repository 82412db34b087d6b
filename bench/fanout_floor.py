"""The floor: a bare `grpc.aio` server pushing the same number of bytes to N plain bidi streams.

No database, no protocol state, no authentication: a client opens a stream and says hello, the
server answers with its clock (the floor's Welcome) and from then on writes whatever is pushed.
A push is serialized once and the same bytes go to every stream, as the broker does with an
update. The server and its clients run in their own processes, on the same cores and with the
same server limits (`grpc.server.max_pending_requests`) as the broker's, so what the broker adds
on top of moving bytes is what the ratios to this floor show.
"""

from __future__ import annotations

import asyncio
import math
import struct
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

import grpc

from bench.fanout_workers import Worker, cpu_percent, rss_kib

_METHOD = "/bench.Floor/Stream"
_CLOCK = struct.Struct("!d")
_PUSH_ID = struct.Struct("!Q")
_POLL_SECONDS = 0.05
#: As in `bench.fanout_agents`: one TCP connection per stream.
_OWN_CONNECTION = [("grpc.use_local_subchannel_pool", 1)]
#: The broker's default (`grpc.max_pending_requests`): thousands of streams arrive at once.
_SERVER_OPTIONS = [
    ("grpc.server.max_pending_requests", 20000),
    ("grpc.server.max_pending_requests_hard_limit", 40000),
]


@dataclass(frozen=True)
class FloorFigures:
    connect_s: float
    #: Per push size, in the order given: each stream's time from push to receipt, in seconds.
    latencies: list[list[float]]
    rss_kib_per_stream: float
    idle_cpu_pct: float


class FloorServer:
    """The handler of the floor server's process (see `bench.fanout_workers`)."""

    def __init__(self) -> None:
        self._streams: list[asyncio.Queue[bytes]] = []
        self._server: grpc.aio.Server | None = None

    async def start(self) -> int:
        """Start serving on a free loopback port and return it."""
        handler = grpc.method_handlers_generic_handler(
            "bench.Floor", {"Stream": grpc.stream_stream_rpc_method_handler(self._stream)}
        )
        self._server = grpc.aio.server(options=_SERVER_OPTIONS)
        self._server.add_generic_rpc_handlers((handler,))
        port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()
        return port

    async def push(self, push_id: int, size: int) -> float:
        """Queue `size` bytes to every stream; returns when the push started."""
        started = time.time()
        payload = _PUSH_ID.pack(push_id).ljust(size, b"x")
        for stream in self._streams:
            stream.put_nowait(payload)
        return started

    async def _stream(
        self, requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[bytes]:
        async for _hello in requests:
            break
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        self._streams.append(queue)
        try:
            yield _CLOCK.pack(time.time())
            while True:
                yield await queue.get()
        finally:
            self._streams.remove(queue)


class FloorClients:
    """The handler of one floor client process: `count` streams, one channel each."""

    def __init__(self, target: str, count: int) -> None:
        self._target = target
        self._count = count
        self._welcomed: list[float] = []
        self._received: dict[int, list[float]] = {}
        self._tasks: list[asyncio.Task[None]] = []  # referenced, so the streams are not collected

    async def start(self) -> float:
        """Open every stream; returns when this began."""
        started = time.time()
        self._tasks = [asyncio.create_task(self._stream()) for _ in range(self._count)]
        return started

    async def welcomed(self, deadline: float) -> list[float]:
        """The server's time of each stream's welcome, once every stream has one."""
        await self._until(lambda: len(self._welcomed) >= self._count, deadline, "welcomed")
        return self._welcomed

    async def received(self, push_id: int, deadline: float) -> list[float]:
        """When each stream received push `push_id`, once every stream has."""
        times = self._received.setdefault(push_id, [])
        await self._until(lambda: len(times) >= self._count, deadline, f"given push {push_id}")
        return times

    async def _until(self, done: Callable[[], bool], deadline: float, what: str) -> None:
        while not done():
            if time.time() > deadline:
                raise TimeoutError(f"not every floor stream was {what} in time")
            await asyncio.sleep(_POLL_SECONDS)

    async def _stream(self) -> None:
        stay_open = asyncio.Event()

        async def hello() -> AsyncIterator[bytes]:
            yield b"hello"
            await stay_open.wait()

        async with grpc.aio.insecure_channel(self._target, options=_OWN_CONNECTION) as channel:
            call = channel.stream_stream(_METHOD)(hello())  # bytes in, bytes out
            welcome = True
            async for message in call:
                if welcome:
                    self._welcomed.append(_CLOCK.unpack(message)[0])
                    welcome = False
                else:
                    (push_id,) = _PUSH_ID.unpack_from(message)
                    self._received.setdefault(push_id, []).append(time.time())


async def measure_floor(
    streams: int, push_sizes: Sequence[int], processes: int, idle_seconds: float, deadline: float
) -> FloorFigures:
    """Start the floor server and `streams` clients, push each size in turn, measure, stop."""
    server = Worker("floor-server", FloorServer)
    clients: list[Worker] = []
    try:
        await server.ready(deadline)
        port = await server.call("start", deadline=deadline)
        rss_before = rss_kib(server.pid)
        per_process = math.ceil(streams / processes)
        counts = [min(per_process, streams - start) for start in range(0, streams, per_process)]
        clients = [
            Worker(f"floor-clients-{i}", FloorClients, f"127.0.0.1:{port}", count)
            for i, count in enumerate(counts)
        ]
        await asyncio.gather(*(c.ready(deadline) for c in clients))
        started = min(await asyncio.gather(*(c.call("start", deadline=deadline) for c in clients)))
        welcomed = await _gathered(clients, "welcomed", deadline=deadline)
        connect_s = max(welcomed) - started
        rss = (rss_kib(server.pid) - rss_before) / streams
        latencies = []
        for push_id, size in enumerate(push_sizes, start=1):
            pushed = await server.call("push", push_id, size, deadline=deadline)
            received = await _gathered(clients, "received", push_id, deadline=deadline)
            latencies.append([at - pushed for at in received])
        idle_cpu_pct = await cpu_percent(server.pid, idle_seconds)
        return FloorFigures(connect_s, latencies, rss, idle_cpu_pct)
    finally:
        for worker in (*clients, server):
            worker.kill()


async def _gathered(workers: Sequence[Worker], method: str, *args: object, deadline: float) -> list[float]:
    """Call `method(*args, deadline)` in every client process; their answers, concatenated."""
    replies = await asyncio.gather(*(w.call(method, *args, deadline, deadline=deadline) for w in workers))
    return [value for reply in replies for value in reply]
