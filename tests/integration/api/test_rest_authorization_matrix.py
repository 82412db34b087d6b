"""The authorization matrix again, through the REST shim: every REST route, every caller.

The shim adds no behaviour of its own (DESIGN.md), so each route must answer exactly what its gRPC
method answers, as grpc-gateway maps it to HTTP. The rows of the gRPC matrix are reused: each is
run against stubs that capture the request instead of sending it, and the captured request is
sent over HTTP the way a client reads the route from the proto's `google.api.http` annotation.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from google.protobuf import json_format
from google.protobuf.message import Message

from broker import rest
from broker.rest.routing import Binding
from broker.rest.statuses import http_status
from broker.rest.templates import Variable
from tests.integration.api.test_authorization_matrix import (
    CALLERS,
    ROWS,
    Row,
    Stubs,
    build_world,
    running,  # noqa: F401 (the fixture, one broker for the module)
)
from tests.integration.rest.harness import brokkr_files

BINDINGS: dict[str, list[Binding]] = {}
for binding in rest.build_routes(brokkr_files()).bindings:
    BINDINGS.setdefault(binding.grpc_path, []).append(binding)
REST_ROWS = [row for row in ROWS if row.method in BINDINGS and not BINDINGS[row.method][0].server_streaming]


class _Captured(Exception):
    def __init__(self, request: Message) -> None:
        self.request = request


class _CapturingService:
    def __getattr__(self, method: str) -> Any:
        def call(request: Message, *args: Any, **kwargs: Any) -> Any:
            raise _Captured(request)

        return call


class _CapturingStubs:
    def __getattr__(self, service: str) -> _CapturingService:
        return _CapturingService()


def test_every_unary_rest_route_is_in_the_matrix():
    unary = {path for path, bindings in BINDINGS.items() if not bindings[0].server_streaming}
    assert unary == {row.method for row in REST_ROWS}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("case", REST_ROWS, ids=lambda r: r.method.rsplit("/", 1)[-1])
def test_each_caller_gets_the_http_status_of_the_grpc_code(running, case: Row, caller: str):  # noqa: F811
    world = build_world(running, Stubs(running.channel), running.current_admin_key)
    with pytest.raises(_Captured) as captured:
        case.call(_CapturingStubs(), world, ())
    verb, path, body = _http_request(
        _binding_for(captured.value.request, case.method), captured.value.request
    )
    request = urllib.request.Request(
        running.rest_url + path,
        method=verb,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"Bearer {world.keys[caller]}"} if world.keys[caller] is not None else {}),
    )
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            status, answer = response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        with error:
            status, answer = error.code, json.loads(error.read() or b"{}")

    expected = case.expected[caller]
    assert status == http_status(expected.value[0]), f"{verb} {path} as {caller}: {status} {answer}"
    if case.method.endswith("RotateAdminKey") and status == 200:
        running.current_admin_key = answer["key"]


def _binding_for(request: Message, method: str) -> Binding:
    """The method's route whose path variables the request fills (a method may have several)."""
    for binding in BINDINGS[method]:
        if all(_field(request, variable.field_path) for variable in binding.template.variables):
            return binding
    raise AssertionError(f"no route of {method} fits {request}")


def _field(message: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        message = getattr(message, name)
    return message


def _http_request(binding: Binding, request: Message) -> tuple[str, str, Any]:
    """The verb, path (with query) and JSON body a client sends for `request` on `binding`."""
    rest_of_request = type(request)()
    rest_of_request.CopyFrom(request)
    segments = []
    for segment in binding.template.segments:
        if not isinstance(segment, Variable):
            segments.append(segment)
            continue
        holder, value = rest_of_request, rest_of_request
        for name in segment.field_path:
            holder, value = value, getattr(value, name)
        segments.append(quote(str(value), safe=""))
        holder.ClearField(segment.field_path[-1])
    path = "/" + "/".join(segments) + (f":{binding.template.verb}" if binding.template.verb else "")
    if binding.body == "*":
        return binding.verb, path, json_format.MessageToDict(rest_of_request)
    body = None
    if binding.body:
        body = json_format.MessageToDict(getattr(rest_of_request, binding.body))
        rest_of_request.ClearField(binding.body)
    query = urlencode(list(_query(json_format.MessageToDict(rest_of_request))), doseq=True)
    return binding.verb, path + (f"?{query}" if query else ""), body


def _query(fields: dict[str, Any], prefix: str = ""):
    for name, value in fields.items():
        if isinstance(value, dict):
            yield from _query(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value
