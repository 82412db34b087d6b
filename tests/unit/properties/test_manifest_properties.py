"""YAML -> resources, for any input: what a pipeline submits is read back exactly, in any document
order or packaging, and anything else is refused with an InvalidArgument naming the field.

`tests/unit/domain/test_manifest_parsing.py` already checks that dumped objects parse back with
hashes independent of formatting; these properties add document order, `v1 List` packaging,
and hostile text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.manifests import parse_manifests
from broker.domain.model import ResourceKey
from brokkr_common.errors import InvalidArgument

LIMIT = 1024 * 1024
FIELD = "deployment_object.yaml_content"
#: Every reason `parse_manifests` may give (its module docstring lists them).
REASONS = {
    "DEPLOYMENT_OBJECT_TOO_LARGE",
    "INVALID_YAML",
    "UNSUPPORTED_YAML",
    "TOO_MANY_OBJECTS",
    "INVALID_MANIFEST",
    "DUPLICATE_RESOURCE",
    "DEPLOYMENT_OBJECT_EMPTY",
    "INVALID_ARGUMENT",  # several of the above at once
}

_dns_labels = st.text("abz09-", max_size=8).map(lambda middle: f"a{middle}9")
_label_text = st.text("aZ09-_.", max_size=8).map(lambda middle: f"A{middle}z")
# Values as a ConfigMap holds them: any text but lone surrogates (not encodable as UTF-8) and the
# Unicode line breaks NEL, LS and PS, which PyYAML's emitter writes raw into quoted scalars with
# allow_unicode although YAML reads them as line breaks (a dumper bug, not a reader one).
_data_text = st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x85\u2028\u2029"), max_size=30
)


@st.composite
def config_maps(draw: st.DrawFn) -> list[dict[str, Any]]:
    """1-6 ConfigMap-like objects with distinct keys, in any namespace (or none)."""
    identities = draw(
        st.lists(
            st.tuples(st.sampled_from(["", "prod", "dev"]), _dns_labels),
            min_size=1,
            max_size=6,
            unique=True,
        )
    )
    objects = []
    for namespace, name in identities:
        metadata: dict[str, Any] = {"name": name}
        if namespace:
            metadata["namespace"] = namespace
        labels = draw(st.dictionaries(_label_text, _label_text | st.just(""), max_size=3))
        if labels:
            metadata["labels"] = labels
        annotations = draw(
            st.dictionaries(st.sampled_from(["note", "example.com/owner"]), _data_text, max_size=2)
        )
        if annotations:
            metadata["annotations"] = annotations
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": metadata,
                "data": draw(
                    st.dictionaries(st.text("abcXYZ._-", min_size=1, max_size=10), _data_text, max_size=5)
                ),
            }
        )
    return objects


def canonical_hash(obj: dict[str, Any]) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def key_of(obj: dict[str, Any]) -> tuple[str, str, str, str, str]:
    metadata = obj["metadata"]
    return ("", "v1", obj["kind"], metadata.get("namespace", ""), metadata["name"])


def identity(key: ResourceKey) -> tuple[str, str, str, str, str]:
    return (key.group, key.version, key.kind, key.namespace, key.name)


def hashes_by_key(text: str) -> dict[tuple[str, ...], str]:
    return {identity(r.key): r.content_hash for r in parse_manifests(text, max_bytes=LIMIT)}


@settings(max_examples=60, deadline=None)
@given(objects=config_maps(), data=st.data())
def test_any_config_maps_read_back_with_their_keys_and_canonical_content(
    objects: list[dict[str, Any]], data: st.DataObject
) -> None:
    text = yaml.safe_dump_all(objects, allow_unicode=data.draw(st.booleans()))

    resources = parse_manifests(text, max_bytes=LIMIT)

    assert [identity(r.key) for r in resources] == [key_of(obj) for obj in objects]
    assert [json.loads(r.manifest_json) for r in resources] == objects
    assert [r.content_hash for r in resources] == [canonical_hash(obj) for obj in objects]


@settings(max_examples=60, deadline=None)
@given(objects=config_maps(), data=st.data())
def test_reordering_documents_changes_no_resource_hash(
    objects: list[dict[str, Any]], data: st.DataObject
) -> None:
    shuffled = data.draw(st.permutations(objects))

    original = hashes_by_key(yaml.safe_dump_all(objects))
    reordered = hashes_by_key(yaml.safe_dump_all(shuffled, default_flow_style=True))

    assert reordered == original
    assert len(original) == len(objects)


@settings(max_examples=40, deadline=None)
@given(objects=config_maps(), split=st.integers(0, 6))
def test_packing_objects_into_v1_lists_changes_nothing(objects: list[dict[str, Any]], split: int) -> None:
    documents = [{"apiVersion": "v1", "kind": "List", "items": objects[:split]}, *objects[split:]]

    listed = parse_manifests(yaml.safe_dump_all(documents), max_bytes=LIMIT)

    assert listed == parse_manifests(yaml.safe_dump_all(objects), max_bytes=LIMIT)


@settings(max_examples=40, deadline=None)
@given(objects=config_maps(), data=st.data())
def test_submitting_any_object_twice_is_a_duplicate(
    objects: list[dict[str, Any]], data: st.DataObject
) -> None:
    again = data.draw(st.sampled_from(objects))
    position = data.draw(st.integers(0, len(objects)))
    documents = [*objects[:position], again, *objects[position:]]

    with pytest.raises(InvalidArgument) as raised:
        parse_manifests(yaml.safe_dump_all(documents), max_bytes=LIMIT)

    assert [(v.field, v.reason) for v in raised.value.field_violations] == [(FIELD, "DUPLICATE_RESOURCE")]


def _refusal_is_precise(error: InvalidArgument) -> None:
    assert error.reason in REASONS, error
    assert error.field_violations, error
    assert {v.field for v in error.field_violations} == {FIELD}
    assert all(v.reason in REASONS and v.description for v in error.field_violations)


@settings(max_examples=150, deadline=None)
@given(text=st.text(st.characters(exclude_categories=["Cs"]), max_size=200))
def test_any_text_is_either_objects_or_a_precise_refusal(text: str) -> None:
    try:
        parse_manifests(text, max_bytes=LIMIT)
    except InvalidArgument as error:
        _refusal_is_precise(error)


@settings(max_examples=100, deadline=None)
@given(
    objects=config_maps(),
    cut=st.integers(0, 10_000),
    inserted=st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=4)
    | st.sampled_from(
        ["&a ", "*a", "<<: ", "!!python/object ", "\x00", "\t", "{", "[", "'", '"', "---\n", ": "]
    ),
)
def test_corrupted_documents_are_objects_or_a_precise_refusal(
    objects: list[dict[str, Any]], cut: int, inserted: str
) -> None:
    text = yaml.safe_dump_all(objects)
    position = cut % (len(text) + 1)
    corrupted = text[:position] + inserted + text[position:]

    try:
        resources = parse_manifests(corrupted, max_bytes=LIMIT)
    except InvalidArgument as error:
        _refusal_is_precise(error)
    else:
        # Whatever was accepted is a set of Kubernetes objects with unique identities.
        identities = [(r.key.group, r.key.kind, r.key.namespace, r.key.name) for r in resources]
        assert len(set(identities)) == len(identities)
        assert all(r.content_hash == hashlib.sha256(r.manifest_json.encode()).hexdigest() for r in resources)


_SPELLINGS = {"decimal": "{:d}", "hex": "{:#x}", "octal": "{:#o}"}


@settings(max_examples=100, deadline=None)
@given(number=st.integers(), spelling=st.sampled_from(sorted(_SPELLINGS)))
def test_any_integer_in_float64_range_reads_back_exactly(number: int, spelling: str) -> None:
    written = _SPELLINGS[spelling].format(number).replace("0o", "0")  # YAML 1.1 writes octal as 017
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  n: {written}\n"

    [resource] = parse_manifests(text, max_bytes=LIMIT)

    assert json.loads(resource.manifest_json)["data"]["n"] == number


@settings(max_examples=30, deadline=None)
@given(
    digits=st.integers(min_value=1100, max_value=8000),
    sign=st.sampled_from(["", "-", "+"]),
    prefix=st.sampled_from(["", "0x", "0b"]),
)
def test_integers_beyond_float64_are_refused_however_long(digits: int, sign: str, prefix: str) -> None:
    """Kubernetes reads JSON numbers as int64 or float64; beyond that they are refused, precisely,
    even past the 4300 digits Python will not turn into text."""
    text = (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: a}}\ndata:\n  n: {sign}{prefix}1{'0' * digits}\n"
    )

    with pytest.raises(InvalidArgument) as raised:
        parse_manifests(text, max_bytes=LIMIT)

    assert raised.value.reason == "UNSUPPORTED_YAML"
    assert "which JSON cannot hold" in raised.value.message
