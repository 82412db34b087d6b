"""The HTTP front of the double: a threaded server on 127.0.0.1 that clients reach over real HTTP.

The official client is synchronous and tests may run their own asyncio loops, so the server runs
its own threads and never touches the test's event loop. Each request goes through bearer-token
authentication (401), injected failures, routing (a discovery document or a served resource, else
upstream's generic 404), RBAC-like denials (403), then the `Backend` (a watch is streamed instead,
see `watching`); every request lands in the request log. HTTP/1.1 keep-alive is on, as urllib3
expects; `stop()` releases hung requests, ends watches, closes
open connections and joins handler threads, each wait bounded.

A bug in the double itself is answered 500 and kept in `internal_errors`; the `kube_api` fixture
fails the test if there are any, so a broken double never passes for a flaky cluster.
"""

from __future__ import annotations

import contextlib
import json
import re
import select
import socket
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from tests.kube_double import discovery
from tests.kube_double.calls import Call
from tests.kube_double.cluster import Cluster
from tests.kube_double.errors import JSON, ApiError, internal_error, resource_not_found, unauthorized
from tests.kube_double.faults import Denial, Failure, Faults, RecordedRequest, denial_error
from tests.kube_double.logs import Logs
from tests.kube_double.routing import RequestInfo, request_info, resolve
from tests.kube_double.verbs import Reply, Verbs
from tests.kube_double.watching import Watch

#: The identity denials name in their message (the agent's service account, typically).
DEFAULT_USER = "system:serviceaccount:brokkr-system:brokkr-agent"
#: How long `stop()` waits for each thread.
_JOIN_SECONDS = 5.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, double: KubeApiServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.double = double
        self.connections: dict[socket.socket, threading.Thread] = {}
        self.connections_lock = threading.Lock()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that went away mid-answer is normal here (timeouts, drops); stay quiet about it."""

    def close_connections(self) -> None:
        with self.connections_lock:
            open_connections = dict(self.connections)
        for connection in open_connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        for thread in open_connections.values():
            thread.join(_JOIN_SECONDS)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Answers go out in one segment; without this, Nagle plus delayed ACKs add 40 ms per request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.connections_lock:
            self.server.connections[self.connection] = threading.current_thread()

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.pop(self.connection, None)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is the record."""

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.double.serve(self.command, self.path, dict(self.headers.items()), body)
        if isinstance(reply, Watch):
            self._stream(reply)
            return
        if reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        payload = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
        self.send_response(reply.code)
        self.send_header("Content-Type", "text/plain" if reply.raw is not None else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        for warning in reply.warnings:
            self.send_header("Warning", f"299 - {json.dumps(warning)}")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _stream(self, watch: Watch) -> None:
        """A watch's events, one JSON line per HTTP chunk, until the watch or the client ends."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        watch.client_gone = self._client_gone
        try:
            for event in watch.events():
                line = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            self.close_connection = True

    def _client_gone(self) -> bool:
        """Whether the client closed its end (a watch request sends nothing more until then)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True


class KubeApiServer:
    """A Kubernetes API server double on 127.0.0.1:<free port>, plus the levers tests pull."""

    def __init__(self, token: str = "kube-double-token", user: str = DEFAULT_USER) -> None:
        #: The bearer token every request must carry.
        self.token = token
        #: Who denials say was refused.
        self.user = user
        self.cluster = Cluster()
        self.verbs = Verbs(self.cluster)
        self.faults = Faults()
        self.logs = Logs()
        #: Set to end every open watch (`end_watches`, `stop`).
        self._watches_end = threading.Event()
        #: Tracebacks of requests the double itself failed on (its bugs).
        self.internal_errors: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self) -> Self:
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="kube-double", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: release hung requests, close open connections, join threads (bounded)."""
        if self._server is None:
            return
        server, self._server = self._server, None
        self.faults.release_hangs(for_good=True)
        self._watches_end.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(_JOIN_SECONDS)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the kube double is not running")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # -- one request -------------------------------------------------------------------------------

    def serve(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> Reply | Watch | None:
        """Answer one HTTP request; None means "close the connection without an answer", a
        `Watch` "stream its events"."""
        split = urlsplit(raw_path)
        path, query = unquote(split.path), parse_qs(split.query, keep_blank_values=True)
        info = request_info(method, path, query)
        try:
            reply = self._answer(method, path, query, headers, body, info)
        except ApiError as error:
            reply = Reply(error.code, error.status(), headers=error.headers)
        except Exception as error:  # a bug in the double: answer, and make the test fail
            self.internal_errors.append(traceback.format_exc())
            failure = internal_error(f"kube double bug: {error!r}")
            reply = Reply(failure.code, failure.status())
        content_type = _header(headers, "Content-Type")
        manager = query.get("fieldManager", [""])[0]
        status = 200 if isinstance(reply, Watch) else reply.code if reply is not None else 0
        self.faults.record(RecordedRequest(method, path, query, content_type, manager, info.verb, status))
        return reply

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        info: RequestInfo,
    ) -> Reply | Watch | None:
        if _header(headers, "Authorization") != f"Bearer {self.token}":
            raise unauthorized()
        failure = self.faults.take(info.verb, path)
        if failure is not None and failure.action != "status":
            if failure.action == "hang":
                self.faults.hang()
            return None
        if not info.resource_request:
            if failure is not None:
                raise failure.error(None, "")
            document = self._discovery_document(method, path)
            if document is None:
                raise resource_not_found()
            return Reply(200, document)
        target = resolve(info, self.cluster.registry)
        resource = target.resource_type.group_resource
        if failure is not None:
            raise failure.error(resource, target.name)
        if self.faults.denied(info.verb, resource.group, info.authorized_resource, target.namespace):
            raise denial_error(
                self.user, info.verb, resource.group, info.authorized_resource, target.name, target.namespace
            )
        call = Call(
            info.verb, target, query, body, _header(headers, "Content-Type"), _header(headers, "User-Agent")
        )
        if info.verb == "watch":
            return Watch(self.cluster.store, call, self._watches_end)
        if target.subresource == "log":
            pod = self.cluster.get_object("v1", "Pod", target.namespace, target.name)
            return Reply(200, {}, raw=self.logs.read(pod, target.namespace or "", target.name, query))
        return self.verbs.handle(call)

    def _discovery_document(self, method: str, path: str) -> JSON | None:
        parts = [p for p in path.split("/") if p]
        if method != "GET":
            return None
        if parts == ["version"]:
            return discovery.version()
        if parts == ["api"]:
            return discovery.core_versions(self.url.removeprefix("http://"))
        if parts == ["apis"]:
            return discovery.group_list(self.cluster.registry)
        if len(parts) == 2 and parts[0] == "api":
            return discovery.resource_list(self.cluster.registry, "", parts[1])
        if len(parts) == 2 and parts[0] == "apis":
            return discovery.group(self.cluster.registry, parts[1])
        if len(parts) == 3 and parts[0] == "apis":
            return discovery.resource_list(self.cluster.registry, parts[1], parts[2])
        return None

    # -- levers: failures, denials, the request log -------------------------------------------------

    def fail_next(
        self, verb: str, path: str, code: int, times: int = 1, retry_after_seconds: int = 1
    ) -> None:
        """Answer the next `times` requests matching `verb` ("*" for any) and the `path` regex with `code`."""
        self.faults.add(Failure(verb, re.compile(path), times, "status", code, retry_after_seconds))

    def hang_next(self, verb: str, path: str, times: int = 1) -> None:
        """Leave the next matching requests unanswered until `release_hangs()` or `stop()`."""
        self.faults.add(Failure(verb, re.compile(path), times, "hang"))

    def drop_next(self, verb: str, path: str, times: int = 1) -> None:
        """Close the connection of the next matching requests without answering."""
        self.faults.add(Failure(verb, re.compile(path), times, "drop"))

    def release_hangs(self) -> None:
        self.faults.release_hangs()

    def end_watches(self) -> None:
        """End every open watch now (as an API server restart or its watch timeout would)."""
        ended, self._watches_end = self._watches_end, threading.Event()
        ended.set()

    def compact(self) -> None:
        """Forget the store's history: a watch resuming from an earlier resourceVersion gets 410."""
        self.cluster.store.compact()

    def deny(self, verb: str, resource: str, group: str | None = None, namespace: str | None = None) -> None:
        """Forbid `verb` ("*": all) on `resource` ("deployments", "deployments/status", "*") to the user."""
        self.faults.deny(Denial(verb, resource, group, namespace))

    def confine(self, namespace: str) -> None:
        """Forbid the user every resource request outside `namespace`, as a Role there would."""
        self.faults.deny(Denial("*", "*", outside=namespace))

    def requests(self) -> list[RecordedRequest]:
        """Every request so far, oldest first (`status` 0: left unanswered)."""
        return self.faults.requests()

    def clear_requests(self) -> None:
        self.faults.clear_requests()

    # -- levers: the cluster's state ----------------------------------------------------------------

    @property
    def write_count(self) -> int:
        """How many writes (creates, updates, deletes) the store has taken, helpers' included."""
        return self.cluster.store.writes

    def put_object(self, obj: JSON) -> JSON:
        """Store `obj` as is: no validation, no managedFields (its first apply meets `before-first-apply`)."""
        return self.cluster.put_object(obj)

    def set_log(self, namespace: str, pod: str, container: str, text: str, *, previous: bool = False) -> None:
        """What `pods/log` answers for the container (its previous instance with `previous`)."""
        self.logs.set(namespace, pod, container, text, previous=previous)

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        return self.cluster.get_object(api_version, kind, namespace, name)

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        return self.cluster.list_objects(api_version, kind, namespace)

    def delete_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        return self.cluster.delete_object(api_version, kind, namespace, name)

    def set_status(
        self,
        api_version: str,
        kind: str,
        namespace: str | None,
        name: str,
        status: JSON,
        manager: str = "kube-controller-manager",
    ) -> JSON:
        return self.cluster.set_status(api_version, kind, namespace, name, status, manager)

    @property
    def auto_establish_crds(self) -> bool:
        """Whether new CRDs are Established at once (default); set False to establish them by hand."""
        return self.cluster.auto_establish_crds

    @auto_establish_crds.setter
    def auto_establish_crds(self, value: bool) -> None:
        self.cluster.auto_establish_crds = value

    def establish_crd(self, name: str) -> JSON:
        return self.cluster.establish_crd(name)


def _header(headers: dict[str, str], name: str) -> str:
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), "")
