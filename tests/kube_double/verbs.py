"""The API verbs: what each does to the cluster, and upstream's answers and errors.

HTTP-free: `Verbs.handle(call)` takes a routed `Call` and returns a `Reply` or raises `ApiError`.
Every verb runs under the store's lock, so concurrent requests see one serial history, as they would
through etcd's compare-and-swap.

* get; list with label and field selectors and `limit`/`continue`, in one namespace or all.
* create (POST, 201); update (PUT): a stale `metadata.resourceVersion` is a 409 Conflict, none
  means unconditional; patch: server-side apply (201 when it creates; see `ownership`), JSON merge
  patch, strategic merge patch (served as a merge patch) and JSON patch. A `resourceVersion` in a
  patch or apply body is a precondition, as upstream.
* delete (a `Status` of `Success`; `propagationPolicy` is checked, then moot: there is no garbage
  collector) and deletecollection. `default`, `kube-system` and `kube-public` cannot be deleted.
  An object with `metadata.finalizers` only gets a `deletionTimestamp`, and goes when a write
  removes its last finalizer.
* `dryRun=All` on every write: checked, validated and answered as if done; nothing stored.
* `/status`: writes to the main resource ignore `.status`, status writes change only `.status`.
* A write that changes nothing (an identical re-apply or PUT) stores nothing and keeps the
  resourceVersion. `watch` is not a verb here: the server streams it (`watching`).
"""

from __future__ import annotations

import copy
import secrets
import string
import uuid
from dataclasses import dataclass, field

from tests.kube_double import calls, ownership, strategies, validation
from tests.kube_double.calls import APPLY_PATCH, PATCH_TYPES, Call
from tests.kube_double.cluster import Cluster, managed_entries, present, utc_now, without_managed_fields
from tests.kube_double.errors import (
    JSON,
    GroupResource,
    already_exists,
    bad_request,
    forbidden,
    invalid,
    method_not_supported,
    not_found,
    stale_resource_version,
    unsupported_media_type,
    untyped_server_error,
)
from tests.kube_double.fieldpaths import SchemaError, Topology
from tests.kube_double.kinds import CRDS, NAMESPACES, ResourceType
from tests.kube_double.ownership import APPLY, UPDATE, ApplyConflictError, ManagerId, Scope
from tests.kube_double.selectors import SelectorError, parse_field_selector, parse_label_selector
from tests.kube_double.storage import ObjectKey

#: Namespaces upstream refuses to delete.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public"})
#: Metadata only the server sets; a write keeps the stored values.
_SERVER_SET = (
    "uid",
    "creationTimestamp",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


@dataclass
class Reply:
    code: int
    body: JSON
    #: `Warning` headers (upstream's warnings, e.g. unknown fields dropped).
    warnings: list[str] = field(default_factory=list)
    #: Other response headers (`Retry-After`).
    headers: dict[str, str] = field(default_factory=dict)
    #: A body that is not JSON (`pods/log` answers text/plain); sent instead of `body`.
    raw: bytes | None = None


def skeleton(resource_type: ResourceType, name: str, namespace: str | None) -> JSON:
    """The empty object an apply or create starts from."""
    metadata = {"name": name, "namespace": namespace} if resource_type.namespaced else {"name": name}
    return {"apiVersion": resource_type.api_version, "kind": resource_type.kind, "metadata": metadata}


class Verbs:
    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.store = cluster.store

    def handle(self, call: Call) -> Reply:
        verbs = {
            "get": self._get,
            "list": self._list,
            "create": self._create,
            "update": self._update,
            "patch": self._patch,
            "delete": self._delete,
            "deletecollection": self._delete_collection,
        }
        if call.verb not in verbs:
            raise method_not_supported(call.resource_type.group_resource, call.verb)
        with self.store.lock:
            return verbs[call.verb](call)

    # -- reads -------------------------------------------------------------------------------------

    def _get(self, call: Call) -> Reply:
        return Reply(200, present(call.resource_type, self._current(call)))

    def _selected(self, call: Call) -> list[JSON]:
        resource_type = call.resource_type
        try:
            labels = parse_label_selector(call.param("labelSelector"))
            fields = parse_field_selector(call.param("fieldSelector"), resource_type.group_resource)
        except SelectorError as error:
            raise bad_request(str(error)) from error
        return [
            obj
            for obj in self.store.list(resource_type.group, resource_type.plural, call.target.namespace)
            if labels.matches(obj.get("metadata", {}).get("labels")) and fields.matches(obj)
        ]

    def _list(self, call: Call) -> Reply:
        items = self._selected(call)
        start, stop, token = calls.page(call, len(items))
        metadata: JSON = {"resourceVersion": self.store.resource_version}
        if token is not None:
            metadata["continue"] = token
            metadata["remainingItemCount"] = len(items) - stop
        return Reply(200, _list_body(call.resource_type, metadata, items[start:stop]))

    # -- writes ------------------------------------------------------------------------------------

    def _create(self, call: Call) -> Reply:
        dry_run = calls.write_options(call, "CreateOptions")
        body, warnings = calls.object_body(call)
        metadata = body.setdefault("metadata", {})
        if not metadata.get("name") and metadata.get("generateName"):
            suffix = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
            metadata["name"] = metadata["generateName"] + suffix
        if metadata.get("resourceVersion"):
            raise untyped_server_error("resourceVersion should not be set on objects to be created")
        name = metadata.get("name", "")
        self._require_namespace(call)
        empty = skeleton(call.resource_type, name, call.target.namespace)
        new = call.scope.restrict(body, empty)
        who = ManagerId(call.manager, UPDATE, call.resource_type.api_version)
        entries = ownership.update(empty, new, {}, who, _topology(call), call.scope, utc_now())
        created = self._commit(call, name, None, new, entries, dry_run)
        return Reply(201, present(call.resource_type, created), warnings)

    def _update(self, call: Call) -> Reply:
        dry_run = calls.write_options(call, "UpdateOptions")
        body, warnings = calls.object_body(call)
        current = self._current(call)
        _check_resource_version(call, current, body)
        return self._replace(call, current, body, warnings, dry_run)

    def _patch(self, call: Call) -> Reply:
        if call.patch_type not in PATCH_TYPES:
            raise unsupported_media_type(PATCH_TYPES)
        dry_run = calls.patch_options(call)
        if call.patch_type == APPLY_PATCH:
            return self._apply(call, dry_run)
        current = self._current(call)
        patched = calls.patched(call, without_managed_fields(current))
        calls.check_identity(call, patched)
        _check_resource_version(call, current, patched)
        patched, warnings = calls.drop_unknown(call, patched)
        return self._replace(call, current, patched, warnings, dry_run)

    def _replace(self, call: Call, current: JSON, body: JSON, warnings: list[str], dry_run: bool) -> Reply:
        """An Update of `current` by `body`: the writer takes what it changed."""
        live = without_managed_fields(current)
        new = call.scope.restrict(body, live)
        who = ManagerId(call.manager, UPDATE, call.resource_type.api_version, call.target.subresource)
        entries = ownership.update(
            live, new, managed_entries(current), who, _topology(call), call.scope, utc_now()
        )
        updated = self._commit(call, call.target.name, current, new, entries, dry_run)
        return Reply(200, present(call.resource_type, updated), warnings)

    def _apply(self, call: Call, dry_run: bool) -> Reply:
        resource_type, target = call.resource_type, call.target
        config = calls.apply_configuration(call)
        unknown = validation.unknown_fields(resource_type, config)
        if unknown:
            problems = [f".{path}: field not declared in schema" for path in unknown]
            raise calls.typed_patch_error(
                call,
                problems[0] if len(problems) == 1 else "errors:\n" + "\n".join(f"  {p}" for p in problems),
            )
        current = self.store.get(call.key())
        empty = skeleton(resource_type, target.name, target.namespace)
        if current is None:
            if target.subresource:
                raise not_found(resource_type.group_resource, target.name)
            self._require_namespace(call)
            live, entries = empty, {}
        else:
            _check_resource_version(call, current, config)
            live, entries = without_managed_fields(current), managed_entries(current)
            if not entries:
                main = Scope(resource_type.has_status)
                entries = ownership.bootstrap(
                    live, empty, resource_type.api_version, _topology(call), main, utc_now()
                )
        who = ManagerId(call.param("fieldManager"), APPLY, "", target.subresource)
        force = call.param("force") == "true"
        try:
            merged, entries = ownership.apply(
                live,
                config,
                entries,
                who,
                resource_type.api_version,
                force,
                _topology(call),
                call.scope,
                utc_now(),
            )
        except ApplyConflictError as conflict:
            raise conflict.api_error() from conflict
        except SchemaError as error:
            raise calls.typed_patch_error(call, str(error)) from error
        stored = self._commit(call, target.name, current, merged, entries, dry_run)
        return Reply(201 if current is None else 200, present(resource_type, stored))

    def _delete(self, call: Call) -> Reply:
        dry_run = calls.delete_options(call)
        resource_type, name = call.resource_type, call.target.name
        if call.target.subresource:
            raise method_not_supported(resource_type.group_resource, "delete")
        current = self._current(call)
        if resource_type == NAMESPACES and name in PROTECTED_NAMESPACES:
            raise forbidden(resource_type.group_resource, name, "this namespace may not be deleted")
        if current["metadata"].get("finalizers"):
            return Reply(
                200, present(resource_type, self._mark_deleted(resource_type, call.key(), current, dry_run))
            )
        if not dry_run:
            self.cluster.remove(resource_type, call.key(), current)
        if resource_type == NAMESPACES:
            gone = copy.deepcopy(current)
            gone["metadata"]["deletionTimestamp"] = utc_now()
            gone["status"] = {"phase": "Terminating"}
            return Reply(200, present(resource_type, gone))
        return Reply(200, _success(resource_type, name, current["metadata"].get("uid", "")))

    def _delete_collection(self, call: Call) -> Reply:
        dry_run = calls.delete_options(call)
        resource_type = call.resource_type
        deleted = []
        for obj in self._selected(call):
            metadata = obj["metadata"]
            key = ObjectKey(
                resource_type.group, resource_type.plural, metadata.get("namespace", ""), metadata["name"]
            )
            if metadata.get("finalizers"):
                deleted.append(self._mark_deleted(resource_type, key, obj, dry_run))
                continue
            if not dry_run:
                self.cluster.remove(resource_type, key, obj)
            deleted.append(obj)
        metadata = {"resourceVersion": self.store.resource_version}
        return Reply(200, _list_body(resource_type, metadata, deleted))

    # -- shared steps ------------------------------------------------------------------------------

    def _current(self, call: Call) -> JSON:
        found = self.store.get(call.key())
        if found is None:
            raise not_found(call.resource_type.group_resource, call.target.name)
        return found

    def _require_namespace(self, call: Call) -> None:
        namespace = call.target.namespace
        if namespace is not None and not self.cluster.namespace_exists(namespace):
            raise not_found(GroupResource("", "namespaces"), namespace)

    def _commit(
        self,
        call: Call,
        name: str,
        current: JSON | None,
        new: JSON,
        entries: ownership.Entries,
        dry_run: bool,
    ) -> JSON:
        """Validate and store `new` in place of `current` (None: create); returns what the client sees.

        Server-set metadata is filled in here. A write that changes nothing is not stored.
        """
        resource_type = call.resource_type
        obj = _with_metadata(resource_type, copy.deepcopy(new), name, call.target.namespace, current)
        if current is None:
            obj = strategies.prepare_create(resource_type, obj)
        else:
            obj = strategies.prepare(resource_type, obj)
            generation = strategies.generation(resource_type, current, obj)
            if generation is not None:
                obj["metadata"]["generation"] = generation
        managed = ownership.encode(entries)
        if managed:
            obj["metadata"]["managedFields"] = managed
        errors = validation.object_errors(resource_type, obj)
        if errors:
            raise invalid(resource_type.group, resource_type.kind, name, errors)
        if current is None and self.store.get(call.key(name)) is not None:
            raise already_exists(resource_type.group_resource, name)
        if resource_type == CRDS and current is None:
            obj["status"] = self.cluster.new_crd_status(obj)
        if obj == current or dry_run:
            return obj
        if "deletionTimestamp" in obj["metadata"] and not obj["metadata"].get("finalizers"):
            self.cluster.remove(resource_type, call.key(name), obj)
            return obj
        return self.cluster.write(resource_type, call.key(name), obj)

    def _mark_deleted(self, resource_type: ResourceType, key: ObjectKey, obj: JSON, dry_run: bool) -> JSON:
        """A deletion its finalizers hold up: the object only gets a `deletionTimestamp`."""
        if "deletionTimestamp" in obj["metadata"]:
            return obj
        marked = copy.deepcopy(obj)
        marked["metadata"]["deletionTimestamp"] = utc_now()
        marked["metadata"]["deletionGracePeriodSeconds"] = 0
        return marked if dry_run else self.cluster.write(resource_type, key, marked)


def _topology(call: Call) -> Topology:
    return Topology(call.resource_type.builtin)


def _check_resource_version(call: Call, current: JSON, obj: JSON) -> None:
    wanted = (obj.get("metadata") or {}).get("resourceVersion")
    if wanted and wanted != current["metadata"]["resourceVersion"]:
        raise stale_resource_version(call.resource_type.group_resource, call.target.name)


def _with_metadata(
    resource_type: ResourceType, obj: JSON, name: str, namespace: str | None, current: JSON | None
) -> JSON:
    """`obj` with the URL's name/namespace and the server-set metadata of `current` (or fresh ones)."""
    metadata = obj.setdefault("metadata", {})
    metadata["name"] = name
    if resource_type.namespaced:
        metadata["namespace"] = namespace
    else:
        metadata.pop("namespace", None)
    for key in ("managedFields", "generation", *_SERVER_SET):
        metadata.pop(key, None)
    if current is None:
        metadata["uid"] = str(uuid.uuid4())
        metadata["creationTimestamp"] = utc_now()
    else:
        metadata.update({k: v for k, v in current["metadata"].items() if k in _SERVER_SET})
    return obj


def _list_body(resource_type: ResourceType, metadata: JSON, items: list[JSON]) -> JSON:
    # Built-in lists leave out each item's apiVersion and kind; custom resource lists carry them.
    served = items if resource_type.builtin else [present(resource_type, obj) for obj in items]
    return {
        "kind": resource_type.list_kind,
        "apiVersion": resource_type.api_version,
        "metadata": metadata,
        "items": served,
    }


def _success(resource_type: ResourceType, name: str, uid: str) -> JSON:
    details = {"name": name, "group": resource_type.group, "kind": resource_type.plural, "uid": uid}
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {k: v for k, v in details.items() if v},
    }
