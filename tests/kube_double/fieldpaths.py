"""Field paths and field sets: the unit of ownership in server-side apply.

An object is seen as the set of paths to its leaves, like sigs.k8s.io/structured-merge-diff sees it:
`.spec.replicas`, `.metadata.labels.app`, `.spec.template.spec.containers[name="web"].image`. A
path is a tuple of elements: `("f", name)` for a field or map key, `("k", ((key, value), ...))` for
an item of an associative list, `("v", value)` for a member of a set-list.

Which lists are associative and which structs are atomic is the object's *topology*. The double
knows these, and treats every other list as atomic and every other map or struct as granular:

* keyed by `name`: `containers`, `initContainers`, `ephemeralContainers`, `env`, `volumes`,
  `imagePullSecrets`; by `mountPath`: `volumeMounts`; by `devicePath`: `volumeDevices`; by `ip`:
  `hostAliases`; by `topologyKey` + `whenUnsatisfiable`: `topologySpreadConstraints`;
* a container's `ports` by `containerPort` + `protocol`, a Service's `spec.ports` by `port` +
  `protocol` (`protocol` defaults to TCP in the key); `status.conditions` by `type`;
* `metadata.ownerReferences` by `uid`, `metadata.finalizers` as a set (custom resources too);
* atomic: any `selector`, `podSelector`, `namespaceSelector` (LabelSelectors, a Service's selector).

Custom resources get only the `metadata` rules: all their lists are atomic, as upstream treats a
schema without `x-kubernetes-list-type` markers.

`flatten` turns an object into its field set (paths to values), `to_fields_v1` / `from_fields_v1`
convert a set of paths to and from the `fieldsV1` format of `managedFields` (`f:`, `k:`, `v:` and
`.`), `path_string` prints a path as conflict messages do, and `remove` deletes a path.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tests.kube_double.errors import JSON

PathElement = tuple[str, Any]
Path = tuple[PathElement, ...]
Names = tuple[str, ...]

#: The value a flattened list item maps to: it is a member of the set but has fields of its own.
ITEM = "<list item>"


@dataclass(frozen=True)
class ListType:
    """How server-side apply treats a list: atomic, a set of scalars, or a map keyed by some fields."""

    relationship: str  # "atomic", "set" or "map"
    keys: tuple[str, ...] = ()
    #: Values used for key fields an item omits (upstream defaults `protocol` to TCP, for instance).
    defaults: dict[str, Any] = field(default_factory=dict)


ATOMIC = ListType("atomic")
SET = ListType("set")
_BY_NAME = ListType("map", ("name",))
_CONTAINER_PORTS = ListType("map", ("containerPort", "protocol"), {"protocol": "TCP"})

#: Associative lists of built-in kinds, by the trailing field names of their path.
_BUILTIN_LISTS: dict[Names, ListType] = {
    ("containers",): _BY_NAME,
    ("initContainers",): _BY_NAME,
    ("ephemeralContainers",): _BY_NAME,
    ("containers", "ports"): _CONTAINER_PORTS,
    ("initContainers", "ports"): _CONTAINER_PORTS,
    ("ephemeralContainers", "ports"): _CONTAINER_PORTS,
    ("env",): _BY_NAME,
    ("volumes",): _BY_NAME,
    ("volumeMounts",): ListType("map", ("mountPath",)),
    ("volumeDevices",): ListType("map", ("devicePath",)),
    ("imagePullSecrets",): _BY_NAME,
    ("hostAliases",): ListType("map", ("ip",)),
    ("topologySpreadConstraints",): ListType("map", ("topologyKey", "whenUnsatisfiable")),
}
#: Associative lists of built-in kinds at an exact path from the root.
_BUILTIN_ROOT_LISTS: dict[Names, ListType] = {
    ("spec", "ports"): ListType("map", ("port", "protocol"), {"protocol": "TCP"}),  # Service
    ("status", "conditions"): ListType("map", ("type",)),
}
#: `ObjectMeta` lists, which custom resources have too.
_META_LISTS: dict[Names, ListType] = {
    ("metadata", "ownerReferences"): ListType("map", ("uid",)),
    ("metadata", "finalizers"): SET,
}
#: Built-in structs and maps declared atomic (`+structType=atomic`, `+mapType=atomic`): owned whole.
_ATOMIC_FIELDS = frozenset({"selector", "podSelector", "namespaceSelector"})


class SchemaError(ValueError):
    """An object the topology cannot represent (an associative-list item without its key, a duplicate)."""


@dataclass(frozen=True)
class Topology:
    """Which lists are associative and which structs atomic, for built-in or custom kinds."""

    builtin: bool

    def list_type(self, names: Names) -> ListType:
        if names in _META_LISTS:
            return _META_LISTS[names]
        if not self.builtin:
            return ATOMIC
        if names in _BUILTIN_ROOT_LISTS:
            return _BUILTIN_ROOT_LISTS[names]
        for length in (2, 1):
            if names[-length:] in _BUILTIN_LISTS:
                return _BUILTIN_LISTS[names[-length:]]
        return ATOMIC

    def atomic(self, names: Names) -> bool:
        return self.builtin and bool(names) and names[-1] in _ATOMIC_FIELDS


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def item_element(list_type: ListType, item: Any) -> PathElement | None:
    """The path element naming `item` in a set or associative list, or None if it has no valid key."""
    if list_type.relationship == "set":
        return ("v", item) if _scalar(item) else None
    if not isinstance(item, dict):
        return None
    key = []
    for name in list_type.keys:
        value = item.get(name, list_type.defaults.get(name))
        if value is None or not _scalar(value):
            return None
        key.append((name, value))
    return ("k", tuple(sorted(key)))


def _element_string(element: PathElement) -> str:
    kind, value = element
    if kind == "f":
        return f".{value}"
    if kind == "k":
        return "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in value) + "]"
    if kind == "v":
        return f"[={json.dumps(value)}]"
    return f"[{value}]"


def path_string(path: Path) -> str:
    """A path as upstream prints it in conflicts: `.spec.template.spec.containers[name="web"].image`."""
    return "".join(_element_string(e) for e in path)


def flatten(obj: Any, topology: Topology, strict: bool = False) -> dict[Path, Any]:
    """The field set of `obj`, mapping each owned path to its value (`ITEM` for list items).

    With `strict`, a list that cannot be read as its topology says raises `SchemaError` (server-side
    apply refuses such a configuration); otherwise such a list is treated as atomic.
    """
    out: dict[Path, Any] = {}
    if isinstance(obj, dict):
        _walk_fields(obj, (), (), topology, strict, out)
    return out


def _walk_fields(
    mapping: JSON, path: Path, names: Names, topology: Topology, strict: bool, out: dict[Path, Any]
) -> None:
    for key, child in mapping.items():
        _walk(child, (*path, ("f", key)), (*names, key), topology, strict, out)


def _walk(
    value: Any, path: Path, names: Names, topology: Topology, strict: bool, out: dict[Path, Any]
) -> None:
    if isinstance(value, dict) and value and not topology.atomic(names):
        _walk_fields(value, path, names, topology, strict, out)
    elif isinstance(value, list) and topology.list_type(names) is not ATOMIC:
        _walk_list(value, path, names, topology, strict, out)
    else:
        out[path] = value


def _walk_list(
    items: list[Any], path: Path, names: Names, topology: Topology, strict: bool, out: dict[Path, Any]
) -> None:
    list_type = topology.list_type(names)
    elements = [item_element(list_type, item) for item in items]
    problem = _list_problem(list_type, elements)
    if problem is not None:
        if strict:
            raise SchemaError(f"{path_string(path)}: {problem}")
        out[path] = items
        return
    for element, item in zip(elements, items, strict=True):
        assert element is not None
        item_path = (*path, element)
        if element[0] == "v":
            out[item_path] = item
        else:
            out[item_path] = ITEM
            _walk_fields(item, item_path, names, topology, strict, out)


def _list_problem(list_type: ListType, elements: list[PathElement | None]) -> str | None:
    for index, element in enumerate(elements):
        if element is None:
            missing = ", ".join(f'"{k}"' for k in list_type.keys) or "a scalar value"
            return (
                f"element {index}: associative list with keys has an element that omits key field {missing}"
            )
    seen: set[PathElement] = set()
    for element in elements:
        assert element is not None
        if element in seen:
            return f"duplicate entries for key {_element_string(element)}"
        seen.add(element)
    return None


def _same_value(left: Any, right: Any) -> bool:
    """Equality as JSON sees it (so `1`, `1.0` and `true` differ)."""
    return json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)


@dataclass(frozen=True)
class Diff:
    """How a field set changed: paths added, removed, and present on both sides with different values."""

    added: frozenset[Path]
    removed: frozenset[Path]
    modified: frozenset[Path]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.modified)


def diff(old: dict[Path, Any], new: dict[Path, Any]) -> Diff:
    both = old.keys() & new.keys()
    return Diff(
        added=frozenset(new.keys() - old.keys()),
        removed=frozenset(old.keys() - new.keys()),
        modified=frozenset(p for p in both if not _same_value(old[p], new[p])),
    )


def _encode_element(element: PathElement) -> str:
    kind, value = element
    if kind == "f":
        return f"f:{value}"
    if kind == "k":
        return "k:" + json.dumps(dict(value), separators=(",", ":"), sort_keys=True)
    return f"{kind}:{json.dumps(value, separators=(',', ':'))}"


def _decode_element(text: str) -> PathElement:
    kind, _, rest = text.partition(":")
    if kind == "f":
        return ("f", rest)
    if kind == "k":
        return ("k", tuple(sorted(json.loads(rest).items())))
    return (kind, json.loads(rest))


_ORDER = {"f": 0, "k": 1, "v": 2, "i": 3}


def sort_key(path: Path) -> list[tuple[int, str]]:
    """Orders paths as upstream's field sets do: fields, then keyed items, then set members."""
    return [(_ORDER[element[0]], _encode_element(element)) for element in path]


def to_fields_v1(paths: Iterable[Path]) -> JSON:
    """The `fieldsV1` tree of a set of paths, children sorted as upstream sorts them."""
    tree: JSON = {}
    members = list(paths)
    for path in sorted(members, key=sort_key):
        node = tree
        for element in path:
            node = node.setdefault(_encode_element(element), {})
    for path in members:
        node = tree
        for element in path:
            node = node[_encode_element(element)]
        if node and "." not in node:
            node_items = dict(node)
            node.clear()
            node["."] = {}
            node.update(node_items)
    return tree


def from_fields_v1(tree: JSON, prefix: Path = ()) -> set[Path]:
    """The set of paths a `fieldsV1` tree holds."""
    paths: set[Path] = set()
    for key, child in tree.items():
        if key == ".":
            paths.add(prefix)
            continue
        path = (*prefix, _decode_element(key))
        if child:
            paths |= from_fields_v1(child, path)
        else:
            paths.add(path)
    return paths


def remove(obj: JSON, path: Path, topology: Topology) -> None:
    """Delete the value at `path`; maps and lists this empties are deleted too (Go's omitempty)."""
    _remove_from(obj, path, (), topology)


def _remove_from(container: Any, path: Path, names: Names, topology: Topology) -> None:
    (kind, value), rest = path[0], path[1:]
    if kind == "f":
        if not isinstance(container, dict) or value not in container:
            return
        if not rest:
            del container[value]
            return
        child = container[value]
        _remove_from(child, rest, (*names, value), topology)
        if isinstance(child, dict | list) and not child:
            del container[value]
        return
    if not isinstance(container, list):
        return
    list_type = topology.list_type(names)
    for index, item in enumerate(container):
        if item_element(list_type, item) == (kind, value):
            if rest:
                _remove_from(item, rest, names, topology)
            else:
                del container[index]
            return
