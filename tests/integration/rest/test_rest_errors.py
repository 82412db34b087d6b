"""Failed calls as HTTP: the status line from the gRPC code, the google.rpc.Status as the body."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import grpc
import pytest

if TYPE_CHECKING:
    from tests.integration.rest.fakes import CompiledProto
    from tests.integration.rest.harness import Shim

#: grpc-gateway's runtime.HTTPStatusFromCode, written out independently of the shim.
EXPECTED_HTTP_STATUS = {
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}


def test_the_table_covers_every_error_code() -> None:
    assert set(EXPECTED_HTTP_STATUS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("code", list(EXPECTED_HTTP_STATUS), ids=lambda code: code.name)
async def test_every_grpc_code_maps_to_grpc_gateways_http_status(
    shim: Shim, probe_proto: CompiledProto, code: grpc.StatusCode
) -> None:
    number = code.value[0]

    response = await shim.client.get(f"/test/v1/echo?failWith={number}")

    assert response.status == EXPECTED_HTTP_STATUS[code]
    assert response.content_type == "application/json"
    status = await response.json()
    assert status["code"] == number
    assert status["message"] == f"failing with code {number} as asked"
    info, retry, extra = status["details"]
    assert info == {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "PROBE_FAILURE",
        "domain": "brokkr.io",
        "metadata": {"code": str(number)},
    }
    assert retry == {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.500s"}
    # A detail of a type the shim's process does not know still arrives, as the raw Any.
    event = probe_proto.message_class("Event").FromString(base64.b64decode(extra["value"]))
    assert (extra["@type"], event.text) == ("type.googleapis.com/brokkrtest.v1.Event", "extra")
    retryable = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
    assert response.headers.get("Retry-After") == ("3" if retryable else None)


async def test_a_status_without_details_is_built_from_code_and_message(shim: Shim) -> None:
    response = await shim.client.get("/api/v1/stacks/any/agents", headers=shim.auth())

    assert response.status == 501
    assert await response.json() == {
        "code": 12,
        "message": "the fake does not list a stack's agents",
        "details": [],
    }


async def test_unknown_paths_are_404_with_a_status_body(shim: Shim) -> None:
    response = await shim.client.get("/api/v1/stackz")

    assert response.status == 404
    status = await response.json()
    assert status["code"] == 5
    assert status["details"][0]["reason"] == "ROUTE_NOT_FOUND"


@pytest.mark.parametrize(
    ("verb", "path", "allowed"),
    [
        ("PUT", "/api/v1/stacks", "GET, POST"),
        ("POST", "/api/v1/stacks/some-id", "DELETE, GET, PATCH"),
        ("DELETE", "/test/v1/echo", "GET, POST"),
    ],
)
async def test_known_paths_with_a_wrong_verb_are_405_naming_the_allowed_ones(
    shim: Shim, verb: str, path: str, allowed: str
) -> None:
    response = await shim.client.request(verb, path, headers=shim.auth())

    assert response.status == 405
    assert response.headers["Allow"] == allowed
    status = await response.json()
    assert status["code"] == 12
    assert status["details"][0]["reason"] == "METHOD_NOT_ALLOWED"


async def test_a_trailing_slash_or_empty_segment_matches_nothing(shim: Shim) -> None:
    trailing = await shim.client.get("/api/v1/stacks/", headers=shim.auth())
    empty = await shim.client.get("/api/v1/stacks//agents", headers=shim.auth())

    assert (trailing.status, empty.status) == (404, 404)
