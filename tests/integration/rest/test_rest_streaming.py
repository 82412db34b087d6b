"""Server-streaming methods as newline-delimited JSON, seen through ProbeService.Watch."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.integration.rest.harness import Backend, Shim


def lines(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


async def test_each_message_is_one_result_line(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/watch?count=3")

    assert response.status == 200
    assert response.content_type == "application/x-ndjson"
    assert lines(await response.text()) == [
        {"result": {"sequence": 1, "text": "event 1"}},
        {"result": {"sequence": 2, "text": "event 2"}},
        {"result": {"sequence": 3, "text": "event 3"}},
    ]


async def test_a_stream_that_fails_after_starting_ends_with_an_error_line(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/watch?count=2&failWith=10")

    assert response.status == 200
    *results, last = lines(await response.text())
    assert [result["result"]["sequence"] for result in results] == [1, 2]
    assert last["error"]["code"] == 10
    assert last["error"]["message"] == "the watch broke"
    assert last["error"]["details"][0]["reason"] == "PROBE_FAILURE"


async def test_a_stream_that_fails_before_its_first_message_sets_the_http_status(shim: Shim) -> None:
    unauthenticated = await shim.client.get("/test/v1/watch?failWith=16")
    unavailable = await shim.client.get("/test/v1/watch?failWith=14")

    assert unauthenticated.status == 401
    [line] = lines(await unauthenticated.text())
    assert line["error"]["code"] == 16
    assert unavailable.status == 503
    assert unavailable.headers["Retry-After"] == "3"


async def test_an_empty_stream_is_an_empty_body(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/watch")

    assert response.status == 200
    assert await response.read() == b""


async def test_a_client_that_goes_away_cancels_the_stream(shim: Shim, backend: Backend) -> None:
    response = await shim.client.get("/test/v1/watch?count=1&follow=true")
    first = await response.content.readline()
    assert json.loads(first) == {"result": {"sequence": 1, "text": "event 1"}}

    response.close()

    await asyncio.wait_for(backend.probe.watch_cancelled.wait(), timeout=10)


async def test_client_and_bidirectional_streaming_methods_are_not_routed(shim: Shim) -> None:
    probe_methods = {
        binding.method.name
        for binding in shim.routes.bindings
        if binding.method.containing_service.full_name == "brokkrtest.v1.ProbeService"
    }
    assert probe_methods == {"Echo", "Watch"}
