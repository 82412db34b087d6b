"""A TCP proxy the test controls, to black-hole traffic without closing a single socket.

A network partition rarely looks like a closed connection: packets just stop arriving, no FIN, no
RST. `BlackHoleProxy.pause()` reproduces that on loopback: the proxy stops reading from either
side (so the kernel's buffers fill and the peers' writes stall, exactly as over a dead link) and
keeps every socket open; new connections are accepted and go nowhere. `resume()` lets everything
flow again, buffered bytes included. Closing on one side is passed on to the other.
"""

from __future__ import annotations

import asyncio
import contextlib

_CHUNK_BYTES = 64 * 1024


class BlackHoleProxy:
    """Forwards 127.0.0.1:<port> to `upstream` (`host:port`) until `close()`."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit(":", 1)
        self._upstream = (host, int(port))
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._server: asyncio.Server | None = None
        self._pumps: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = 0
        #: Connections accepted so far, paused or not.
        self.connections = 0

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    def pause(self) -> None:
        """Black-hole every connection, open or yet to come."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._pumps):
            task.cancel()
        await asyncio.gather(*self._pumps, return_exceptions=True)
        for writer in list(self._writers):
            writer.close()
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.add(client_writer)
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(*self._upstream)
        except OSError:
            client_writer.close()
            self._writers.discard(client_writer)
            return
        self._writers.add(upstream_writer)
        for reader, writer in ((client_reader, upstream_writer), (upstream_reader, client_writer)):
            task = asyncio.create_task(self._pump(reader, writer), name="proxy-pump")
            self._pumps.add(task)
            task.add_done_callback(self._pumps.discard)

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await self._flowing.wait()  # paused: read nothing, so nothing moves
                data = await reader.read(_CHUNK_BYTES)
                if not data:
                    break
                await self._flowing.wait()  # paused meanwhile: hold what was read
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                writer.close()
            self._writers.discard(writer)
