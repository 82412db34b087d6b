"""How HTTP requests become request messages, seen through ProbeService.Echo, which answers with
the request exactly as the servicer received it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.integration.rest.harness import MAX_BODY_BYTES

if TYPE_CHECKING:
    from tests.integration.rest.harness import Backend, Shim


async def echo(shim: Shim, query: str = "", **kwargs: Any) -> dict[str, Any]:
    response = await shim.client.get(f"/test/v1/echo{query}", **kwargs)
    assert response.status == 200, await response.text()
    return (await response.json())["request"]


async def echo_path(shim: Shim, path: str) -> dict[str, Any]:
    response = await shim.client.get(path)
    assert response.status == 200, await response.text()
    return (await response.json())["request"]


async def refusal(response: Any, status: int = 400) -> dict[str, Any]:
    assert response.status == status, await response.text()
    assert response.content_type == "application/json"
    return await response.json()


def violation(body: dict[str, Any]) -> dict[str, Any]:
    [bad_request] = [detail for detail in body["details"] if detail["@type"].endswith("BadRequest")]
    [field_violation] = bad_request["fieldViolations"]
    return field_violation


async def test_query_parameters_fill_scalars_enums_repeated_nested_and_well_known_fields(shim: Shim) -> None:
    request = await echo(
        shim,
        "?topic=a+b&limit=7&verbose=true&severity=SEVERITY_WARNING&severities=1&severities=SEVERITY_WARNING"
        "&filter.kinds=pod&filter.kinds=job&filter.includeDeleted=1&filter.min_severity=2"
        "&since=2024-05-01T12:00:00Z&timeout=1.5s&mask=cluster_name,displayName&big=9007199254740993",
    )

    assert request["topic"] == "a b"
    assert request["limit"] == 7
    assert request["verbose"] is True
    assert request["severity"] == "SEVERITY_WARNING"
    assert request["severities"] == ["SEVERITY_INFO", "SEVERITY_WARNING"]
    assert request["filter"] == {
        "kinds": ["pod", "job"],
        "includeDeleted": True,
        "minSeverity": "SEVERITY_WARNING",
    }
    assert request["since"] == "2024-05-01T12:00:00Z"
    assert request["timeout"] == "1.500s"
    assert request["mask"] == "clusterName,displayName"
    assert request["big"] == "9007199254740993"


async def test_responses_show_every_unpopulated_field_but_unset_oneofs(shim: Shim) -> None:
    request = await echo(shim)

    assert request == {
        "topic": "", "limit": 0, "verbose": False, "severity": "SEVERITY_UNSPECIFIED", "severities": [],
        "filter": None, "since": None, "mask": None, "timeout": None, "labels": {}, "attributes": None,
        "big": "0", "failWith": 0, "filters": [],
    }  # fmt: skip


async def test_nested_messages_in_lists_are_completed_too(shim: Shim) -> None:
    response = await shim.client.post("/test/v1/echo", json={"filters": [{"kinds": ["a"]}], "left": "x"})

    request = (await response.json())["request"]
    assert request["filters"] == [
        {"kinds": ["a"], "includeDeleted": False, "minSeverity": "SEVERITY_UNSPECIFIED"}
    ]
    assert request["left"] == "x"
    assert "right" not in request


async def test_body_star_accepts_proto_and_json_names_and_well_known_types(shim: Shim) -> None:
    response = await shim.client.post(
        "/test/v1/echo",
        json={
            "topic": "t",
            "fail_with": 0,
            "labels": {"env": "prod"},
            "attributes": {"replicas": 3, "tags": ["a"]},
            "filter": {"min_severity": "SEVERITY_INFO", "includeDeleted": True},
            "severities": [2],
        },
    )

    request = (await response.json())["request"]
    assert request["labels"] == {"env": "prod"}
    assert request["attributes"] == {"replicas": 3, "tags": ["a"]}
    assert request["filter"]["minSeverity"] == "SEVERITY_INFO"
    assert request["filter"]["includeDeleted"] is True
    assert request["severities"] == ["SEVERITY_WARNING"]


async def test_path_variables_bind_single_percent_decoded_segments(shim: Shim) -> None:
    request = await echo_path(shim, "/test/v1/topics/a%2Fb%20c/echo?limit=2")

    assert (request["topic"], request["limit"]) == ("a/b c", 2)


async def test_body_field_binding_fills_that_field_and_answers_with_the_response_body(shim: Shim) -> None:
    response = await shim.client.put(
        "/test/v1/topics/news/filter?limit=3", json={"kinds": ["pod"], "includeDeleted": True}
    )

    request = await response.json()
    assert request["topic"] == "news"
    assert request["limit"] == 3
    assert request["filter"]["kinds"] == ["pod"]


async def test_the_path_wins_over_the_body(shim: Shim) -> None:
    response = await shim.client.put("/test/v1/topics/news/filter", json={"kinds": ["pod"]})
    assert (await response.json())["topic"] == "news"


async def test_unknown_json_fields_are_refused_by_path(shim: Shim) -> None:
    top = await shim.client.post("/test/v1/echo", json={"topic": "t", "colour": "blue"})
    nested = await shim.client.post("/test/v1/echo", json={"filters": [{}, {"kinds": [], "kind": "x"}]})
    stack = await shim.client.post(
        "/api/v1/stacks", json={"name": "web", "colour": "blue"}, headers=shim.auth()
    )

    assert violation(await refusal(top))["field"] == "colour"
    assert violation(await refusal(nested))["field"] == "filters[1].kind"
    body = await refusal(stack)
    assert body["code"] == 3
    assert violation(body) == {
        "field": "stack.colour",
        "description": "unknown field",
        "reason": "UNKNOWN_FIELD",
    }
    assert body["details"][0]["reason"] == "UNKNOWN_FIELD"


async def test_stacks_are_not_created_from_refused_bodies(shim: Shim, backend: Backend) -> None:
    await shim.client.post("/api/v1/stacks", json={"name": "web", "colour": "blue"}, headers=shim.auth())
    assert backend.stacks.calls == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"filter": ["not", "an", "object"]}, "filter"),
        ({"labels": ["a"]}, "labels"),
        ({"severities": "SEVERITY_INFO"}, "severities"),
    ],
)
async def test_wrongly_shaped_values_are_refused_by_path(
    shim: Shim, body: dict[str, Any], field: str
) -> None:
    response = await shim.client.post("/test/v1/echo", json=body)
    assert violation(await refusal(response))["field"] == field


async def test_values_of_the_wrong_type_are_refused(shim: Shim) -> None:
    response = await shim.client.post("/test/v1/echo", json={"limit": "many"})

    body = await refusal(response)
    assert body["details"][0]["reason"] == "INVALID_BODY"
    assert "limit" in body["message"]


@pytest.mark.parametrize("body", [b'{"topic": ', b"[1, 2]", b"\xff\xfe{"])
async def test_bodies_that_are_not_a_json_object_are_refused(shim: Shim, body: bytes) -> None:
    response = await shim.client.post(
        "/test/v1/echo", data=body, headers={"Content-Type": "application/json"}
    )

    assert (await refusal(response))["details"][0]["reason"] in ("MALFORMED_JSON", "INVALID_BODY")


async def test_a_body_where_the_method_takes_none_is_refused(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/echo", data=b'{"topic": "t"}')
    assert (await refusal(response))["details"][0]["reason"] == "UNEXPECTED_BODY"


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "multipart/form-data; boundary=x"])
async def test_bodies_that_are_not_json_are_unsupported_media(shim: Shim, content_type: str) -> None:
    response = await shim.client.post(
        "/test/v1/echo", data=b'{"topic": "t"}', headers={"Content-Type": content_type}
    )

    body = await refusal(response, 415)
    assert body["code"] == 3
    assert body["details"][0]["reason"] == "UNSUPPORTED_MEDIA_TYPE"


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "application/merge-patch+json"])
async def test_json_content_types_with_parameters_or_suffixes_are_accepted(
    shim: Shim, content_type: str
) -> None:
    response = await shim.client.post(
        "/test/v1/echo", data=b'{"topic": "t"}', headers={"Content-Type": content_type}
    )
    assert (await response.json())["request"]["topic"] == "t"


@pytest.mark.parametrize(
    ("query", "parameter", "reason"),
    [
        ("?colour=blue", "colour", "UNKNOWN_FIELD"),
        ("?filter.colour=blue", "filter.colour", "UNKNOWN_FIELD"),
        ("?limit=many", "limit", "INVALID_FIELD"),
        ("?limit=1&limit=2", "limit", "INVALID_FIELD"),
        ("?fail_with=0&failWith=0", "failWith", "INVALID_FIELD"),
        ("?verbose=yes", "verbose", "INVALID_FIELD"),
        ("?severity=SEVERITY_LOUD", "severity", "INVALID_FIELD"),
        ("?since=yesterday", "since", "INVALID_FIELD"),
        ("?filter=x", "filter", "INVALID_FIELD"),
        ("?labels=x", "labels", "INVALID_FIELD"),
        ("?attributes=x", "attributes", "INVALID_FIELD"),
    ],
)
async def test_query_parameters_that_fit_no_field_are_refused_by_name(
    shim: Shim, query: str, parameter: str, reason: str
) -> None:
    response = await shim.client.get(f"/test/v1/echo{query}")

    found = violation(await refusal(response))
    assert (found["field"], found["reason"]) == (parameter, reason)


async def test_query_parameters_may_not_set_what_the_path_or_body_sets(shim: Shim) -> None:
    path = await shim.client.get("/test/v1/topics/news/echo?topic=other")
    body = await shim.client.put("/test/v1/topics/news/filter?filter.kinds=x", json={})
    star = await shim.client.post("/test/v1/echo?limit=1", json={})

    assert violation(await refusal(path))["field"] == "topic"
    assert violation(await refusal(body))["field"] == "filter.kinds"
    assert violation(await refusal(star))["field"] == "limit"


async def test_oversized_bodies_are_refused_before_parsing(shim: Shim) -> None:
    response = await shim.client.post("/test/v1/echo", json={"topic": "x" * MAX_BODY_BYTES})

    body = await refusal(response, 413)
    assert body["code"] == 8
    assert body["details"][0]["reason"] == "REQUEST_TOO_LARGE"


async def test_headers_that_cannot_be_metadata_are_refused(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/echo", headers={"X-Request-Id": "caf\u00e9"})
    assert (await refusal(response))["details"][0]["reason"] == "INVALID_HEADER"


async def test_forwarded_metadata_is_what_the_servicer_sees(shim: Shim) -> None:
    response = await shim.client.get("/test/v1/echo", headers={"Authorization": "Bearer k", "Cookie": "c=1"})

    assert (await response.json())["metadata"] == ["authorization=Bearer k", "x-forwarded-for=127.0.0.1"]
