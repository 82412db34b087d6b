"""The route table: which method a verb and path reach, and which annotations fail the start-up."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from prometheus_client import CollectorRegistry

from broker import rest
from broker.rest.statuses import HttpRefusal
from brokkr_common import errors
from tests.integration.rest.fakes import compile_proto
from tests.integration.rest.harness import brokkr_files

ROUTES_PROTO = """
syntax = "proto3";
package routetest.v1;
import "google/api/annotations.proto";

message Thing { string id = 1; }
message Req { string id = 1; string name = 2; Thing thing = 3; repeated string ids = 4; }

service Routes {
  rpc ById(Req) returns (Thing) { option (google.api.http) = {get: "/v1/things/{id}"}; }
  rpc Special(Req) returns (Thing) { option (google.api.http) = {get: "/v1/things/special"}; }
  rpc Left(Req) returns (Thing) { option (google.api.http) = {get: "/v1/x/{id}/y"}; }
  rpc Right(Req) returns (Thing) { option (google.api.http) = {get: "/v1/x/z/{name}"}; }
  rpc Remove(Req) returns (Thing) { option (google.api.http) = {delete: "/v1/things/{name=*}"}; }
  rpc Nested(Req) returns (Thing) {
    option (google.api.http) = {patch: "/v1/things/{thing.id}" body: "thing"};
  }
  rpc Hidden(Req) returns (Thing);
}
"""

BAD_PROTO = """
syntax = "proto3";
package badtest.v1;
import "google/api/annotations.proto";

message Thing { string id = 1; }
message Req { string id = 1; string name = 2; Thing thing = 3; repeated string ids = 4; }

service Bad {
  rpc Do(%s) returns (Thing) { option (google.api.http) = { %s }; }
  rpc Other(Req) returns (Thing) { option (google.api.http) = { %s }; }
}
"""


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> rest.RouteTable:
    proto = compile_proto(tmp_path_factory.mktemp("routes"), "routes.proto", ROUTES_PROTO)
    return rest.build_routes([proto.file])


@pytest.mark.parametrize(
    ("verb", "path", "method", "params"),
    [
        ("GET", "/v1/things/special", "Special", {}),
        ("GET", "/v1/things/other", "ById", {"id": "other"}),
        ("GET", "/v1/things/a%2Fb%20c", "ById", {"id": "a/b c"}),
        ("GET", "/v1/x/z/y", "Right", {"name": "y"}),
        ("GET", "/v1/x/a/y", "Left", {"id": "a"}),
        ("DELETE", "/v1/things/special", "Remove", {"name": "special"}),
        ("PATCH", "/v1/things/t1", "Nested", {"thing.id": "t1"}),
    ],
)
def test_literal_segments_win_over_variables_leftmost_first(
    routes: rest.RouteTable, verb: str, path: str, method: str, params: dict[str, str]
) -> None:
    match = routes.resolve(verb, path)

    assert (match.binding.method.name, dict(match.path_params)) == (method, params)


def test_a_known_path_with_another_verb_is_refused_with_the_allowed_verbs(routes: rest.RouteTable) -> None:
    with pytest.raises(HttpRefusal) as refused:
        routes.resolve("POST", "/v1/things/a")

    assert refused.value.http_status == 405
    assert refused.value.headers == {"Allow": "DELETE, GET, PATCH"}


@pytest.mark.parametrize("path", ["/v1/nothing", "/v1/things", "/v1/things/a/b", "/v1/things/", "/"])
def test_unknown_paths_are_not_found(routes: rest.RouteTable, path: str) -> None:
    with pytest.raises(errors.NotFound):
        routes.resolve("GET", path)


def test_methods_without_annotations_are_not_routed(routes: rest.RouteTable) -> None:
    assert "Hidden" not in {binding.method.name for binding in routes.bindings}


def test_brokkr_routes_build_and_carry_body_and_response_body() -> None:
    table = rest.build_routes(brokkr_files())
    test = table.resolve("POST", "/api/v1/webhooks/w1:test")
    assert (test.binding.grpc_path, dict(test.path_params)) == (
        "/brokkr.v1.WebhookService/TestWebhook",
        {"id": "w1"},
    )
    with pytest.raises(HttpRefusal):  # the same path without the verb is the webhook itself
        table.resolve("POST", "/api/v1/webhooks/w1")
    with pytest.raises(errors.NotFound):
        table.resolve("POST", "/api/v1/webhooks/w1/x:test")

    create = table.resolve("POST", "/api/v1/stacks").binding
    rotate = table.resolve("POST", "/api/v1/agents/a1/rotate-pak").binding
    assert (create.grpc_path, create.body, create.response_body) == (
        "/brokkr.v1.StackService/CreateStack", "stack", "stack",
    )  # fmt: skip
    assert (rotate.grpc_path, rotate.body, rotate.response_body) == (
        "/brokkr.v1.AgentService/RotateAgentKey",
        "*",
        "",
    )


@pytest.mark.parametrize(
    ("request_type", "rule", "other_rule", "complaint"),
    [
        ("Req", 'get: "/v1/things/{id}:"', 'get: "/v1/other"', "custom verb ':' is not a plain literal"),
        ("Req", 'get: "/v1/things/*"', 'get: "/v1/other"', "not a plain literal"),
        ("Req", 'get: "/v1/**"', 'get: "/v1/other"', "not a plain literal"),
        ("Req", 'get: "/v1/{name=things/*}"', 'get: "/v1/other"', "pattern 'things/*' is not supported"),
        ("Req", 'get: "v1/things"', 'get: "/v1/other"', "does not start with '/'"),
        ("Req", 'get: "/v1//things"', 'get: "/v1/other"', "empty segment"),
        ("Req", 'custom {kind: "HEAD" path: "/v1/things"}', 'get: "/v1/other"', "'custom' is not supported"),
        ("Req", 'post: "/v1/things" body: "nope"', 'get: "/v1/other"', "body 'nope' is not a field"),
        ("Req", 'get: "/v1/things" response_body: "nope"', 'get: "/v1/other"', "response_body 'nope'"),
        ("Req", 'get: "/v1/things/{nope}"', 'get: "/v1/other"', "'nope' is not a singular request field"),
        ("Req", 'get: "/v1/things/{ids}"', 'get: "/v1/other"', "'ids' is not a singular request field"),
        ("Req", 'get: "/v1/things/{thing}"', 'get: "/v1/other"', "must name a scalar field"),
        ("stream Req", 'post: "/v1/things" body: "*"', 'get: "/v1/other"', "cannot be served over HTTP"),
        (
            "Req",
            'get: "/v1/things/{id}"',
            'get: "/v1/things/{name}"',
            "is already routed to badtest.v1.Bad.Do",
        ),
        (
            "Req",
            'get: "/v1/a" additional_bindings {get: "/v1/b" additional_bindings {get: "/v1/c"}}',
            'get: "/v1/other"',
            "additional bindings cannot nest",
        ),
    ],
)
def test_annotations_the_shim_cannot_serve_fail_the_start_up(
    tmp_path: Path, request_type: str, rule: str, other_rule: str, complaint: str
) -> None:
    proto = compile_proto(tmp_path, "bad.proto", BAD_PROTO % (request_type, rule, other_rule))

    with pytest.raises(rest.UnsupportedAnnotation, match=r"^badtest\.v1\.Bad\.(Do|Other): ") as refused:
        rest.build_routes([proto.file])

    assert complaint in str(refused.value)


async def test_a_route_shadowed_by_the_shims_own_endpoints_fails_the_start_up(tmp_path: Path) -> None:
    proto = compile_proto(tmp_path, "bad.proto", BAD_PROTO % ("Req", 'get: "/metrics"', 'get: "/v1/other"'))
    routes = rest.build_routes([proto.file])

    async with grpc.aio.insecure_channel("127.0.0.1:9") as channel:
        with pytest.raises(rest.UnsupportedAnnotation, match="shadowed by the shim's own GET /metrics"):
            rest.create_app(channel, routes, registry=CollectorRegistry())
