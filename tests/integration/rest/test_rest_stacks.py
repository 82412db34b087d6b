"""Brokkr's own API over HTTP: the README's curl, path and query parameters, errors from the servicer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.rest.fakes import ADMIN_KEY, GENERATOR_KEY

if TYPE_CHECKING:
    from tests.integration.rest.harness import Backend, Shim

ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"
BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"


async def create(shim: Shim, name: str, **fields: object) -> dict:
    response = await shim.client.post("/api/v1/stacks", json={"name": name, **fields}, headers=shim.auth())
    assert response.status == 200, await response.text()
    return await response.json()


async def test_the_readme_curl_creates_a_stack_with_the_callers_key(shim: Shim, backend: Backend) -> None:
    # Exactly what `curl -X POST .../api/v1/stacks -H "Authorization: Bearer <key>" -d '{...}'` sends.
    response = await shim.client.post(
        "/api/v1/stacks",
        data=b'{"name": "my-app", "description": "My application stack"}',
        headers={"Authorization": f"Bearer {ADMIN_KEY}", "Content-Type": "application/x-www-form-urlencoded"},
    )

    assert response.status == 200
    assert response.content_type == "application/json"
    stack = await response.json()
    assert stack["name"] == "my-app"
    assert stack["description"] == "My application stack"
    assert stack["id"] in backend.stacks.stacks
    assert stack["createTime"] == "2023-11-14T22:13:20Z"
    # Unpopulated fields are present, as grpc-gateway v2 writes them.
    assert stack["labels"] == {}
    assert stack["generatorId"] == ""
    assert stack["desiredDeploymentObject"] is None
    assert stack["deleteTime"] is None
    [(method, _, metadata)] = backend.stacks.calls
    assert (method, metadata["authorization"]) == ("CreateStack", f"Bearer {ADMIN_KEY}")


async def test_request_id_and_client_address_travel_as_metadata(shim: Shim, backend: Backend) -> None:
    headers = {**shim.auth(), "X-Request-Id": "req-42", "X-Forwarded-For": "203.0.113.9"}
    response = await shim.client.get("/api/v1/stacks", headers=headers)

    assert response.status == 200
    [(_, _, metadata)] = backend.stacks.calls
    assert metadata["x-request-id"] == "req-42"
    assert metadata["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


async def test_a_missing_key_is_refused_by_the_servicer_not_the_shim(shim: Shim, backend: Backend) -> None:
    response = await shim.client.post("/api/v1/stacks", json={"name": "my-app"})

    assert response.status == 401
    status = await response.json()
    assert status["code"] == 16
    assert status["details"][0] == {
        "@type": ERROR_INFO, "reason": "UNAUTHENTICATED", "domain": "brokkr.io", "metadata": {},
    }  # fmt: skip
    assert backend.stacks.stacks == {}


async def test_path_parameter_gets_one_stack_and_unknown_ids_are_404(shim: Shim) -> None:
    created = await create(shim, "web")

    found = await shim.client.get(f"/api/v1/stacks/{created['id']}", headers=shim.auth())
    missing = await shim.client.get("/api/v1/stacks/nope", headers=shim.auth())

    assert found.status == 200
    assert await found.json() == created
    assert missing.status == 404
    status = await missing.json()
    assert status["code"] == 5
    assert status["details"][0]["reason"] == "STACK_NOT_FOUND"
    assert status["details"][0]["metadata"] == {"kind": "stack", "id": "nope"}


async def test_patch_takes_the_id_from_the_nested_path_variable_and_the_mask_from_the_query(
    shim: Shim, backend: Backend
) -> None:
    created = await create(shim, "web", description="old", labels={"env": "dev"})

    response = await shim.client.patch(
        f"/api/v1/stacks/{created['id']}?updateMask=description,labels",
        json={"name": "ignored-not-in-mask", "description": "new", "labels": {"env": "prod"}},
        headers=shim.auth(),
    )

    assert response.status == 200, await response.text()
    stack = await response.json()
    assert (stack["id"], stack["name"], stack["description"], stack["labels"]) == (
        created["id"], "web", "new", {"env": "prod"},
    )  # fmt: skip
    _, request, _ = backend.stacks.calls[-1]
    assert request.stack.id == created["id"]
    assert list(request.update_mask.paths) == ["description", "labels"]


async def test_update_mask_may_be_written_in_proto_names(shim: Shim, backend: Backend) -> None:
    created = await create(shim, "web")

    response = await shim.client.patch(
        f"/api/v1/stacks/{created['id']}?update_mask=description",
        json={"description": "x"},
        headers=shim.auth(),
    )

    assert response.status == 200
    _, request, _ = backend.stacks.calls[-1]
    assert list(request.update_mask.paths) == ["description"]


async def test_list_reads_page_size_label_selector_and_show_deleted_from_the_query(shim: Shim) -> None:
    for name, env in (("a", "prod"), ("b", "prod"), ("c", "dev"), ("d", "prod")):
        await create(shim, name, labels={"env": env})
    deleted = await create(shim, "e", labels={"env": "prod"})
    await shim.client.delete(f"/api/v1/stacks/{deleted['id']}", headers=shim.auth())

    first = await shim.client.get("/api/v1/stacks?pageSize=2&labelSelector=env%3Dprod", headers=shim.auth())
    page = await first.json()
    rest = await shim.client.get(
        f"/api/v1/stacks?page_size=2&label_selector=env=prod&pageToken={page['nextPageToken']}&showDeleted=true",
        headers=shim.auth(),
    )

    assert [stack["name"] for stack in page["stacks"]] == ["a", "b"]
    assert [stack["name"] for stack in (await rest.json())["stacks"]] == ["d", "e"]


async def test_delete_answers_with_the_response_body_field(shim: Shim) -> None:
    created = await create(shim, "web")

    response = await shim.client.delete(f"/api/v1/stacks/{created['id']}", headers=shim.auth())

    stack = await response.json()
    assert stack["id"] == created["id"]
    assert stack["deleteTime"] == "2027-01-15T08:00:00Z"


async def test_servicer_field_violations_reach_the_client(shim: Shim) -> None:
    response = await shim.client.post("/api/v1/stacks", json={"description": "no name"}, headers=shim.auth())

    assert response.status == 400
    details = (await response.json())["details"]
    assert details[0]["reason"] == "REQUIRED_FIELD"
    assert details[1] == {
        "@type": BAD_REQUEST,
        "fieldViolations": [
            {"field": "stack.name", "description": "is required", "reason": "REQUIRED_FIELD"}
        ],
    }


async def test_duplicate_names_conflict(shim: Shim) -> None:
    await create(shim, "web")

    response = await shim.client.post("/api/v1/stacks", json={"name": "web"}, headers=shim.auth())

    assert response.status == 409
    assert (await response.json())["details"][0]["reason"] == "STACK_EXISTS"


async def test_an_unimplemented_method_is_501(shim: Shim) -> None:
    response = await shim.client.get("/api/v1/stacks/some-id/agents", headers=shim.auth())

    assert response.status == 501
    assert (await response.json())["code"] == 12


async def test_whoami_renders_enums_by_name(shim: Shim) -> None:
    admin = await shim.client.get("/api/v1/auth/whoami", headers=shim.auth())
    generator = await shim.client.get("/api/v1/auth/whoami", headers=shim.auth(GENERATOR_KEY))

    assert await admin.json() == {"role": "ROLE_ADMIN", "principalId": "", "principalName": "admin"}
    assert await generator.json() == {"role": "ROLE_GENERATOR", "principalId": "g-1", "principalName": "ci"}


async def test_body_star_method_accepts_an_empty_body(shim: Shim) -> None:
    admin = await shim.client.post("/api/v1/auth/rotate-admin-pak", headers=shim.auth())
    generator = await shim.client.post("/api/v1/auth/rotate-admin-pak", headers=shim.auth(GENERATOR_KEY))

    assert admin.status == 200
    assert (await admin.json())["key"].startswith("brokkr_admin0001_")
    assert generator.status == 403


async def test_additional_bindings_reach_the_same_method(shim: Shim) -> None:
    by_agent = await shim.client.get("/api/v1/agents/agent-7/targets", headers=shim.auth())
    by_stack = await shim.client.get("/api/v1/stacks/stack-9/targets", headers=shim.auth())

    assert (await by_agent.json())["targets"][0]["agentId"] == "agent-7"
    assert (await by_stack.json())["targets"][0]["stackId"] == "stack-9"
    assert (await by_stack.json())["targets"][0]["agentId"] == "agent-1"
