"""What upstream's registry strategies do to an object on its way into storage, as far as modelled.

* Fields set to `null` are dropped (a typed Go object cannot hold them), and so are the well-known
  maps and lists `omitempty` drops when empty (labels, annotations, finalizers, ownerReferences,
  data, binaryData).
* A Secret's `stringData` is folded into base64 `data`.
* On create, `status` is reset: `{}` for built-in kinds with a status subresource, `{phase: Active}`
  for a Namespace (which also gets `spec.finalizers: [kubernetes]`), absent for custom resources.
* `metadata.generation` is 1 on create and goes up by one when anything outside `metadata` and
  `status` changes, for kinds that keep it.

There is no other defaulting: no `replicas: 1`, no rollout `strategy`, no `imagePullPolicy`, no
Service `clusterIP`, no `status` filled in by controllers (tests set that with `set_status`).
"""

from __future__ import annotations

import base64
from typing import Any

from tests.kube_double.errors import JSON
from tests.kube_double.kinds import ResourceType


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _fold_string_data(obj: JSON) -> JSON:
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = dict(obj.get("data") or {})
        data.update({k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()})
        obj["data"] = data
    return obj


#: Well-known map and list fields Go's `omitempty` drops when empty (the double has no full schema).
_OMIT_EMPTY = (
    ("metadata", ("labels", "annotations", "finalizers", "ownerReferences")),
    ("", ("data", "binaryData", "stringData")),
)


def _drop_empty(obj: JSON) -> JSON:
    for parent, fields in _OMIT_EMPTY:
        holder = obj.get(parent) if parent else obj
        if isinstance(holder, dict):
            for name in fields:
                if holder.get(name) in ({}, []):
                    del holder[name]
    return obj


def prepare(resource_type: ResourceType, obj: JSON) -> JSON:
    """The object as it would be stored after any write."""
    obj = _drop_empty(_drop_nulls(obj))
    if resource_type.builtin and resource_type.kind == "Secret":
        obj = _fold_string_data(obj)
    return obj


def prepare_create(resource_type: ResourceType, obj: JSON) -> JSON:
    """The object as it would be stored when created."""
    obj = prepare(resource_type, obj)
    if resource_type.builtin and resource_type.has_status:
        obj["status"] = {}
    if resource_type.builtin and resource_type.kind == "Namespace":
        obj["status"] = {"phase": "Active"}
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
    if resource_type.has_generation:
        obj["metadata"]["generation"] = 1
    return obj


def _spec_part(obj: JSON) -> JSON:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


def generation(resource_type: ResourceType, current: JSON, new: JSON) -> int | None:
    """The generation `new` gets when it replaces `current`."""
    if not resource_type.has_generation:
        return None
    now = current.get("metadata", {}).get("generation", 1)
    return now + 1 if _spec_part(current) != _spec_part(new) else now
