"""Field ownership: `metadata.managedFields`, and how apply and update change it.

This follows sigs.k8s.io/structured-merge-diff's `Updater` and the apiserver's field manager chain:

* **Apply** (`PATCH` with `application/apply-patch+yaml`): the applier's set becomes exactly the
  paths of its configuration. Fields it applied last time and omits now are removed from the object
  unless another manager (applier or updater) still owns them. Any other manager owning a path whose
  value the apply adds or changes is a conflict: 409 unless `force`, which takes the path from them.
  Same value, no change, no conflict: the path is then shared.
* **Update** (create, `PUT`, any non-apply patch): the writer takes every path it added or changed;
  other managers lose those paths and every path that disappeared. It never conflicts.
* Managers left with no paths are dropped. An entry's `time` moves only when its write changed the
  object, so an identical re-apply leaves `managedFields` untouched (and the write is skipped).
* Identity: an applier is (name, subresource); an updater is (name, apiVersion, subresource).
  `apiVersion`, `kind`, `metadata.name/namespace/uid/resourceVersion/generation/creationTimestamp/
  selfLink/managedFields` are never owned. On a kind with a `/status` subresource, writes to the
  main resource own nothing under `.status` and status writes own nothing else.
* An object that has no `managedFields` yet (put there by a test helper) gets a
  `before-first-apply` updater owning all of it on its first apply, as upstream does.

Not modelled: the cap of ten updaters (`ancient-changes`), conversion of owned paths between API
versions, the kubectl client-side-apply upgrade path, and union fields.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tests.kube_double import fieldpaths
from tests.kube_double.errors import JSON, ApiError, apply_conflict
from tests.kube_double.fieldpaths import Path, Topology, flatten, path_string, remove
from tests.kube_double.merging import merge

APPLY = "Apply"
UPDATE = "Update"
BEFORE_FIRST_APPLY = "before-first-apply"

_NEVER_OWNED = frozenset(
    {(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)}
    | {
        (("f", "metadata"), ("f", name))
        for name in (
            "name",
            "namespace",
            "creationTimestamp",
            "selfLink",
            "uid",
            "clusterName",
            "generation",
            "managedFields",
            "resourceVersion",
        )
    }
)
_STATUS = ("f", "status")


@dataclass(frozen=True)
class ManagerId:
    """Who owns fields: the identity of one `managedFields` entry."""

    manager: str
    operation: str
    #: Part of an updater's identity only; appliers keep one entry across API versions.
    api_version: str = ""
    subresource: str = ""

    def describe(self) -> str:
        """How upstream names the manager in a conflict message."""
        if self.operation == UPDATE:
            return f'"{self.manager}" using {self.api_version}'
        return f'"{self.manager}"'


@dataclass(frozen=True)
class Entry:
    """One `managedFields` entry."""

    who: ManagerId
    api_version: str
    time: str | None
    fields: frozenset[Path]


Entries = dict[ManagerId, Entry]


@dataclass(frozen=True)
class Scope:
    """Which part of an object a write addresses: all of it, or its main part / its status."""

    status_is_subresource: bool
    subresource: str = ""

    def owns(self, path: Path) -> bool:
        if path in _NEVER_OWNED:
            return False
        if not self.status_is_subresource:
            return True
        return (path[:1] == (_STATUS,)) == (self.subresource == "status")

    def restrict(self, new: JSON, live: JSON) -> JSON:
        """`new`, with the part this write may not touch put back as it is in `live`."""
        if not self.status_is_subresource:
            return new
        if self.subresource == "status":
            kept = {k: v for k, v in live.items() if k != "status"}
            return {**kept, **({"status": new["status"]} if "status" in new else {})}
        restricted = {k: v for k, v in new.items() if k != "status"}
        return {**restricted, **({"status": live["status"]} if "status" in live else {})}


class ApplyConflictError(Exception):
    """Other managers own fields the apply would change."""

    def __init__(self, conflicts: dict[ManagerId, list[Path]]) -> None:
        super().__init__(conflicts)
        self.conflicts = conflicts

    def api_error(self) -> ApiError:
        """The 409 upstream answers: one cause per field, message grouped by manager."""
        ordered = sorted(self.conflicts.items(), key=lambda item: item[0].manager)
        pairs = [(who, path) for who, paths in ordered for path in paths]
        causes: list[JSON] = [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {who.describe()}",
                "field": path_string(path),
            }
            for who, path in pairs
        ]
        if len(pairs) == 1:
            who, path = pairs[0]
            message = f"Apply failed with 1 conflict: conflict with {who.describe()}: {path_string(path)}"
        else:
            lines = []
            for who, paths in ordered:
                lines.append(f"conflicts with {who.describe()}:")
                lines.extend(f"- {path_string(path)}" for path in paths)
            message = f"Apply failed with {len(pairs)} conflicts: " + "\n".join(lines)
        return apply_conflict(causes, message)


def _owned(obj: JSON, topology: Topology, scope: Scope, strict: bool = False) -> dict[Path, Any]:
    return {p: v for p, v in flatten(obj, topology, strict).items() if scope.owns(p)}


def _release(entries: Entries, keeper: ManagerId, taken: frozenset[Path]) -> Entries:
    """Every manager but `keeper` loses the `taken` paths; managers left with none are dropped."""
    result: Entries = {}
    for who, entry in entries.items():
        fields = entry.fields if who == keeper else entry.fields - taken
        if fields:
            result[who] = dataclasses.replace(entry, fields=fields)
    return result


def apply(
    live: JSON,
    config: JSON,
    entries: Entries,
    who: ManagerId,
    api_version: str,
    force: bool,
    topology: Topology,
    scope: Scope,
    now: str,
) -> tuple[JSON, Entries]:
    """The object and entries after `who` applies `config` to `live` (a bare skeleton when creating).

    Raises `ApplyConflictError`, or `fieldpaths.SchemaError` for a configuration the topology
    cannot read.
    """
    applied = frozenset(_owned(config, topology, scope, strict=True))
    merged = scope.restrict(merge(live, config, topology), live)
    previous = entries.get(who)
    entries = {**entries, who: Entry(who, api_version, previous.time if previous else None, applied)}
    still_owned = frozenset().union(*(e.fields for e in entries.values()))
    for path in sorted((previous.fields if previous else frozenset()) - still_owned, key=len):
        remove(merged, path, topology)
    changes = fieldpaths.diff(_owned(live, topology, scope), _owned(merged, topology, scope))
    touched = changes.added | changes.modified
    conflicts = {
        other: sorted(entry.fields & touched, key=fieldpaths.sort_key)
        for other, entry in entries.items()
        if other != who and entry.fields & touched
    }
    if conflicts and not force:
        raise ApplyConflictError(conflicts)
    entries = _release(entries, who, touched | changes.removed)
    if changes.changed and who in entries:
        entries[who] = dataclasses.replace(entries[who], time=now)
    return merged, entries


def update(
    live: JSON,
    new: JSON,
    entries: Entries,
    who: ManagerId,
    topology: Topology,
    scope: Scope,
    now: str,
) -> Entries:
    """The entries after `who` replaced `live` by `new` with a non-apply write."""
    changes = fieldpaths.diff(_owned(live, topology, scope), _owned(new, topology, scope))
    taken = changes.added | changes.modified
    entries = _release(entries, who, taken | changes.removed)
    previous = entries.get(who)
    if not taken:
        return entries
    fields = ((previous.fields if previous else frozenset()) - changes.removed) | taken
    entries[who] = Entry(who, who.api_version, now, fields)
    return entries


def decode(managed_fields: Iterable[JSON]) -> Entries:
    entries: Entries = {}
    for raw in managed_fields:
        operation = raw.get("operation", UPDATE)
        who = ManagerId(
            raw.get("manager", ""),
            operation,
            raw.get("apiVersion", "") if operation == UPDATE else "",
            raw.get("subresource", ""),
        )
        fields = frozenset(fieldpaths.from_fields_v1(raw.get("fieldsV1") or {}))
        entries[who] = Entry(who, raw.get("apiVersion", ""), raw.get("time"), fields)
    return entries


def encode(entries: Entries) -> list[JSON]:
    """`managedFields`, sorted as upstream sorts them (operation, time, manager, apiVersion, subresource)."""
    ordered = sorted(
        entries.values(),
        key=lambda e: (e.who.operation, e.time or "", e.who.manager, e.api_version, e.who.subresource),
    )
    return [_encode_entry(entry) for entry in ordered]


def _encode_entry(entry: Entry) -> JSON:
    raw: JSON = {
        "manager": entry.who.manager,
        "operation": entry.who.operation,
        "apiVersion": entry.api_version,
    }
    if entry.time:
        raw["time"] = entry.time
    raw["fieldsType"] = "FieldsV1"
    raw["fieldsV1"] = fieldpaths.to_fields_v1(entry.fields)
    if entry.who.subresource:
        raw["subresource"] = entry.who.subresource
    return raw


def bootstrap(
    live: JSON, skeleton: JSON, api_version: str, topology: Topology, scope: Scope, now: str
) -> Entries:
    """Entries for an object that has none: one `before-first-apply` updater owning all of it."""
    who = ManagerId(BEFORE_FIRST_APPLY, UPDATE, api_version)
    return update(skeleton, live, {}, who, topology, scope, now)
