"""GET /api/v1/openapi.json: a well-formed OpenAPI 3.1 document that lists every annotated method
and describes the JSON the shim really writes."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

import aiohttp
import grpc
import jsonschema
import pytest
from google.api import annotations_pb2
from prometheus_client import CollectorRegistry

from broker import rest
from tests.integration.rest.harness import CLIENT_TIMEOUT, brokkr_files

if TYPE_CHECKING:
    from tests.integration.rest.fakes import CompiledProto
    from tests.integration.rest.harness import Shim

#: The parts of the OpenAPI 3.1 shape clients and tools rely on.
OPENAPI_SHAPE = {
    "type": "object",
    "required": ["openapi", "info", "paths", "components"],
    "properties": {
        "openapi": {"type": "string", "pattern": r"^3\.1\.\d+$"},
        "info": {"type": "object", "required": ["title", "version"]},
        "paths": {
            "type": "object",
            "propertyNames": {"pattern": "^/"},
            "additionalProperties": {
                "type": "object",
                "propertyNames": {"enum": ["get", "put", "post", "delete", "patch"]},
                "additionalProperties": {"$ref": "#/$defs/operation"},
            },
        },
        "components": {
            "type": "object",
            "required": ["schemas", "securitySchemes"],
            "properties": {"schemas": {"type": "object", "additionalProperties": {"type": "object"}}},
        },
        "security": {"type": "array"},
    },
    "$defs": {
        "operation": {
            "type": "object",
            "required": ["operationId", "responses"],
            "properties": {
                "operationId": {"type": "string"},
                "parameters": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "in", "schema"],
                        "properties": {"in": {"enum": ["path", "query"]}},
                        "if": {"properties": {"in": {"const": "path"}}},
                        "then": {"required": ["required"], "properties": {"required": {"const": True}}},
                    },
                },
                "requestBody": {"type": "object", "required": ["content"]},
                "responses": {
                    "type": "object",
                    "required": ["200", "default"],
                    "additionalProperties": {"type": "object", "required": ["description"]},
                },
            },
        }
    },
}


@pytest.fixture
async def document(shim: Shim) -> dict[str, Any]:
    response = await shim.client.get("/api/v1/openapi.json")
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()


def annotated_brokkr_routes() -> set[tuple[str, str, str]]:
    """(verb, path, method) of every google.api.http binding in brokkr.v1, read straight from the protos."""
    routes = set()
    for file in brokkr_files():
        for service in file.services_by_name.values():
            for method in service.methods:
                rule = method.GetOptions().Extensions[annotations_pb2.http]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    if verb is not None:
                        path = re.sub(r"\{([^}=]+)=\*\}", r"{\1}", getattr(binding, verb))
                        routes.add((verb, path, method.name))
    return routes


def operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (verb, path): operation
        for path, item in document["paths"].items()
        for verb, operation in item.items()
    }


def validator(document: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    """A validator for one schema of the document, its references resolved within the document."""
    return jsonschema.Draft202012Validator({"$ref": ref, "components": document["components"]})


def response_schema(document: dict[str, Any], verb: str, path: str, media: str = "application/json") -> Any:
    return document["paths"][path][verb]["responses"]["200"]["content"][media]["schema"]


def test_it_has_the_openapi_31_shape(document: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(OPENAPI_SHAPE).validate(document)
    ids = [operation["operationId"] for operation in operations(document).values()]
    assert len(ids) == len(set(ids))


def test_every_annotated_brokkr_method_is_an_operation(document: dict[str, Any]) -> None:
    expected = annotated_brokkr_routes()
    assert len(expected) >= 30  # the six v1 services at the time of writing, at least
    found = operations(document)
    for verb, path, method in expected:
        assert (verb, path) in found, f"{verb} {path} ({method}) is missing"
        assert found[verb, path]["operationId"].split("_")[1].rstrip("0123456789") == method


def test_path_parameters_are_exactly_the_template_variables(document: dict[str, Any]) -> None:
    for (_, path), operation in operations(document).items():
        declared = {parameter["name"] for parameter in operation["parameters"] if parameter["in"] == "path"}
        assert declared == set(re.findall(r"\{([^}]+)\}", path)), path


def test_every_reference_resolves_and_every_schema_is_valid_json_schema(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for name in set(re.findall(r'"#/components/schemas/([^"]+)"', text)):
        assert name in document["components"]["schemas"], name
    for schema in document["components"]["schemas"].values():
        jsonschema.Draft202012Validator.check_schema(schema)


def test_descriptions_come_from_the_proto_comments(document: dict[str, Any]) -> None:
    create = document["paths"]["/api/v1/stacks"]["post"]
    stack = document["components"]["schemas"]["brokkr.v1.Stack"]
    status = document["components"]["schemas"]["brokkr.v1.AgentStatus"]

    assert create["description"] == "Creates a stack. A generator always creates stacks it owns."
    assert create["summary"] == "Creates a stack."
    assert stack["description"].startswith("A Stack is a named collection of Kubernetes resources.")
    assert stack["properties"]["name"]["description"] == "Unique name among live stacks, a DNS-1123 label."
    assert status["enum"] == ["AGENT_STATUS_UNSPECIFIED", "AGENT_STATUS_ACTIVE", "AGENT_STATUS_INACTIVE"]
    assert "- AGENT_STATUS_ACTIVE: The agent receives the stacks targeted at it." in status["description"]
    tags = {tag["name"]: tag["description"] for tag in document["tags"]}
    assert tags["StackService"].startswith("Manages stacks.")


def test_parameters_bodies_and_security_follow_the_bindings(document: dict[str, Any]) -> None:
    listing = document["paths"]["/api/v1/stacks"]["get"]
    update = document["paths"]["/api/v1/stacks/{stack.id}"]["patch"]
    create_target = document["paths"]["/api/v1/agents/{agent_id}/targets"]["post"]

    assert {parameter["name"] for parameter in listing["parameters"]} == {
        "pageSize", "pageToken", "labelSelector", "generatorId", "showDeleted",
    }  # fmt: skip
    assert "requestBody" not in listing
    assert [parameter["name"] for parameter in update["parameters"]] == ["stack.id", "updateMask"]
    assert update["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/brokkr.v1.Stack"
    }
    body = create_target["requestBody"]["content"]["application/json"]["schema"]
    assert "agentId" not in body["properties"]
    assert "stackId" in body["properties"]
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "A Brokkr key (PAK): `Authorization: Bearer brokkr_<short>_<long>`.",
    }
    assert document["security"] == [{"bearerAuth": []}]


def test_well_known_types_maps_and_64_bit_integers_have_their_json_forms(document: dict[str, Any]) -> None:
    echo = document["components"]["schemas"]["brokkrtest.v1.EchoRequest"]["properties"]

    assert echo["since"]["anyOf"] == [{"type": "string", "format": "date-time"}, {"type": "null"}]
    assert echo["mask"]["anyOf"][0]["type"] == "string"
    assert echo["attributes"]["anyOf"][0] == {"type": "object"}
    assert echo["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert echo["big"] == {"type": "string", "format": "int64"}
    assert echo["severities"] == {
        "type": "array",
        "items": {"$ref": "#/components/schemas/brokkrtest.v1.Severity"},
    }
    stack = document["components"]["schemas"]["brokkr.v1.Stack"]["properties"]
    assert stack["id"]["readOnly"] is True


async def test_real_responses_match_their_documented_schemas(shim: Shim, document: dict[str, Any]) -> None:
    created = await shim.client.post(
        "/api/v1/stacks", json={"name": "web", "labels": {"a": "b"}}, headers=shim.auth()
    )
    listed = await shim.client.get("/api/v1/stacks", headers=shim.auth())
    echoed = await shim.client.get(
        "/test/v1/echo?since=2024-01-01T00:00:00Z&timeout=2s&mask=a&big=5&filter.kinds=x"
    )
    posted = await shim.client.post(
        "/test/v1/echo", json={"attributes": {"a": [1]}, "left": "l", "filters": [{}]}
    )
    failed = await shim.client.get("/api/v1/stacks/missing", headers=shim.auth())
    streamed = await shim.client.get("/test/v1/watch?count=1&failWith=10")

    validator(document, response_schema(document, "post", "/api/v1/stacks")["$ref"]).validate(
        await created.json()
    )
    validator(document, response_schema(document, "get", "/api/v1/stacks")["$ref"]).validate(
        await listed.json()
    )
    echo = validator(document, response_schema(document, "get", "/test/v1/echo")["$ref"])
    echo.validate(await echoed.json())
    echo.validate(await posted.json())
    validator(document, "#/components/schemas/google.rpc.Status").validate(await failed.json())
    line = jsonschema.Draft202012Validator(
        {
            **response_schema(document, "get", "/test/v1/watch", "application/x-ndjson"),
            "components": document["components"],
        }
    )
    for text in (await streamed.text()).splitlines():
        line.validate(json.loads(text))


async def test_comments_of_other_protos_come_from_the_source_info_given(probe_proto: CompiledProto) -> None:
    routes = rest.build_routes([probe_proto.file])
    async with grpc.aio.insecure_channel("127.0.0.1:9") as channel:
        app = rest.create_app(
            channel, routes, registry=CollectorRegistry(), source_info=probe_proto.source_info
        )
        server = await rest.start_rest_server(app, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(
                f"http://127.0.0.1:{server.port}", timeout=CLIENT_TIMEOUT
            ) as client:
                document = await (await client.get("/api/v1/openapi.json")).json()
        finally:
            await server.stop()

    assert document["tags"] == [
        {"name": "ProbeService", "description": "Exercises the shim where Brokkr's own protos do not."}
    ]
    assert document["paths"]["/test/v1/watch"]["get"]["description"] == (
        "Sends `count` events, then ends with `fail_with` if set."
    )
    assert document["components"]["schemas"]["brokkrtest.v1.Severity"]["description"] == (
        "How bad something is.\n- SEVERITY_UNSPECIFIED: Not set.\n- SEVERITY_INFO: Worth knowing.\n"
        "- SEVERITY_WARNING: Worth acting on."
    )
