"""The object store: what etcd is to a real API server.

Objects are kept by (group, resource, namespace, name) — not by version, so a custom resource served
at two versions is one object. Every write takes the next value of one global counter as its
`resourceVersion` (a string, as upstream) and counts as a write, which is what tests assert "nothing
was written" with. Callers hold `lock` around read-modify-write sequences.

Every write and deletion is also kept as an `Event` (ADDED, MODIFIED, DELETED with the object as
stored, or as last stored for a deletion) for watches, in a history of the latest
`history_limit` events; `compact()` forgets all of it, as etcd compaction does, so a watch from
an older resourceVersion is answered 410 Gone. `changed` is notified on every event.
"""

from __future__ import annotations

import copy
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from tests.kube_double.errors import JSON


@dataclass(frozen=True)
class ObjectKey:
    group: str
    resource: str
    namespace: str  # "" for cluster-scoped objects
    name: str


@dataclass(frozen=True)
class Event:
    """One change of the store, as a watch reports it."""

    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    key: ObjectKey
    obj: JSON


class Store:
    def __init__(self, first_resource_version: int = 1000, history_limit: int = 10_000) -> None:
        self.lock = threading.RLock()
        #: Notified (under `lock`) whenever an event is added.
        self.changed = threading.Condition(self.lock)
        self._objects: dict[ObjectKey, JSON] = {}
        self._resource_version = first_resource_version
        self._writes = 0
        self._events: deque[Event] = deque(maxlen=history_limit)
        #: Watches from this resourceVersion or later can be served from the history.
        self._oldest = first_resource_version

    @property
    def resource_version(self) -> str:
        """The resourceVersion of the latest write (what a list reports)."""
        with self.lock:
            return str(self._resource_version)

    @property
    def writes(self) -> int:
        """How many creates, updates and deletes have been stored."""
        with self.lock:
            return self._writes

    def get(self, key: ObjectKey) -> JSON | None:
        with self.lock:
            found = self._objects.get(key)
            return copy.deepcopy(found) if found is not None else None

    def list(self, group: str, resource: str, namespace: str | None = None) -> list[JSON]:
        """Objects of one resource (in one namespace, or all), ordered by namespace and name."""
        with self.lock:
            keys = sorted(
                (k for k in self._objects if (k.group, k.resource) == (group, resource)),
                key=lambda k: (k.namespace, k.name),
            )
            return [
                copy.deepcopy(self._objects[k]) for k in keys if namespace is None or k.namespace == namespace
            ]

    def put(self, key: ObjectKey, obj: JSON) -> JSON:
        """Store `obj` under the next resourceVersion; returns the stored copy."""
        with self.lock:
            self._resource_version += 1
            self._writes += 1
            stored = copy.deepcopy(obj)
            stored.setdefault("metadata", {})["resourceVersion"] = str(self._resource_version)
            change = "MODIFIED" if key in self._objects else "ADDED"
            self._objects[key] = stored
            self._record(change, key, stored)
            return copy.deepcopy(stored)

    def delete(self, key: ObjectKey) -> JSON | None:
        with self.lock:
            removed = self._objects.pop(key, None)
            if removed is not None:
                self._resource_version += 1
                self._writes += 1
                last = copy.deepcopy(removed)
                last.setdefault("metadata", {})["resourceVersion"] = str(self._resource_version)
                self._record("DELETED", key, last)
            return removed

    def delete_where(self, predicate: Callable[[ObjectKey], bool]) -> int:
        """Delete every object whose key matches; returns how many."""
        with self.lock:
            doomed = [k for k in self._objects if predicate(k)]
            for key in doomed:
                self.delete(key)
            return len(doomed)

    # -- history, for watches ----------------------------------------------------------------------

    def _record(self, change: str, key: ObjectKey, obj: JSON) -> None:
        if len(self._events) == self._events.maxlen:
            self._oldest = self._events[0].resource_version
        self._events.append(Event(self._resource_version, change, key, copy.deepcopy(obj)))
        self.changed.notify_all()

    def events_after(self, resource_version: int) -> list[Event] | None:
        """The events after `resource_version`, oldest first; None if the history no longer
        reaches back that far (a watch from there is 410 Gone)."""
        with self.lock:
            if resource_version < self._oldest:
                return None
            return [event for event in self._events if event.resource_version > resource_version]

    def compact(self) -> None:
        """Forget the history: watches from any earlier resourceVersion are 410 Gone from now on."""
        with self.lock:
            self._events.clear()
            self._oldest = self._resource_version
