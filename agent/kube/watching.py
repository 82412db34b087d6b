"""Watching the objects of the stacks the agent holds, so that a change of their status gets their
health re-assessed within moments instead of at the next periodic assessment.

Health is read, not pushed (`agent.kube.assessing`): re-reading every `health.interval_seconds`
alone would leave a crash loop unreported for up to that long, and polling faster costs the API
server. Kubernetes watches say when something changed, for one long-lived request per watched
collection. For every kind the held stacks contain there is one watch: in the agent's namespace
if it is confined to one, else across all namespaces, selecting the members of the held stacks'
ApplySets (`applyset.kubernetes.io/part-of in (...)`). Every ADDED, MODIFIED or DELETED event
calls `on_change`; the runtime debounces (a rollout is a burst of status updates) and re-assesses.
Pods are not watched: a workload's own status changes when its pods' readiness does, and the
pods are read when the workload is assessed.

Each watch starts from the resourceVersion of a list (`limit=1`: one object, so it is cheap) and
resumes from the last event or BOOKMARK it saw when the server ends it (`timeoutSeconds`). When the
server answers 410 Gone (that version was compacted away), it lists again and calls `on_change`,
since events may have been missed. Any other failure (no `watch` permission, API server
unreachable) is retried with capped, jittered backoff; the periodic assessment is the safety net
meanwhile, and a watch is never a reason to nack or to fail readiness.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from typing import Any

from agent.kube.client import KubeClient, Obj
from agent.reconcile.errors import ClusterError, classify
from brokkr_common.log import get_logger

log = get_logger("brokkr.agent.kube")

#: Event types that say an object changed.
CHANGES = frozenset({"ADDED", "MODIFIED", "DELETED"})
#: The resourceVersion of a watch that must start from a fresh list.
FRESH = ""


class Watches:
    """The open watches, one per collection path, each with its label selector.

    `timeout_seconds` is how long the server keeps one watch request open (a little jitter is
    added, as client-go does, so reconnects spread out); `max_backoff` caps the wait after failures.
    """

    def __init__(
        self,
        api: KubeClient,
        on_change: Callable[[], None],
        *,
        timeout_seconds: int = 300,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
    ) -> None:
        self._api = api
        self._on_change = on_change
        self._timeout = timeout_seconds
        self._backoff = backoff_seconds
        self._max_backoff = max_backoff_seconds
        self._watching: dict[str, tuple[str, asyncio.Task[None]]] = {}

    @property
    def targets(self) -> dict[str, str]:
        """The label selector of each collection path watched."""
        return {path: selector for path, (selector, _) in self._watching.items()}

    def track(self, targets: Mapping[str, str]) -> None:
        """Watch exactly `targets` (label selector by collection path): start what is new, stop
        what is gone, restart what has a new selector."""
        for path, (selector, task) in list(self._watching.items()):
            if targets.get(path) != selector:
                task.cancel()
                del self._watching[path]
        for path, selector in targets.items():
            if path not in self._watching:
                task = asyncio.create_task(self._run(path, selector), name=f"watch {path}")
                self._watching[path] = (selector, task)

    async def close(self) -> None:
        """Stop every watch."""
        tasks = [task for _, task in self._watching.values()]
        self._watching.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, path: str, selector: str) -> None:
        version, failures, listed = FRESH, 0, False
        while True:
            try:
                if version == FRESH:
                    version = await self._list_version(path, selector)
                    if listed:  # a relist: what happened in between was not seen
                        self._on_change()
                    listed = True
                version, events = await self._watch(path, selector, version)
                failures = 0 if events else failures + 1
                if events:
                    continue
            except ClusterError as error:
                failures += 1
                if failures == 1:
                    log.warning("watch_failed", path=path, reason=error.reason, error=error.message)
            # A watch that ends without any event, or fails, is retried after a backoff, so a
            # server that ends every watch at once is not asked again in a tight loop.
            cap = min(self._max_backoff, self._backoff * 2 ** max(failures - 1, 0))
            await asyncio.sleep(random.uniform(cap / 2, cap))  # noqa: S311 - jitter

    async def _list_version(self, path: str, selector: str) -> str:
        query = [("limit", "1"), ("labelSelector", selector)]
        answer = await self._api.request("GET", path, query=query)
        metadata = answer.body.get("metadata")
        version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
        return version if isinstance(version, str) else FRESH

    async def _watch(self, path: str, selector: str, version: str) -> tuple[str, int]:
        """One watch request from `version`: the version to resume from and how many events came."""
        seconds = self._timeout + random.randint(0, self._timeout // 10)  # noqa: S311 - jitter
        query = [
            ("watch", "true"),
            ("labelSelector", selector),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(seconds)),
        ]
        seen = _Seen(version, self._on_change)
        await self._api.stream(path, query, seen.event, read_timeout=seconds + 30)
        if seen.error is not None:
            if seen.code == 410:
                return FRESH, seen.events
            raise seen.error
        return seen.version, seen.events


class _Seen:
    """What one watch request delivered; `event` runs on the event loop for each event."""

    def __init__(self, version: str, on_change: Callable[[], None]) -> None:
        self.version = version
        self.events = 0
        self.code = 0
        self.error: ClusterError | None = None
        self._on_change = on_change

    def event(self, event: Obj) -> None:
        self.events += 1
        kind, obj = event.get("type"), event.get("object")
        if not isinstance(obj, Mapping):
            return
        if kind == "ERROR":
            code = obj.get("code")
            self.code = code if isinstance(code, int) else 0
            self.error = classify(self.code or 500, dict(obj))
            return
        version = _resource_version(obj)
        if version:
            self.version = version
        if kind in CHANGES:
            self._on_change()


def _resource_version(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    version = metadata.get("resourceVersion") if isinstance(metadata, Mapping) else None
    return version if isinstance(version, str) else ""
