"""What operators use: /metrics, /healthz and /readyz."""

from __future__ import annotations

from typing import TYPE_CHECKING

from grpc_health.v1 import health_pb2
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from tests.integration.rest.harness import Backend, Shim


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_metrics_expose_the_given_registry_and_count_requests_by_route_template(shim: Shim) -> None:
    for _ in range(2):
        await shim.client.get("/api/v1/stacks/one", headers=shim.auth())
    await shim.client.get("/api/v1/stacks/two", headers=shim.auth())
    await shim.client.post("/api/v1/stacks", json={"name": "web"}, headers=shim.auth())
    await shim.client.get("/no/such/path")

    response = await shim.client.get("/metrics")

    assert response.status == 200
    assert response.content_type == "text/plain"
    found = samples(await response.text())
    assert found["brokkr_broker_marker_total", ()] == 1
    requests = "brokkr_rest_requests_total"
    assert found[requests, (("method", "GET"), ("route", "/api/v1/stacks/{id}"), ("status", "404"))] == 3
    assert found[requests, (("method", "POST"), ("route", "/api/v1/stacks"), ("status", "200"))] == 1
    assert found[requests, (("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    latency = "brokkr_rest_request_duration_seconds_count"
    assert found[latency, (("method", "GET"), ("route", "/api/v1/stacks/{id}"))] == 3


async def test_healthz_answers_while_the_process_runs(shim: Shim) -> None:
    response = await shim.client.get("/healthz")

    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_follows_the_grpc_health_service(shim: Shim, backend: Backend) -> None:
    serving = await shim.client.get("/readyz")
    await backend.health.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    draining = await shim.client.get("/readyz")
    await backend.server.stop(None)
    gone = await shim.client.get("/readyz")

    assert (serving.status, await serving.json()) == (200, {"status": "SERVING"})
    assert (draining.status, await draining.json()) == (503, {"status": "NOT_SERVING"})
    assert gone.status == 503
    assert (await gone.json())["status"] == "UNREACHABLE"
