"""Template parameters: the schema a template declares, its defaults, and every violation with its path."""

from __future__ import annotations

from typing import Any

import pytest

from broker.domain.templating import (
    MAX_SCHEMA_BYTES,
    MAX_SCHEMA_DEPTH,
    check_parameters_schema,
    resolve_parameters,
)
from brokkr_common.errors import InvalidArgument

FIELD = "template.parameters_schema"

SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"},
        "replicas": {"type": "integer", "minimum": 1, "default": 2},
        "resources": {
            "type": "object",
            "default": {},
            "properties": {
                "cpu": {"type": "string", "default": "100m"},
                "limits": {"type": "object", "properties": {"memory": {"type": "string", "default": "1Gi"}}},
            },
        },
        "ports": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "port": {"type": "integer", "maximum": 65535},
                    "protocol": {"enum": ["TCP", "UDP"], "default": "TCP"},
                },
            },
        },
        "pair": {"type": "array", "prefixItems": [{"type": "object", "properties": {"x": {"default": 1}}}]},
        "env": {"type": "object", "additionalProperties": {"type": "string"}},
        "image": {"$ref": "#/$defs/image"},
        "mode": {"anyOf": [{"const": "a"}, {"type": "object", "properties": {"m": {"default": "hidden"}}}]},
    },
    "$defs": {"image": {"type": "object", "properties": {"tag": {"type": "string", "default": "latest"}}}},
}


def test_the_example_schema_is_valid() -> None:
    check_parameters_schema(SCHEMA, FIELD)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        pytest.param(
            {"name": "web"},
            {"name": "web", "replicas": 2, "resources": {"cpu": "100m"}},
            id="top-level-and-object-default",
        ),
        pytest.param(
            {"name": "web", "replicas": 5, "resources": {"cpu": "2"}},
            {"name": "web", "replicas": 5, "resources": {"cpu": "2"}},
            id="given-values-win",
        ),
        pytest.param(
            {"name": "web", "resources": {"limits": {}}},
            {"name": "web", "replicas": 2, "resources": {"cpu": "100m", "limits": {"memory": "1Gi"}}},
            id="nested-present-object",
        ),
        pytest.param(
            {"name": "web", "ports": [{"name": "http"}, {"name": "dns", "protocol": "UDP"}]},
            {
                "name": "web",
                "replicas": 2,
                "resources": {"cpu": "100m"},
                "ports": [{"name": "http", "protocol": "TCP"}, {"name": "dns", "protocol": "UDP"}],
            },
            id="array-items",
        ),
        pytest.param(
            {"name": "web", "pair": [{}, {}]},
            {"name": "web", "replicas": 2, "resources": {"cpu": "100m"}, "pair": [{"x": 1}, {}]},
            id="prefix-items-by-position",
        ),
        pytest.param(
            {"name": "web", "image": {}, "mode": {}},
            {"name": "web", "replicas": 2, "resources": {"cpu": "100m"}, "image": {}, "mode": {}},
            id="not-behind-ref-or-anyOf",
        ),
    ],
)
def test_defaults_are_applied_before_validation(parameters: dict[str, Any], expected: dict[str, Any]) -> None:
    assert resolve_parameters(SCHEMA, parameters) == expected


def test_missing_objects_are_not_created_for_their_defaults() -> None:
    resolved = resolve_parameters(SCHEMA, {"name": "web", "resources": {}})
    assert "limits" not in resolved["resources"]


def test_neither_the_parameters_nor_the_schema_change() -> None:
    parameters = {"name": "web", "ports": [{"name": "http"}]}
    resolved = resolve_parameters(SCHEMA, parameters)
    resolved["resources"]["cpu"] = "changed"
    assert parameters == {"name": "web", "ports": [{"name": "http"}]}
    assert resolve_parameters(SCHEMA, {"name": "x"})["resources"] == {"cpu": "100m"}


def test_every_violation_is_reported_with_its_json_path() -> None:
    parameters = {
        "name": "Not Valid",
        "replicas": 0,
        "ports": [{"port": 80}, {"name": "dns", "port": 70000, "protocol": "SCTP"}],
        "env": {"odd key": 1},
        "surprise": True,
    }
    with pytest.raises(InvalidArgument) as caught:
        resolve_parameters(SCHEMA, parameters, field="request.parameters")
    error = caught.value
    assert error.reason == "INVALID_PARAMETER"
    assert [(v.field, v.description) for v in error.field_violations] == [
        ("request.parameters", "Additional properties are not allowed ('surprise' was unexpected)"),
        ('request.parameters.env["odd key"]', "1 is not of type 'string'"),
        ("request.parameters.name", "'Not Valid' does not match '^[a-z][a-z0-9-]*$'"),
        ("request.parameters.ports[0]", "'name' is a required property"),
        ("request.parameters.ports[1].port", "70000 is greater than the maximum of 65535"),
        ("request.parameters.ports[1].protocol", "'SCTP' is not one of ['TCP', 'UDP']"),
        ("request.parameters.replicas", "0 is less than the minimum of 1"),
    ]


def test_a_default_that_breaks_the_schema_is_reported() -> None:
    schema = {"type": "object", "properties": {"size": {"type": "integer", "default": "big"}}}
    with pytest.raises(InvalidArgument) as caught:
        resolve_parameters(schema, {})
    assert [(v.field, v.description) for v in caught.value.field_violations] == [
        ("parameters.size", "'big' is not of type 'integer'")
    ]


def test_parameters_that_are_not_an_object_are_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        resolve_parameters({"type": "object"}, ["a"])  # type: ignore[arg-type]
    assert [v.field for v in caught.value.field_violations] == ["parameters"]


@pytest.mark.parametrize(
    ("schema", "field", "problem"),
    [
        pytest.param(["object"], FIELD, "must be a JSON object", id="not-an-object"),
        pytest.param({}, f"{FIELD}.type", "must be 'object'", id="no-type"),
        pytest.param({"type": "array"}, f"{FIELD}.type", "must be 'object'", id="array-root"),
        pytest.param(
            {"type": "object", "minProperties": -1},
            f"{FIELD}.minProperties",
            "-1 is less than",
            id="bad-value",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"type": "integr"}}},
            f"{FIELD}.properties.a.type",
            "is not valid under any of the given schemas",
            id="unknown-type",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"pattern": "("}}},
            f"{FIELD}.properties.a.pattern",
            "'(' is not a 'regex'",
            id="broken-regex",
        ),
        pytest.param(
            {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
            f"{FIELD}.$schema",
            "must be 'https://json-schema.org/draft/2020-12/schema' or left out",
            id="other-draft",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}},
            FIELD,
            "$ref 'https://example.com/s.json' must point into the schema",
            id="remote-ref",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}},
            FIELD,
            "$ref '#/$defs/missing' points at nothing",
            id="dangling-ref",
        ),
        pytest.param(
            {"type": "object", "properties": {"a": {"$id": "https://example.com/a"}}},
            FIELD,
            "may use '$id' at the root only",
            id="nested-id",
        ),
    ],
)
def test_bad_schemas_are_refused(schema: Any, field: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_parameters_schema(schema, FIELD)
    assert caught.value.reason == "INVALID_PARAMETERS_SCHEMA"
    assert any(v.field == field and problem in v.description for v in caught.value.field_violations)


def test_local_references_and_data_that_looks_like_one_are_fine() -> None:
    schema = {
        "$id": "https://example.com/template",
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/a"}, "b": {"$ref": "#b"}},
        "$defs": {"a": {"type": "string"}, "b": {"$anchor": "b", "type": "integer"}},
        "default": {"$ref": "not a reference, just data"},
    }
    check_parameters_schema(schema, FIELD)


def test_schemas_are_bounded() -> None:
    deep: dict[str, Any] = {"type": "object"}
    for _ in range(MAX_SCHEMA_DEPTH):
        deep = {"type": "object", "properties": {"a": deep}}
    with pytest.raises(InvalidArgument, match=f"must nest at most {MAX_SCHEMA_DEPTH} levels deep"):
        check_parameters_schema(deep, FIELD)
    large = {"type": "object", "description": "x" * MAX_SCHEMA_BYTES}
    with pytest.raises(InvalidArgument, match=f"must be at most {MAX_SCHEMA_BYTES} bytes as JSON"):
        check_parameters_schema(large, FIELD)
