"""Watches: `GET <collection>?watch=true`, streamed as upstream streams them.

The answer is 200 with a chunked body of JSON lines, `{"type": ..., "object": ...}`, one per line,
each object presented at the watched version with its apiVersion and kind:

* From `resourceVersion` "" or "0": an ADDED event for every object that matches now, then the
  changes. From any other resourceVersion: the changes after it, or, when the store's history no
  longer reaches back that far (see `Storage.compact`), a single ERROR event carrying a 410
  `Expired` Status ("too old resource version"), and the end of the answer, as upstream does.
* ADDED, MODIFIED and DELETED events of the watched resource, in one namespace or all, that match
  the label and field selectors; a DELETED event carries the object as last stored, with the
  resourceVersion of the deletion.
* `timeoutSeconds` ends the answer after that long (upstream's default, a random 30-60 minutes,
  is not modelled: without it a watch lasts until the client goes, the server stops or a test
  calls `end_watches`). With `allowWatchBookmarks=true`, a BOOKMARK event carrying the latest
  resourceVersion is sent just before a watch ends by timeout or `end_watches`.

Not modelled: an object whose labels stop (or start) matching the selector is not turned into a
DELETED (ADDED) event, as upstream does, but reported as MODIFIED only while it matches;
`sendInitialEvents`, `resourceVersionMatch` and the watch cache's own window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tests.kube_double.calls import Call
from tests.kube_double.cluster import present
from tests.kube_double.errors import JSON, ApiError, bad_request
from tests.kube_double.selectors import SelectorError, parse_field_selector, parse_label_selector
from tests.kube_double.storage import Event, Store

#: How often a waiting watch looks at its deadline and at the server stopping, in seconds.
_POLL_SECONDS = 0.05


@dataclass
class Watch:
    """A watch request being answered; `events()` yields the lines to stream."""

    store: Store
    call: Call
    #: Set when the server stops or a test ends every open watch.
    ended: threading.Event
    #: Whether the client has gone; the server sets it to look at the connection.
    client_gone: Callable[[], bool] = lambda: False

    def __post_init__(self) -> None:
        call = self.call
        try:
            self._labels = parse_label_selector(call.param("labelSelector"))
            self._fields = parse_field_selector(
                call.param("fieldSelector"), call.resource_type.group_resource
            )
        except SelectorError as error:
            raise bad_request(str(error)) from error
        version = call.param("resourceVersion")
        if version not in ("", "0") and not version.isdigit():
            raise bad_request(f"invalid resource version: {version!r}")
        self._from = int(version) if version.isdigit() and version != "0" else None
        timeout = call.param("timeoutSeconds")
        if timeout and not timeout.isdigit():
            raise bad_request(f"invalid timeoutSeconds: {timeout!r}")
        self._deadline = time.monotonic() + int(timeout) if timeout else None
        self._bookmarks = call.param("allowWatchBookmarks") == "true"

    def events(self) -> Iterator[JSON]:
        """The events of this watch, until its end; each one a line of the answer."""
        store, resource_type = self.store, self.call.resource_type
        with store.lock:
            if self._from is None:
                last = int(store.resource_version)
                current = store.list(resource_type.group, resource_type.plural, self.call.target.namespace)
                initial = [obj for obj in current if self._matches(obj)]
            else:
                last, initial = self._from, []
                if store.events_after(last) is None:
                    yield {"type": "ERROR", "object": _expired(last, int(store.resource_version))}
                    return
        for obj in initial:
            yield {"type": "ADDED", "object": present(resource_type, obj)}
        while not (self.ended.is_set() or self._timed_out() or self.client_gone()):
            with store.lock:
                pending = store.events_after(last)
                if pending is None:  # compacted while watching: upstream keeps watching, so do we
                    pending = []
                    last = int(store.resource_version)
                if not pending:
                    store.changed.wait(_POLL_SECONDS)
                    continue
            for event in pending:
                last = event.resource_version
                if self._selects(event):
                    yield {"type": event.type, "object": present(resource_type, event.obj)}
        if self._bookmarks:
            bookmark = {"metadata": {"resourceVersion": str(last)}}
            yield {"type": "BOOKMARK", "object": present(resource_type, bookmark)}

    def _timed_out(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _selects(self, event: Event) -> bool:
        resource_type, namespace = self.call.resource_type, self.call.target.namespace
        key = event.key
        if (key.group, key.resource) != (resource_type.group, resource_type.plural):
            return False
        return (namespace is None or key.namespace == namespace) and self._matches(event.obj)

    def _matches(self, obj: JSON) -> bool:
        return self._labels.matches(obj.get("metadata", {}).get("labels")) and self._fields.matches(obj)


def _expired(requested: int, current: int) -> JSON:
    return ApiError(410, "Expired", f"too old resource version: {requested} ({current})").status()
