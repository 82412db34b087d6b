"""A deployment object's YAML: what the broker accepts, what it refuses, and what it tells the user."""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.manifests import MAX_DEPTH, MAX_OBJECTS, checksum, parse_manifests
from broker.domain.model import ResourceKey
from brokkr_common.errors import InvalidArgument

FIELD = "deployment_object.yaml_content"
LIMIT = 1024 * 1024

CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: web
data:
  mode: fast
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: web
  labels: {app: web}
spec:
  replicas: 3
  template:
    spec:
      containers: [{name: web, image: "nginx:1.25"}]
"""


def refusal(yaml_text: str, max_bytes: int = LIMIT) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as error:
        parse_manifests(yaml_text, max_bytes=max_bytes)
    assert {v.field for v in error.value.field_violations} == {FIELD}
    return error.value


def descriptions(error: InvalidArgument) -> list[str]:
    return [violation.description for violation in error.field_violations]


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def object_yaml(api_version: str = "v1", kind: str = "ConfigMap", name: str = "x", **metadata: Any) -> str:
    return yaml.safe_dump({"apiVersion": api_version, "kind": kind, "metadata": {"name": name, **metadata}})


# --- what comes out ------------------------------------------------------------------------------


def test_objects_come_out_in_order_with_keys_canonical_json_and_its_hash() -> None:
    resources = parse_manifests(CONFIG_MAP + "---\n" + DEPLOYMENT, max_bytes=LIMIT)
    assert [r.key for r in resources] == [
        ResourceKey("", "v1", "ConfigMap", "web", "settings"),
        ResourceKey("apps", "v1", "Deployment", "web", "web"),
    ]
    deployment = resources[1]
    assert deployment.manifest_json == canonical(yaml.safe_load(DEPLOYMENT))
    assert json.loads(deployment.manifest_json)["spec"]["replicas"] == 3
    assert deployment.content_hash == hashlib.sha256(deployment.manifest_json.encode()).hexdigest()


def test_cluster_scoped_objects_have_no_namespace_and_rbac_names_may_hold_colons() -> None:
    (role,) = parse_manifests(
        object_yaml("rbac.authorization.k8s.io/v1", "ClusterRole", "system:auth-delegator"), max_bytes=LIMIT
    )
    assert role.key == ResourceKey(
        "rbac.authorization.k8s.io", "v1", "ClusterRole", "", "system:auth-delegator"
    )


def test_empty_documents_are_skipped_but_keep_their_place_in_error_messages() -> None:
    resources = parse_manifests("---\n---\n# only a comment\n---\n" + CONFIG_MAP + "---\n", max_bytes=LIMIT)
    assert [r.key.name for r in resources] == ["settings"]
    error = refusal("---\n---\n" + CONFIG_MAP + "---\nkind: Secret\n")
    assert descriptions(error)[0] == "document 2 (Secret): apiVersion is required"


def test_a_v1_list_stands_for_its_items_even_nested() -> None:
    listing = {
        "apiVersion": "v1",
        "kind": "List",
        "items": [
            yaml.safe_load(CONFIG_MAP),
            {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(DEPLOYMENT)]},
            {"apiVersion": "v1", "kind": "List"},
        ],
    }
    resources = parse_manifests(yaml.safe_dump(listing), max_bytes=LIMIT)
    assert [r.key.kind for r in resources] == ["ConfigMap", "Deployment"]
    assert resources[1].manifest_json == canonical(yaml.safe_load(DEPLOYMENT))


def test_list_items_are_named_by_position_in_errors() -> None:
    listing = {"apiVersion": "v1", "kind": "List", "items": [yaml.safe_load(CONFIG_MAP), {"kind": "Pod"}]}
    error = refusal(yaml.safe_dump(listing))
    assert descriptions(error)[0] == "document 0 items[1] (Pod): apiVersion is required"


def test_a_list_whose_items_are_not_a_list_is_refused() -> None:
    error = refusal("apiVersion: v1\nkind: List\nitems: {a: b}\n")
    assert error.reason == "INVALID_MANIFEST"
    assert descriptions(error) == ["document 0 (v1 List): items must be a list of objects"]


def test_content_hash_ignores_key_order_formatting_quoting_and_comments() -> None:
    block = DEPLOYMENT
    flow = (
        "# the same deployment\n"
        '{"spec": {"template": {"spec": {"containers": [{"image": "nginx:1.25", "name": web}]}},'
        " replicas: 3}, kind: 'Deployment', metadata: {labels: {app: web}, namespace: web, name: web},"
        " apiVersion: apps/v1}\n"
    )
    (first,), (second,) = parse_manifests(block, max_bytes=LIMIT), parse_manifests(flow, max_bytes=LIMIT)
    assert (first.content_hash, first.manifest_json) == (second.content_hash, second.manifest_json)
    (changed,) = parse_manifests(block.replace("replicas: 3", "replicas: 4"), max_bytes=LIMIT)
    assert changed.content_hash != first.content_hash


def test_checksum_is_the_sha256_of_the_exact_text() -> None:
    assert checksum("apiVersion: v1\n") == hashlib.sha256(b"apiVersion: v1\n").hexdigest()
    assert checksum("name: caf\u00e9") == hashlib.sha256("name: café".encode()).hexdigest()
    assert checksum(DEPLOYMENT) != checksum(DEPLOYMENT + "\n")


@pytest.mark.parametrize(
    ("scalar", "value"),
    [
        ("3", 3),
        ("0x1F", 31),
        ("0644", 420),
        ("1_000", 1000),
        ("2.5", 2.5),
        ("true", True),
        ("yes", True),
        ("Off", False),
        ("~", None),
        ("null", None),
        ("", None),
        ("'2024-01-01'", "2024-01-01"),
        ('"3"', "3"),
        ("!!str 3", "3"),
        ("!!int '3'", 3),
        ("!!float 1.5", 1.5),
        ("=", "="),
        ("nginx:1.25", "nginx:1.25"),
    ],
    ids=[
        "int",
        "hex",
        "octal-file-mode",
        "underscores",
        "float",
        "true",
        "yes",
        "off",
        "tilde",
        "null",
        "empty",
        "quoted-date",
        "quoted-number",
        "str-tag",
        "int-tag",
        "float-tag",
        "equals-sign",
        "image",
    ],
)
def test_yaml_1_1_scalars_become_the_json_values_kubectl_would_send(scalar: str, value: object) -> None:
    (resource,) = parse_manifests(object_yaml() + f"data:\n  v: {scalar}\n", max_bytes=LIMIT)
    read = json.loads(resource.manifest_json)["data"]["v"]
    assert (read, type(read)) == (value, type(value))


def test_nesting_up_to_the_limit_is_fine() -> None:
    nested = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)  # the object and `spec` are two levels
    (resource,) = parse_manifests(object_yaml() + f"spec: {nested}\n", max_bytes=LIMIT)
    assert resource.manifest_json.count("[") == MAX_DEPTH - 2


def test_size_is_counted_in_utf8_bytes_and_the_limit_itself_is_allowed() -> None:
    text = object_yaml() + "data: {v: " + "é" * 100 + "}\n"
    size = len(text.encode())
    parse_manifests(text, max_bytes=size)
    error = refusal(text, max_bytes=size - 1)
    assert error.reason == "DEPLOYMENT_OBJECT_TOO_LARGE"
    assert descriptions(error) == [f"must be at most {size - 1} bytes of UTF-8 (got {size})"]


# --- what is refused -----------------------------------------------------------------------------

BILLION_LAUGHS = """\
apiVersion: v1
kind: ConfigMap
metadata: {name: lol}
data:
  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
  b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
  c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
  d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
  e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
  f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
  g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
  h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
  i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


@pytest.mark.parametrize(
    ("text", "reason", "description"),
    [
        (
            BILLION_LAUGHS,
            "UNSUPPORTED_YAML",
            "document 0, line 5 column 6: defines the anchor &a; anchors and aliases are not supported",
        ),
        (
            CONFIG_MAP + "  copy: *other\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 9: uses the alias *other; anchors and aliases are not supported",
        ),
        (
            CONFIG_MAP + "  x: !!python/object/apply:os.system [echo hi]\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!python/object/apply:os.system, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!python/object:collections.OrderedDict {}\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!python/object:collections.OrderedDict, "
            "which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!python/name:os.system\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!python/name:os.system, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!binary aGVsbG8=\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!binary, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!set {a, b}\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!set, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!omap [a: 1]\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!omap, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !secret value\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !secret, which is not allowed",
        ),
        (
            CONFIG_MAP + "  x: !!int twelve\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: uses the tag !!int, which does not fit 'twelve'",
        ),
        (
            CONFIG_MAP + "  x: !!timestamp 2024-01-01\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 6: has the timestamp 2024-01-01, which JSON cannot hold; "
            "quote it to keep the text",
        ),
        (
            CONFIG_MAP + "  released: 2024-01-01\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 13: has the timestamp 2024-01-01, which JSON cannot hold; "
            "quote it to keep the text",
        ),
        (
            CONFIG_MAP + "  at: 2024-01-01T10:00:00Z\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 7: has the timestamp 2024-01-01T10:00:00Z, which JSON cannot hold; "
            "quote it to keep the text",
        ),
        (
            CONFIG_MAP + "  ratio: .nan\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 10: has the number .nan, which JSON cannot hold; "
            "quote it to keep the text",
        ),
        (
            CONFIG_MAP + "  limit: -.inf\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 10: has the number -.inf, which JSON cannot hold; "
            "quote it to keep the text",
        ),
        (
            CONFIG_MAP + "  80: http\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 3: has the key '80', which YAML reads as a number; quote it",
        ),
        (
            CONFIG_MAP + "  on: push\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 3: has the key 'on', which YAML reads as a boolean; quote it",
        ),
        (
            CONFIG_MAP + "  ~: nothing\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 3: has the key '~', which YAML reads as null; quote it",
        ),
        (
            CONFIG_MAP + "  ? [a, b]\n  : pair\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 5: uses a mapping or list as a mapping key; keys must be strings",
        ),
        (
            CONFIG_MAP + "  <<: {extra: 1}\n",
            "UNSUPPORTED_YAML",
            "document 0, line 8 column 3: uses a merge key (<<); merge keys are not supported",
        ),
        (
            CONFIG_MAP + "  mode: slow\n",
            "INVALID_YAML",
            "document 0, line 8 column 3: repeats the key 'mode'",
        ),
        (
            CONFIG_MAP + "  x: [1, 2\n",
            "INVALID_YAML",
            "line 9 column 1: did not find expected ',' or ']' (while parsing a flow sequence)",
        ),
        (
            CONFIG_MAP + "  x: 'unterminated\n",
            "INVALID_YAML",
            "line 9 column 1: found unexpected end of stream (while scanning a quoted scalar)",
        ),
        (
            CONFIG_MAP.replace("fast", "fa\0st"),
            "INVALID_YAML",
            "line 7 column 11: contains U+0000, which YAML does not allow in a document",
        ),
        (
            CONFIG_MAP.replace("fast", "fa\x1bst"),
            "INVALID_YAML",
            "line 7 column 11: contains U+001B, which YAML does not allow in a document",
        ),
        (
            CONFIG_MAP.replace("fast", "fa\ud800st"),
            "INVALID_YAML",
            "line 7 column 11: contains U+D800, which YAML does not allow in a document",
        ),
        ("", "DEPLOYMENT_OBJECT_EMPTY", "contains no Kubernetes objects"),
        ("---\n--- ~\n# nothing\n", "DEPLOYMENT_OBJECT_EMPTY", "contains no Kubernetes objects"),
        (
            "apiVersion: v1\nkind: List\nitems: []\n",
            "DEPLOYMENT_OBJECT_EMPTY",
            "contains no Kubernetes objects",
        ),
    ],
    ids=[
        "billion-laughs",
        "alias",
        "python-apply-tag",
        "python-object-tag",
        "python-name-tag",
        "binary-tag",
        "set-tag",
        "omap-tag",
        "local-tag",
        "tag-mismatch",
        "timestamp-tag",
        "date",
        "datetime",
        "nan",
        "infinity",
        "number-key",
        "boolean-key",
        "null-key",
        "complex-key",
        "merge-key",
        "repeated-key",
        "unclosed-flow",
        "unterminated-quote",
        "nul",
        "escape-character",
        "lone-surrogate",
        "empty-text",
        "only-empty-documents",
        "empty-list",
    ],
)
def test_refused(text: str, reason: str, description: str) -> None:
    error = refusal(text)
    assert error.reason == reason
    assert descriptions(error) == [description]


def test_nesting_deeper_than_the_limit_is_refused_without_recursing_into_it() -> None:
    text = object_yaml() + "spec: " + "[" * 100_000 + "]" * 100_000 + "\n"
    error = refusal(text)
    assert error.reason == "UNSUPPORTED_YAML"
    assert descriptions(error) == [
        f"document 0, line 5 column {len('spec: ') + MAX_DEPTH}: nests deeper than 64 levels"
    ]


def test_too_many_documents_are_refused() -> None:
    error = refusal(CONFIG_MAP + "---\n" * MAX_OBJECTS)
    assert error.reason == "TOO_MANY_OBJECTS"
    assert descriptions(error) == ["has more than 5000 documents"]


def test_too_many_objects_through_a_list_are_refused() -> None:
    items = ",".join(
        f'{{"kind":"ConfigMap","apiVersion":"v1","metadata":{{"name":"c{n}"}}}}' for n in range(5001)
    )
    error = refusal(f'{{"apiVersion":"v1","kind":"List","items":[{items}]}}')
    assert error.reason == "TOO_MANY_OBJECTS"
    assert descriptions(error) == ["has more than 5000 objects"]


@pytest.mark.parametrize(
    ("text", "description"),
    [
        ("- a\n- b\n", "document 0: must be a Kubernetes object (a mapping), not a list"),
        ("just text\n", "document 0: must be a Kubernetes object (a mapping), not a string"),
        ("42\n", "document 0: must be a Kubernetes object (a mapping), not a number"),
        ("kind: Pod\nmetadata: {name: p}\n", "document 0 (Pod p): apiVersion is required"),
        ("apiVersion: v1\nmetadata: {name: p}\n", "document 0 (v1 p): kind is required"),
        ("apiVersion: v1\nkind: Pod\n", "document 0 (v1 Pod): metadata is required"),
        ("apiVersion: v1\nkind: Pod\nmetadata: [p]\n", "document 0 (v1 Pod): metadata must be a mapping"),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {namespace: web}\n",
            "document 0 (v1 Pod): metadata.name is required",
        ),
        (
            "apiVersion: v1\nkind: Pod\nmetadata: {generateName: web-}\n",
            "document 0 (v1 Pod): metadata.name is required "
            "(generateName is not supported: objects are applied by name)",
        ),
    ],
    ids=[
        "list",
        "string",
        "number",
        "no-api-version",
        "no-kind",
        "no-metadata",
        "metadata-not-mapping",
        "no-name",
        "generate-name",
    ],
)
def test_documents_that_are_not_kubernetes_objects(text: str, description: str) -> None:
    error = refusal(text)
    assert error.reason == "INVALID_MANIFEST"
    assert descriptions(error) == [description]


LABEL_TEXT = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
NAME_RULE = (
    "must be at most 253 lower-case letters, digits, '-', '.' and ':', "
    "starting and ending with a letter or digit"
)
API_VERSION_RULE = 'must be "v1" or "group/version", e.g. "apps/v1"'
KIND_RULE = "must be a CamelCase name of letters and digits (at most 63)"


@pytest.mark.parametrize(
    ("patch", "path", "rule"),
    [
        ({"metadata": {"name": "Web"}}, "metadata.name", NAME_RULE),
        ({"metadata": {"name": "web_1"}}, "metadata.name", NAME_RULE),
        ({"metadata": {"name": "-web"}}, "metadata.name", NAME_RULE),
        ({"metadata": {"name": "web."}}, "metadata.name", NAME_RULE),
        ({"metadata": {"name": "w" * 254}}, "metadata.name", NAME_RULE),
        ({"metadata": {"name": 123}}, "metadata.name", NAME_RULE),
        (
            {"metadata": {"namespace": "Web"}},
            "metadata.namespace",
            "must be a DNS label: lower-case letters, digits and '-'",
        ),
        (
            {"metadata": {"namespace": "a.b"}},
            "metadata.namespace",
            "must be a DNS label: lower-case letters, digits and '-'",
        ),
        ({"apiVersion": "apps/"}, "apiVersion", API_VERSION_RULE),
        ({"apiVersion": "/v1"}, "apiVersion", API_VERSION_RULE),
        ({"apiVersion": "Apps/v1"}, "apiVersion", API_VERSION_RULE),
        ({"apiVersion": "apps/v1/beta"}, "apiVersion", API_VERSION_RULE),
        ({"apiVersion": "V1"}, "apiVersion", API_VERSION_RULE),
        ({"apiVersion": 1}, "apiVersion", API_VERSION_RULE),
        ({"kind": "deployment"}, "kind", KIND_RULE),
        ({"kind": "Deploy-ment"}, "kind", KIND_RULE),
        ({"kind": "D" * 64}, "kind", KIND_RULE),
        (
            {"metadata": {"labels": {"bad key": "v"}}},
            'metadata.labels["bad key"]',
            f"key name must consist of {LABEL_TEXT}",
        ),
        (
            {"metadata": {"labels": {"app": "-web"}}},
            'metadata.labels["app"]',
            f"value must be empty or consist of {LABEL_TEXT}",
        ),
        (
            {"metadata": {"labels": {"replicas": 3}}},
            'metadata.labels["replicas"]',
            "must be a string; quote it",
        ),
        ({"metadata": {"labels": ["app"]}}, "metadata.labels", "must be a mapping of strings"),
        (
            {"metadata": {"annotations": {"a/b/c": "v"}}},
            'metadata.annotations["a/b/c"]',
            "key must contain at most one '/'",
        ),
        (
            {"metadata": {"annotations": {"big": "x" * 262_142}}},
            "metadata.annotations",
            "must total at most 262144 bytes of keys and values (got 262145)",
        ),
    ],
    ids=[
        "name-upper-case",
        "name-underscore",
        "name-leading-dash",
        "name-trailing-dot",
        "name-254-chars",
        "name-number",
        "namespace-upper-case",
        "namespace-dot",
        "api-version-no-version",
        "api-version-no-group",
        "api-version-upper-case-group",
        "api-version-two-slashes",
        "api-version-upper-case",
        "api-version-number",
        "kind-lower-case",
        "kind-dash",
        "kind-64-chars",
        "label-key",
        "label-value",
        "label-not-string",
        "labels-not-mapping",
        "annotation-key",
        "annotations-too-large",
    ],
)
def test_bad_fields_are_named_by_document_object_and_path(
    patch: dict[str, Any], path: str, rule: str
) -> None:
    obj = {
        "apiVersion": "v1",
        "kind": "Service",
        **patch,
        "metadata": {"name": "web", **patch.get("metadata", {})},
    }
    error = refusal(CONFIG_MAP + "---\n" + yaml.safe_dump(obj))
    assert error.reason == "INVALID_MANIFEST"
    (description,) = descriptions(error)
    assert description.startswith("document 1 (")
    assert description.endswith(f"): {path} {rule}")


def test_every_bad_object_is_reported_at_once() -> None:
    error = refusal(
        "kind: Pod\n---\n" + CONFIG_MAP + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: Bad}\n"
    )
    assert descriptions(error) == [
        "document 0 (Pod): apiVersion is required",
        "document 0 (Pod): metadata is required",
        f"document 2 (v1 Pod Bad): metadata.name {NAME_RULE}",
    ]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("apps/v1", "Deployment", "web", "web"), ("apps/v1beta1", "Deployment", "web", "web")),
        (("v1", "ConfigMap", "", "settings"), ("v1", "ConfigMap", "", "settings")),
    ],
    ids=["same-group-other-version", "identical"],
)
def test_the_same_object_twice_is_refused_naming_both_documents(
    first: tuple[str, str, str, str], second: tuple[str, str, str, str]
) -> None:
    def document(api_version: str, kind: str, namespace: str, name: str) -> str:
        return object_yaml(api_version, kind, name, **({"namespace": namespace} if namespace else {}))

    error = refusal(
        document(*first) + "---\n" + CONFIG_MAP.replace("settings", "other") + "---\n" + document(*second)
    )
    assert error.reason == "DUPLICATE_RESOURCE"
    assert descriptions(error) == [
        f"document 2 ({second[0]} {second[1]} {second[3]}) is the same object as "
        f"document 0 ({first[0]} {first[1]} {first[3]}): "
        "group, kind, namespace and name must be unique (the version does not count)"
    ]


def test_same_name_in_another_namespace_kind_or_group_is_another_object() -> None:
    resources = parse_manifests(
        "---\n".join(
            [
                object_yaml("apps/v1", "Deployment", "web", namespace="a"),
                object_yaml("apps/v1", "Deployment", "web", namespace="b"),
                object_yaml("apps/v1", "StatefulSet", "web", namespace="a"),
                object_yaml("example.com/v1", "Deployment", "web", namespace="a"),
            ]
        ),
        max_bytes=LIMIT,
    )
    assert len(resources) == 4


# --- properties ----------------------------------------------------------------------------------

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Built around a fixed first and last character, so every draw is valid without slow regex strategies.
_dns_labels = st.text("az09-", max_size=6).map(lambda middle: f"a{middle}0")
_label_text = st.text("aZ09-_.", max_size=6).map(lambda middle: f"A{middle}z")


@st.composite
def _objects(draw: st.DrawFn) -> list[dict[str, Any]]:
    names = draw(st.lists(_dns_labels, min_size=1, max_size=5, unique=True))
    return [
        {
            "apiVersion": draw(st.sampled_from(["v1", "apps/v1", "example.com/v1alpha1"])),
            "kind": draw(st.sampled_from(["ConfigMap", "Deployment", "Widget"])),
            "metadata": {
                "name": name,
                "namespace": draw(_dns_labels),
                "labels": draw(st.dictionaries(_label_text, _label_text | st.just(""), max_size=3)),
            },
            "data": draw(
                st.dictionaries(
                    st.text(string.ascii_letters, min_size=1, max_size=8), _json_values, max_size=4
                )
            ),
        }
        for name in names
    ]


@settings(max_examples=60, deadline=None)
@given(objects=_objects(), sort_keys=st.booleans())
def test_parsing_dumped_objects_gives_them_back_with_hashes_independent_of_formatting(
    objects: list[dict[str, Any]], sort_keys: bool
) -> None:
    dumps = [
        yaml.dump_all(objects, Dumper=yaml.CSafeDumper, sort_keys=sort_keys),
        yaml.dump_all(
            objects, Dumper=yaml.CSafeDumper, sort_keys=sort_keys, default_flow_style=True, width=40
        ),
        yaml.dump_all(objects, Dumper=yaml.CSafeDumper, canonical=True),
    ]
    results = [parse_manifests(text, max_bytes=10 * LIMIT) for text in dumps]
    for resources in results:
        assert [json.loads(r.manifest_json) for r in resources] == objects
        assert [r.content_hash for r in resources] == [
            hashlib.sha256(canonical(obj).encode()).hexdigest() for obj in objects
        ]
        assert [r.key.name for r in resources] == [obj["metadata"]["name"] for obj in objects]
    assert results[0] == results[1] == results[2]
