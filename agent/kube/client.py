"""The agent's one door to the Kubernetes API: the official client's blocking calls, off the event loop.

The agent applies objects of any kind, built-in or custom, as plain JSON, and needs what the typed
APIs and the dynamic client hide: the HTTP status (201 means created), the `Status` body and the
Retry-After header of a failure. So every call here is a raw `ApiClient.call_api` on a path built
from discovery, while the official client still does what it is good at: kubeconfig contexts,
in-cluster service-account tokens (re-read as they rotate), TLS and connection pooling.

The official client is synchronous. Each request runs in a small thread pool of its own (as many
threads as pooled connections, `max_concurrency`), so no call blocks the event loop and no more
requests are in flight than connections exist. Every request carries the configured timeout.
urllib3's own retries are off: `retrying` is the one retry policy, so `max_apply_retries` means
what it says.

Watches (`stream`) are long-lived requests, each holding a thread of a separate pool for as long
as it is open, so they never take a thread from the requests above.

A non-2xx answer is raised as the `ClusterError` that `agent.reconcile.errors.classify` makes of
it, a request without an answer as `transport_error`. One API server quirk is classified here,
because `classify` does not know it yet: a server-side apply of a field the schema does not
declare is answered 500 "failed to create typed patch object" (kubernetes#122480), which no retry
fixes, so it is permanent, INVALID_OBJECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from agent.config import KubernetesSettings
from agent.kube.retrying import RetryPolicy, retrying
from agent.reconcile.errors import (
    INVALID_OBJECT,
    MISSING_KIND,
    MISSING_NAMESPACE,
    ClusterError,
    PermanentError,
    TemporaryError,
    classify,
    transport_error,
)
from brokkr_common.errors import InvalidArgument

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
#: Objects per page when listing: big enough for few round trips, small enough to bound memory.
PAGE_SIZE = 500
#: Watches open at once at most (one per watched kind, typically), each holding a thread.
MAX_STREAMS = 64

Obj = dict[str, Any]
Query = Iterable[tuple[str, str]]

_TYPED_PATCH_FAILURE = "failed to create typed patch object"

#: What `classify` calls a 404 on an object path: the object (or its kind, or namespace) is gone.
_GONE = frozenset({"NOT_FOUND", MISSING_KIND, MISSING_NAMESPACE})

T = TypeVar("T")


@dataclass(frozen=True)
class Response:
    """A successful answer: its HTTP status and its JSON body ({} when the body is not an object)."""

    status: int
    body: Obj

    @property
    def resource_version(self) -> str:
        metadata = self.body.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
        return version if isinstance(version, str) else ""


class KubeClient:
    """Asynchronous requests to one API server, each retried by `retry` while temporary."""

    def __init__(
        self, api_client: client.ApiClient, *, timeout: float, retry: RetryPolicy, max_concurrency: int = 8
    ) -> None:
        self._api = api_client
        self._timeout = timeout
        self._retry = retry
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="brokkr-kube")
        self._streams = ThreadPoolExecutor(MAX_STREAMS, thread_name_prefix="brokkr-kube-watch")
        self._open: set[Any] = set()
        self._open_lock = threading.Lock()

    @classmethod
    def from_settings(
        cls, settings: KubernetesSettings, *, retry: RetryPolicy | None = None, max_concurrency: int = 8
    ) -> KubeClient:
        """A client for the cluster the settings name (see `configuration`)."""
        api_client = client.ApiClient(configuration(settings, max_concurrency=max_concurrency))
        api_client.user_agent = "brokkr-agent"
        policy = retry or RetryPolicy(retries=settings.max_apply_retries)
        return cls(
            api_client,
            timeout=settings.request_timeout_seconds,
            retry=policy,
            max_concurrency=max_concurrency,
        )

    async def request(
        self, method: str, path: str, *, query: Query = (), body: Obj | None = None, content_type: str = JSON
    ) -> Response:
        """One request, retried while it fails temporarily; raises the last `ClusterError`."""
        attempt = functools.partial(
            self.request_once, method, path, query=list(query), body=body, content_type=content_type
        )
        return await retrying(attempt, self._retry)

    async def request_once(
        self, method: str, path: str, *, query: Query = (), body: Obj | None = None, content_type: str = JSON
    ) -> Response:
        """One request, not retried; raises its `ClusterError`."""
        call = functools.partial(self._call, method, path, list(query), body, content_type)
        return await asyncio.get_running_loop().run_in_executor(self._executor, call)

    async def read_text(self, path: str, *, query: Query = ()) -> bytes:
        """GET an answer that is not JSON (a pod's `log` subresource), retried while temporary."""

        async def attempt() -> bytes:
            call = functools.partial(self._call_text, path, list(query))
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)

        return await retrying(attempt, self._retry)

    async def apply(
        self, path: str, manifest: Obj, *, field_manager: str, force: bool = False, dry_run: bool = False
    ) -> Response:
        """Server-side apply `manifest` at the object URL `path` (201: it created the object)."""
        query = [("fieldManager", field_manager)]
        query += [("force", "true")] if force else []
        query += [("dryRun", "All")] if dry_run else []
        return await self.request("PATCH", path, query=query, body=manifest, content_type=APPLY_PATCH)

    async def delete(self, path: str) -> bool:
        """Delete the object at `path`, its dependents in the background; False if it was gone."""
        try:
            await self.request("DELETE", path, query=[("propagationPolicy", "Background")])
        except ClusterError as error:
            if error.reason in _GONE:
                return False
            raise
        return True

    async def list(self, path: str, *, label_selector: str = "", page_size: int = PAGE_SIZE) -> list[Obj]:
        """Every object the collection at `path` holds (matching `label_selector`), `page_size` a
        request, each with its apiVersion and kind (list items of built-in kinds come without)."""
        items: list[Obj] = []
        token = ""
        while True:
            query = [("limit", str(page_size))]
            query += [("labelSelector", label_selector)] if label_selector else []
            query += [("continue", token)] if token else []
            page = (await self.request("GET", path, query=query)).body
            items.extend(_typed_items(page))
            metadata = page.get("metadata")
            token = metadata.get("continue", "") if isinstance(metadata, Mapping) else ""
            if not token:
                return items

    async def stream(
        self, path: str, query: Query, on_line: Callable[[Obj], None], *, read_timeout: float
    ) -> None:
        """GET `path` (a watch) and call `on_line`, on the event loop, with each JSON object the
        answer streams, one per line; return when the server ends the answer. Not retried; raises
        the `ClusterError` of a failed request, or of a stream silent for `read_timeout` seconds.
        Cancelling the awaiting task closes the connection."""
        loop = asyncio.get_running_loop()
        cancelled = threading.Event()
        deliver = functools.partial(loop.call_soon_threadsafe, on_line)
        call = functools.partial(self._stream, path, list(query), deliver, cancelled, read_timeout)
        try:
            await loop.run_in_executor(self._streams, call)
        finally:
            cancelled.set()
            self._shutdown_streams(only_cancelled=True)

    def close(self) -> None:
        """Stop taking requests and close pooled connections and open watches; requests in flight
        end by timeout."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._shutdown_streams(only_cancelled=False)
        self._streams.shutdown(wait=False, cancel_futures=True)
        self._api.close()

    def _shutdown_streams(self, *, only_cancelled: bool) -> None:
        with self._open_lock:
            doomed = [(r, c) for r, c in self._open if c.is_set() or not only_cancelled]
        for response, _ in doomed:
            # Already closed or released (urllib3 raises ValueError or RuntimeError then).
            with contextlib.suppress(OSError, ValueError, RuntimeError):
                response.shutdown()

    def _stream(
        self,
        path: str,
        query: list[tuple[str, str]],
        deliver: Callable[[Obj], object],
        cancelled: threading.Event,
        read_timeout: float,
    ) -> None:
        """Runs in a stream thread."""
        method, url, headers, body, _ = self._api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": JSON}, auth_settings=["BearerToken"]
        )
        try:
            timeouts = (self._timeout, read_timeout)
            answer = self._api.call_api(method, url, headers, body, _request_timeout=timeouts)
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as error:
            raise transport_error(error) from error
        if not 200 <= answer.status < 300:
            raise failure(answer.status, answer.read(), answer.headers.get("Retry-After"))
        response = answer.response
        entry = (response, cancelled)
        with self._open_lock:
            self._open.add(entry)
        complete = False
        try:
            if cancelled.is_set():
                return
            pending = b""
            for chunk in response.stream(decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip() and isinstance(parsed := _json_line(line), dict):
                        deliver(parsed)
            complete = True
        except (urllib3.exceptions.HTTPError, OSError) as error:
            if not cancelled.is_set():
                raise transport_error(error) from error
        finally:
            with self._open_lock:
                self._open.discard(entry)
            if not complete:
                response.close()  # a connection cut mid-answer cannot carry another request
            response.release_conn()

    def _call(
        self, method: str, path: str, query: list[tuple[str, str]], body: Obj | None, ct: str
    ) -> Response:
        """Runs in a worker thread."""
        method, url, headers, body, _ = self._api.param_serialize(
            method,
            path,
            query_params=query,
            header_params={"Content-Type": ct, "Accept": JSON},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            answer = self._api.call_api(method, url, headers, body, _request_timeout=self._timeout)
            data = answer.read()
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as error:
            raise transport_error(error) from error
        if 200 <= answer.status < 300:
            return Response(answer.status, _object(data))
        raise failure(answer.status, data, answer.headers.get("Retry-After"))

    def _call_text(self, path: str, query: list[tuple[str, str]]) -> bytes:
        """Runs in a worker thread."""
        method, url, headers, body, _ = self._api.param_serialize(
            "GET", path, query_params=query, header_params={"Accept": "*/*"}, auth_settings=["BearerToken"]
        )
        try:
            answer = self._api.call_api(method, url, headers, body, _request_timeout=self._timeout)
            data = answer.read()
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as error:
            raise transport_error(error) from error
        if 200 <= answer.status < 300:
            return data
        raise failure(answer.status, data, answer.headers.get("Retry-After"))


async def gather_all(*requests: Awaitable[T]) -> list[T]:
    """The results of `requests`, run concurrently. If any failed, the first failure (in argument
    order) is raised, but only once all have ended: nothing is left running unobserved."""
    results = await asyncio.gather(*requests, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return cast(list[T], results)


def failure(status: int, body: bytes, retry_after: str | None) -> ClusterError:
    """The classified failure of a non-2xx answer."""
    error = classify(status, body, retry_after)
    if status == 500 and _TYPED_PATCH_FAILURE in error.message:
        return PermanentError(error.message, reason=INVALID_OBJECT)
    return error


def about(subject: str, error: ClusterError) -> ClusterError:
    """`error` with its message saying what it is about, e.g. the object that failed."""
    message = f"{subject}: {error.message}"
    if isinstance(error, TemporaryError):
        return TemporaryError(message, reason=error.reason, delay=error.delay)
    errors = error.errors if isinstance(error, PermanentError) else ()
    return PermanentError(message, reason=error.reason, errors=errors)


def configuration(settings: KubernetesSettings, *, max_concurrency: int = 8) -> client.Configuration:
    """The official client's configuration for the cluster the settings name: a kubeconfig file
    (and context), else the pod's service account; InvalidArgument naming `kubernetes.kubeconfig`
    if that cannot be loaded.
    urllib3's retries are off (see the module docstring); its pool holds `max_concurrency`."""
    loaded = client.Configuration()
    try:
        if settings.kubeconfig is None:
            config.load_incluster_config(client_configuration=loaded)
        else:
            config.load_kube_config(
                config_file=str(settings.kubeconfig),
                context=settings.context,
                client_configuration=loaded,
                persist_config=False,
            )
    except (ConfigException, OSError, ValueError, yaml.YAMLError) as error:
        where = "from it" if settings.kubeconfig is not None else "in-cluster (it is unset)"
        raise InvalidArgument.for_field(
            "kubernetes.kubeconfig",
            f"cannot load the Kubernetes configuration {where}: {error}",
            reason="KUBERNETES_CONFIG",
        ) from error
    loaded.retries = False
    loaded.connection_pool_maxsize = max_concurrency
    return loaded


def _json_line(line: bytes) -> object:
    try:
        return json.loads(line)
    except ValueError:
        return None


def _object(data: bytes) -> Obj:
    try:
        parsed = json.loads(data or b"{}")
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def _typed_items(page: Mapping[str, Any]) -> list[Obj]:
    api_version, list_kind = page.get("apiVersion"), page.get("kind")
    kind = list_kind.removesuffix("List") if isinstance(list_kind, str) else None
    items = page.get("items")
    return [
        {**item, "apiVersion": api_version, "kind": kind}
        for item in (items if isinstance(items, list) else [])
        if isinstance(item, dict)
    ]
