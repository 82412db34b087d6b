"""A real HTTP webhook receiver on 127.0.0.1 for tests: answers from a script and keeps every request.

It runs a standard-library threaded HTTP server in its own thread, so it serves brokers running on
the test's event loop and brokers running in a harness thread alike. `script` lists what to do with
each request in turn (an HTTP status, a (status, headers) pair, or HANG to hold the request until
the receiver stops); after the script runs out it answers `then`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"
Answer = int | str | tuple[int, dict[str, str]]


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    script: list[Answer] = field(default_factory=list)
    then: int = 200
    #: Seconds to wait before answering each request.
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _release: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/hooks/brokkr?token=s3cr3t-token") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_answer(self, received: Received) -> Answer:
        with self._lock:
            self.requests.append(received)
            return self.script.pop(0) if self.script else self.then

    def event_ids(self) -> list[str]:
        with self._lock:
            return [r.headers["Brokkr-Event-Id"] for r in self.requests]


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            answer = receiver.next_answer(Received(self.path, dict(self.headers.items()), body))
            if receiver.delay:
                time.sleep(receiver.delay)
            if answer == HANG:
                receiver._release.wait(30)
                return
            status, headers = answer if isinstance(answer, tuple) else (int(answer), {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            return

    return Handler


def start(
    script: Sequence[Answer] = (), then: int = 200, delay: float = 0.0
) -> tuple[Receiver, ThreadingHTTPServer]:
    receiver = Receiver(list(script), then, delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="webhook-receiver", daemon=True).start()
    return receiver, server


def stop(receiver: Receiver, server: ThreadingHTTPServer) -> None:
    receiver._release.set()
    server.shutdown()
    server.server_close()


def running(script: Sequence[Answer] = (), then: int = 200, delay: float = 0.0) -> Iterator[Receiver]:
    receiver, server = start(script, then, delay)
    try:
        yield receiver
    finally:
        stop(receiver, server)
