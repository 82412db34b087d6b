"""The cluster's state: stored objects, served kinds, and what controllers do when those change.

Every write goes through `write` and every deletion through `remove`, which keep the served kinds in
line with CRDs and do what upstream's controllers would do at once: an Established CRD's kinds are
served; deleting a CRD stops serving them and deletes their objects; deleting a namespace deletes
everything in it. A fresh cluster has the namespaces `default`, `kube-system`, `kube-public` and
`kube-node-lease`.

The test helpers (`put_object`, `set_status`, `establish_crd`, ...) act here directly, without
requests, authentication or failure injection.
"""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime

from tests.kube_double import crds, ownership
from tests.kube_double.errors import JSON
from tests.kube_double.fieldpaths import Topology
from tests.kube_double.kinds import CRDS, NAMESPACES, Registry, ResourceType
from tests.kube_double.ownership import UPDATE, ManagerId, Scope
from tests.kube_double.storage import ObjectKey, Store

#: Namespaces a fresh cluster has.
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def present(resource_type: ResourceType, obj: JSON) -> JSON:
    """The object as served at `resource_type`'s version (no conversion: custom resources are schemaless)."""
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": resource_type.api_version, "kind": resource_type.kind, **rest}


def without_managed_fields(obj: JSON) -> JSON:
    trimmed = copy.deepcopy(obj)
    trimmed.get("metadata", {}).pop("managedFields", None)
    return trimmed


def managed_entries(obj: JSON) -> ownership.Entries:
    return ownership.decode(obj.get("metadata", {}).get("managedFields") or [])


def is_established(crd: JSON) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


class Cluster:
    def __init__(self, auto_establish_crds: bool = True) -> None:
        self.registry = Registry()
        self.store = Store()
        #: Whether a new CRD is Established at once; when False, a test calls `establish_crd`.
        self.auto_establish_crds = auto_establish_crds
        for name in INITIAL_NAMESPACES:
            self.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    # -- what every write does ---------------------------------------------------------------------

    def write(self, resource_type: ResourceType, key: ObjectKey, obj: JSON) -> JSON:
        """Store `obj`; an Established CRD (re)starts serving its kinds."""
        stored = self.store.put(key, obj)
        if resource_type == CRDS and is_established(stored):
            spec = stored["spec"]
            self.registry.remove(spec["group"], spec["names"]["plural"])
            self.registry.add(crds.resource_types(stored), crds.preferred_version(stored))
        return stored

    def remove(self, resource_type: ResourceType, key: ObjectKey, obj: JSON) -> None:
        """Delete an object and what goes with it: a namespace's contents, a CRD's kinds and objects."""
        self.store.delete(key)
        if resource_type == NAMESPACES:
            self.store.delete_where(lambda k: k.namespace == key.name)
        if resource_type == CRDS:
            group, plural = obj["spec"]["group"], obj["spec"]["names"]["plural"]
            self.registry.remove(group, plural)
            self.store.delete_where(lambda k: (k.group, k.resource) == (group, plural))

    def new_crd_status(self, crd: JSON) -> JSON:
        return crds.status(crd, self.auto_establish_crds, utc_now())

    def namespace_exists(self, name: str) -> bool:
        return self.store.get(ObjectKey("", "namespaces", "", name)) is not None

    # -- direct access for tests -------------------------------------------------------------------

    def resource_type(self, api_version: str, kind: str) -> ResourceType:
        found = self.registry.by_kind(api_version, kind)
        if found is None:
            raise LookupError(f"{kind} in {api_version} is not served")
        return found

    def key(self, resource_type: ResourceType, namespace: str | None, name: str) -> ObjectKey:
        namespace = (namespace or "") if resource_type.namespaced else ""
        return ObjectKey(resource_type.group, resource_type.plural, namespace, name)

    def put_object(self, obj: JSON) -> JSON:
        """Store `obj` as is (no validation, no managedFields added), filling in uid and timestamps."""
        resource_type = self.resource_type(obj["apiVersion"], obj["kind"])
        stored = copy.deepcopy(obj)
        metadata = stored["metadata"]
        metadata.setdefault("uid", str(uuid.uuid4()))
        metadata.setdefault("creationTimestamp", utc_now())
        if resource_type.has_generation:
            metadata.setdefault("generation", 1)
        if resource_type == CRDS and "status" not in stored:
            stored["status"] = self.new_crd_status(stored)
        with self.store.lock:
            return self.write(
                resource_type, self.key(resource_type, metadata.get("namespace"), metadata["name"]), stored
            )

    def get_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> JSON | None:
        resource_type = self.resource_type(api_version, kind)
        found = self.store.get(self.key(resource_type, namespace, name))
        return present(resource_type, found) if found is not None else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSON]:
        resource_type = self.resource_type(api_version, kind)
        found = self.store.list(resource_type.group, resource_type.plural, namespace)
        return [present(resource_type, obj) for obj in found]

    def delete_object(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete at once (finalizers ignored), with namespace and CRD cascades; False if it was absent."""
        resource_type = self.resource_type(api_version, kind)
        key = self.key(resource_type, namespace, name)
        with self.store.lock:
            found = self.store.get(key)
            if found is not None:
                self.remove(resource_type, key, found)
            return found is not None

    def set_status(
        self, api_version: str, kind: str, namespace: str | None, name: str, status: JSON, manager: str
    ) -> JSON:
        """Replace `.status` as a controller would: an update of `/status`, owned by `manager`."""
        resource_type = self.resource_type(api_version, kind)
        key = self.key(resource_type, namespace, name)
        with self.store.lock:
            current = self.store.get(key)
            if current is None:
                raise LookupError(f"{kind} {namespace}/{name} does not exist")
            scope = Scope(resource_type.has_status, "status" if resource_type.has_status else "")
            live = without_managed_fields(current)
            new = {**live, "status": copy.deepcopy(status)}
            who = ManagerId(manager, UPDATE, resource_type.api_version, scope.subresource)
            topology = Topology(resource_type.builtin)
            entries = ownership.update(live, new, managed_entries(current), who, topology, scope, utc_now())
            new["metadata"]["managedFields"] = ownership.encode(entries)
            if not new["metadata"]["managedFields"]:
                del new["metadata"]["managedFields"]
            return self.write(resource_type, key, new)

    def establish_crd(self, name: str) -> JSON:
        """Mark a CRD Established (as the apiextensions controller does) and start serving its kinds."""
        with self.store.lock:
            key = ObjectKey(CRDS.group, CRDS.plural, "", name)
            crd = self.store.get(key)
            if crd is None:
                raise LookupError(f"CustomResourceDefinition {name} does not exist")
            crd["status"] = crds.status(crd, True, utc_now())
            return self.write(CRDS, key, crd)
