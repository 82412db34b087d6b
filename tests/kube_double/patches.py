"""The non-apply patch formats: JSON merge patch (RFC 7396) and JSON patch (RFC 6902).

`application/strategic-merge-patch+json` is served as a plain merge patch: the double does not model
strategic merge's per-field merge keys and `$patch`/`$retainKeys`/`$setElementOrder` directives, so
a strategic patch that touches a list replaces the whole list (what a merge patch does).
"""

from __future__ import annotations

import copy
from typing import Any


class PatchError(ValueError):
    """A patch that cannot be applied to the object (a failed `test`, a missing path, ...)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, `null` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902, all six operations; the target is not modified."""
    if not isinstance(operations, list):
        raise PatchError("json patch must be a list of operations")
    document = copy.deepcopy(target)
    for operation in operations:
        document = _apply_operation(document, operation)
    return document


def _pointer(path: Any) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path.split("/")[1:]]


def _parent(document: Any, tokens: list[str]) -> Any:
    node = document
    for token in tokens[:-1]:
        node = _child(node, token)
    return node


def _child(node: Any, token: str) -> Any:
    if isinstance(node, dict) and token in node:
        return node[token]
    if isinstance(node, list) and token.isdigit() and int(token) < len(node):
        return node[int(token)]
    raise PatchError(f"path element {token!r} does not exist")


def _get(document: Any, path: Any) -> Any:
    node = document
    for token in _pointer(path):
        node = _child(node, token)
    return node


def _add(document: Any, path: Any, value: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        return copy.deepcopy(value)
    parent, last = _parent(document, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = copy.deepcopy(value)
    elif isinstance(parent, list) and (last == "-" or (last.isdigit() and int(last) <= len(parent))):
        parent.insert(len(parent) if last == "-" else int(last), copy.deepcopy(value))
    else:
        raise PatchError(f"cannot add at {path!r}")
    return document


def _remove(document: Any, path: Any) -> Any:
    tokens = _pointer(path)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(document, tokens), tokens[-1]
    _child(parent, last)
    if isinstance(parent, dict):
        del parent[last]
    else:
        del parent[int(last)]
    return document


def _apply_operation(document: Any, operation: Any) -> Any:
    if not isinstance(operation, dict) or "op" not in operation or "path" not in operation:
        raise PatchError(f"invalid operation: {operation!r}")
    op, path = operation["op"], operation["path"]
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"operation {op!r} needs a value")
    match op:
        case "add":
            return _add(document, path, operation["value"])
        case "remove":
            return _remove(document, path)
        case "replace":
            if not _pointer(path):
                return copy.deepcopy(operation["value"])
            return _add(_remove(document, path), path, operation["value"])
        case "move":
            value = _get(document, operation.get("from"))
            return _add(_remove(document, operation.get("from")), path, value)
        case "copy":
            return _add(document, path, _get(document, operation.get("from")))
        case "test":
            if _get(document, path) != operation["value"]:
                raise PatchError(f"testing value {path} failed")
            return document
    raise PatchError(f"unexpected kind: {op}")
