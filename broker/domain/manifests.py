"""A deployment object's YAML, read safely and checked as the Kubernetes objects it must hold.

The YAML comes from CI pipelines and tenants and is parsed inside the broker, so the reader is built
for hostile input. It walks libyaml's event stream and builds JSON values itself instead of loading
documents, so every dangerous or non-JSON feature is refused where it appears, with its line:

* NUL and other control characters (tab and line breaks aside),
* anchors and aliases (a "billion laughs" document expands exponentially when serialised),
* tags other than the standard JSON-like ones (`!!python/object`, `!!binary`, `!!set`, ...),
* nesting deeper than `MAX_DEPTH`, more than `MAX_OBJECTS` documents or objects,
* values JSON cannot hold: timestamps (`2024-01-01` must be quoted), `.nan`, `.inf`, numbers
  beyond float64's range (Kubernetes reads JSON numbers as int64 or float64),
  mapping keys that are not strings, merge keys (`<<`) and repeated keys.

Every object must then look like a Kubernetes object: `apiVersion` ("v1" or "group/version"),
a CamelCase `kind`, `metadata.name` (lower-case letters, digits, '-', '.' and ':' up to 253
characters: DNS subdomains, plus the colons RBAC names such as `system:auth-delegator` use),
an optional DNS-label `metadata.namespace`, and valid labels and annotations. A `v1 List` stands for
its items. No two objects may share group, kind, namespace and name: the version does not count,
because `apps/v1` and `apps/v1beta1` Deployments named `web` are the same object in a cluster.

Errors name the field (`deployment_object.yaml_content`) and say where in the text the problem is.
A problem with the text stops reading at once: DEPLOYMENT_OBJECT_TOO_LARGE, INVALID_YAML (syntax,
control characters, repeated keys), UNSUPPORTED_YAML (the refusals above), TOO_MANY_OBJECTS.
Problems with objects are all reported together, one violation each, as "document 3 (apps/v1
Deployment web): metadata.name is required" (0-based document indexes; empty documents count):
INVALID_MANIFEST, DUPLICATE_RESOURCE; and DEPLOYMENT_OBJECT_EMPTY when there is no object at all.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import yaml

from broker.domain.model import Resource, ResourceKey
from broker.domain.validation import (
    Violations,
    entry_field,
    is_dns_label,
    is_dns_subdomain,
    validate_annotations,
    validate_labels,
)
from brokkr_common.errors import InvalidArgument

MAX_DEPTH = 64
MAX_OBJECTS = 5000
#: How much of a refused number an error message quotes.
_NUMBER_SHOWN = 40
_FLOAT_MAX = int(sys.float_info.max)

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_TAG = "tag:yaml.org,2002:"
_STR, _NULL, _BOOL, _INT, _FLOAT = (f"{_TAG}{name}" for name in ("str", "null", "bool", "int", "float"))
_TIMESTAMP, _MAP, _SEQ = f"{_TAG}timestamp", f"{_TAG}map", f"{_TAG}seq"
_NAME_MAX = 253
_KIND_MAX = 63
_VERSION = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")
_KIND = re.compile(r"[A-Z][A-Za-z0-9]*")
_NAME = re.compile(r"[a-z0-9]([-a-z0-9.:]*[a-z0-9])?")
# What the YAML reader would refuse (NUL and other controls, lone surrogates, U+FFFE/U+FFFF), found
# first so the error can point at a line and column.
_UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def checksum(yaml_text: str) -> str:
    """The deployment object's checksum: SHA-256 (hex) of its UTF-8 text."""
    return hashlib.sha256(yaml_text.encode("utf-8")).hexdigest()


def parse_manifests(
    yaml_text: str, *, max_bytes: int, field: str = "deployment_object.yaml_content"
) -> tuple[Resource, ...]:
    """The objects of a multi-document YAML stream, in order; `InvalidArgument` naming every problem."""
    _check_text(field, yaml_text, max_bytes)
    violations = Violations()
    resources: list[Resource] = []
    seen: dict[tuple[str, str, str, str], str] = {}
    for where, obj in _objects(field, _read(field, yaml_text)):
        problems = _check_object(obj)
        if problems:
            for problem in problems.found:
                path = f"{problem.field} " if problem.field else ""
                violations.add(
                    field, f"{_describe(where, obj)}: {path}{problem.description}", "INVALID_MANIFEST"
                )
            continue
        resource = _resource(obj)
        key = resource.key
        identity = (key.group, key.kind, key.namespace, key.name)
        if identity in seen:
            violations.add(
                field,
                f"{_describe(where, obj)} is the same object as {seen[identity]}: "
                "group, kind, namespace and name must be unique (the version does not count)",
                "DUPLICATE_RESOURCE",
            )
        seen.setdefault(identity, _describe(where, obj))
        resources.append(resource)
    violations.raise_if_any()
    if not resources:
        raise InvalidArgument.for_field(field, "contains no Kubernetes objects", "DEPLOYMENT_OBJECT_EMPTY")
    return tuple(resources)


# --- reading YAML ----------------------------------------------------------------------------------


def _check_text(field: str, text: str, max_bytes: int) -> None:
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise InvalidArgument.for_field(
            field, f"must be at most {max_bytes} bytes of UTF-8 (got {size})", "DEPLOYMENT_OBJECT_TOO_LARGE"
        )
    if found := _UNPRINTABLE.search(text):
        where, code = _position(text, found.start()), ord(found.group())
        raise InvalidArgument.for_field(
            field, f"{where}: contains U+{code:04X}, which YAML does not allow in a document", "INVALID_YAML"
        )


class _Refused(Exception):
    """A YAML feature or value the reader refuses, and where it is."""

    def __init__(self, event: Any, description: str, reason: str = "UNSUPPORTED_YAML") -> None:
        super().__init__(description)
        self.mark = event.start_mark
        self.description = description
        self.reason = reason


def _read(field: str, text: str) -> list[tuple[int, object]]:
    """The non-empty documents of the stream, as JSON values, with their index in the stream."""
    loader = _Loader(text)
    builder = _Builder(loader)
    documents: list[tuple[int, object]] = []
    index = -1
    try:
        loader.get_event()  # stream start
        while not loader.check_event(yaml.StreamEndEvent):
            loader.get_event()  # document start
            index += 1
            if index >= MAX_OBJECTS:
                raise InvalidArgument.for_field(
                    field, f"has more than {MAX_OBJECTS} documents", "TOO_MANY_OBJECTS"
                )
            document = builder.value(loader.get_event(), depth=0)
            loader.get_event()  # document end
            if document is not None:
                documents.append((index, document))
    except _Refused as refused:
        where = f"document {index}, {_mark(refused.mark)}"
        raise InvalidArgument.for_field(field, f"{where}: {refused.description}", refused.reason) from None
    except yaml.MarkedYAMLError as error:
        where = _mark(error.problem_mark) if error.problem_mark else f"document {index}"
        context = f" ({error.context})" if error.context else ""
        raise InvalidArgument.for_field(field, f"{where}: {error.problem}{context}", "INVALID_YAML") from None
    finally:
        loader.dispose()
    return documents


class _Builder:
    """Builds one document's JSON value from parser events, refusing what JSON cannot say."""

    def __init__(self, loader: Any) -> None:
        self._loader = loader

    def value(self, event: Any, *, depth: int) -> object:
        if isinstance(event, yaml.AliasEvent):
            raise _Refused(event, f"uses the alias *{event.anchor}; anchors and aliases are not supported")
        if event.anchor is not None:
            raise _Refused(
                event, f"defines the anchor &{event.anchor}; anchors and aliases are not supported"
            )
        if isinstance(event, yaml.ScalarEvent):
            return self._scalar(event)
        if depth >= MAX_DEPTH:
            raise _Refused(event, f"nests deeper than {MAX_DEPTH} levels")
        if isinstance(event, yaml.SequenceStartEvent):
            _check_tag(event, _SEQ)
            items = []
            while not isinstance(item := self._loader.get_event(), yaml.SequenceEndEvent):
                items.append(self.value(item, depth=depth + 1))
            return items
        _check_tag(event, _MAP)
        mapping: dict[str, object] = {}
        while not isinstance(key_event := self._loader.get_event(), yaml.MappingEndEvent):
            key = self._key(key_event)
            if key in mapping:
                raise _Refused(key_event, f"repeats the key {key!r}", "INVALID_YAML")
            mapping[key] = self.value(self._loader.get_event(), depth=depth + 1)
        return mapping

    def _key(self, event: Any) -> str:
        if (
            isinstance(event, yaml.ScalarEvent)
            and event.value == "<<"
            and event.tag is None
            and event.implicit[0]
        ):
            raise _Refused(event, "uses a merge key (<<); merge keys are not supported")
        if not isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            raise _Refused(event, "uses a mapping or list as a mapping key; keys must be strings")
        key = self.value(event, depth=0)
        if not isinstance(key, str):
            raise _Refused(
                event, f"has the key {event.value!r}, which YAML reads as {_json_type(key)}; quote it"
            )
        return key

    def _scalar(self, event: Any) -> object:
        value: str = event.value
        if event.tag == _STR or (event.tag is None and not event.implicit[0]):
            return value  # quoted, or tagged as a string
        tag = _RESOLVER.resolve(yaml.ScalarNode, value, (True, False))
        if event.tag not in (None, tag):
            _check_tag(event, *_CONSTRUCTORS)
            raise _Refused(event, f"uses the tag {_short(event.tag)}, which does not fit {value!r}")
        if tag == _TIMESTAMP:
            raise _Refused(
                event, f"has the timestamp {value}, which JSON cannot hold; quote it to keep the text"
            )
        construct = _CONSTRUCTORS.get(tag)
        if construct is None:
            return value  # `=` or `<<` as a value: YAML types Kubernetes reads as text
        try:
            constructed = construct(yaml.ScalarNode(tag, value))
        except ValueError:  # an integer of more digits than Python converts from text (4300)
            constructed = math.inf
        if not _fits_json(constructed):
            shown = (
                value
                if len(value) <= _NUMBER_SHOWN
                else f"{value[:_NUMBER_SHOWN]}... ({len(value)} characters)"
            )
            raise _Refused(
                event, f"has the number {shown}, which JSON cannot hold; quote it to keep the text"
            )
        return constructed


def _fits_json(value: object) -> bool:
    """Whether a number survives JSON as Kubernetes reads it: int64 or float64, so finite and at
    most float64's range (a 5000-digit integer would not even turn back into text)."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return abs(value) <= _FLOAT_MAX
    return True


_RESOLVER = yaml.resolver.Resolver()
_CONSTRUCTOR = yaml.constructor.SafeConstructor()
_CONSTRUCTORS: Mapping[str, Callable[[yaml.ScalarNode], object]] = {
    _NULL: _CONSTRUCTOR.construct_yaml_null,
    _BOOL: _CONSTRUCTOR.construct_yaml_bool,
    _INT: _CONSTRUCTOR.construct_yaml_int,
    _FLOAT: _CONSTRUCTOR.construct_yaml_float,
}


def _check_tag(event: Any, *allowed: str) -> None:
    if event.tag not in (None, *allowed):
        raise _Refused(event, f"uses the tag {_short(event.tag)}, which is not allowed")


def _short(tag: str) -> str:
    return tag.replace(_TAG, "!!")


def _mark(mark: Any) -> str:
    return f"line {mark.line + 1} column {mark.column + 1}"


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    return f"line {line} column {index - text.rfind(chr(10), 0, index)}"


def _json_type(value: object) -> str:
    names = {type(None): "null", bool: "a boolean", int: "a number", float: "a number", str: "a string"}
    return names.get(type(value), "a list" if isinstance(value, list) else "a mapping")


# --- checking objects ------------------------------------------------------------------------------


def _objects(field: str, documents: list[tuple[int, object]]) -> Iterator[tuple[str, object]]:
    """Every object with where it is, a `v1 List` replaced by its items (recursively)."""
    count = 0

    def expand(where: str, obj: object) -> Iterator[tuple[str, object]]:
        nonlocal count
        items = _list_items(obj)
        if items is not None:
            for position, item in enumerate(items):
                yield from expand(f"{where} items[{position}]", item)
            return
        count += 1
        if count > MAX_OBJECTS:
            raise InvalidArgument.for_field(field, f"has more than {MAX_OBJECTS} objects", "TOO_MANY_OBJECTS")
        yield where, obj

    for index, document in documents:
        yield from expand(f"document {index}", document)


def _list_items(obj: object) -> list[object] | None:
    """The items of a well-formed `v1 List` (missing or null items: none), else None."""
    if not isinstance(obj, dict) or not _is_list(obj):
        return None
    items = obj.get("items") or []
    return items if isinstance(items, list) else None


def _is_list(obj: object) -> bool:
    return isinstance(obj, dict) and obj.get("apiVersion") == "v1" and obj.get("kind") == "List"


def _check_object(obj: object) -> Violations:
    """Every problem of one object; fields are paths inside it."""
    problems = Violations()
    if not isinstance(obj, dict):
        problems.add("", f"must be a Kubernetes object (a mapping), not {_json_type(obj)}")
        return problems
    api_version, kind, metadata = obj.get("apiVersion"), obj.get("kind"), obj.get("metadata")
    if api_version is None:
        problems.add("apiVersion", "is required")
    elif not (isinstance(api_version, str) and _is_api_version(api_version)):
        problems.add("apiVersion", 'must be "v1" or "group/version", e.g. "apps/v1"')
    if kind is None:
        problems.add("kind", "is required")
    elif not (isinstance(kind, str) and len(kind) <= _KIND_MAX and _KIND.fullmatch(kind)):
        problems.add("kind", f"must be a CamelCase name of letters and digits (at most {_KIND_MAX})")
    if _is_list(obj):  # one whose items are not a list, or it would have been expanded
        problems.add("items", "must be a list of objects")
        return problems
    if metadata is None:
        problems.add("metadata", "is required")
    elif not isinstance(metadata, dict):
        problems.add("metadata", "must be a mapping")
    else:
        _check_metadata(metadata, problems)
    return problems


def _is_api_version(text: str) -> bool:
    group, slash, version = text.rpartition("/")
    return _VERSION.fullmatch(version) is not None and (not slash or is_dns_subdomain(group))


def _check_metadata(metadata: dict[str, Any], problems: Violations) -> None:
    name, namespace = metadata.get("name"), metadata.get("namespace")
    if name is None:
        hint = (
            " (generateName is not supported: objects are applied by name)"
            if "generateName" in metadata
            else ""
        )
        problems.add("metadata.name", f"is required{hint}")
    elif not (isinstance(name, str) and len(name) <= _NAME_MAX and _NAME.fullmatch(name)):
        problems.add(
            "metadata.name",
            f"must be at most {_NAME_MAX} lower-case letters, digits, '-', '.' and ':', "
            "starting and ending with a letter or digit",
        )
    if namespace not in (None, "") and not (isinstance(namespace, str) and is_dns_label(namespace)):
        problems.add("metadata.namespace", "must be a DNS label: lower-case letters, digits and '-'")
    _check_string_map(problems, "metadata.labels", metadata.get("labels"), validate_labels)
    _check_string_map(problems, "metadata.annotations", metadata.get("annotations"), validate_annotations)


def _check_string_map(
    problems: Violations, path: str, value: object, validate: Callable[[str, Mapping[str, str]], None]
) -> None:
    if value is None:
        return
    if not isinstance(value, dict):
        problems.add(path, "must be a mapping of strings")
        return
    not_strings = [key for key, item in value.items() if not isinstance(item, str)]
    for key in not_strings:
        problems.add(entry_field(path, key), "must be a string; quote it")
    if not not_strings:
        problems.check(validate, path, value)


def _describe(where: str, obj: object) -> str:
    """`document 3 (apps/v1 Deployment web)`, with whichever of the three parts are readable."""
    if not isinstance(obj, dict):
        return where
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    parts = [part for part in (obj.get("apiVersion"), obj.get("kind"), name) if isinstance(part, str)]
    return f"{where} ({' '.join(parts)})" if parts else where


def _resource(obj: dict[str, Any]) -> Resource:
    group, _, version = obj["apiVersion"].rpartition("/")
    metadata = obj["metadata"]
    key = ResourceKey(group, version, obj["kind"], metadata.get("namespace") or "", metadata["name"])
    manifest_json = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Resource(key, hashlib.sha256(manifest_json.encode("utf-8")).hexdigest(), manifest_json)
