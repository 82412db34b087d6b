"""A real gRPC server with the fakes on 127.0.0.1:0, and the real REST shim in front of it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import grpc
import pytest
from grpc_health.v1 import health, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter

from broker import rest
from brokkr_common.pb.brokkr.v1 import (
    auth_service_pb2_grpc,
    stack_service_pb2_grpc,
    target_service_pb2_grpc,
)
from tests.integration.rest.fakes import (
    PROBE_PROTO,
    CompiledProto,
    FakeAuth,
    FakeStacks,
    FakeTargets,
    ProbeServicer,
    compile_proto,
)
from tests.integration.rest.harness import CLIENT_TIMEOUT, MAX_BODY_BYTES, Backend, Shim, brokkr_files


@pytest.fixture(scope="session")
def probe_proto(tmp_path_factory: pytest.TempPathFactory) -> CompiledProto:
    return compile_proto(tmp_path_factory.mktemp("proto"), "probe.proto", PROBE_PROTO)


@pytest.fixture
async def backend(probe_proto: CompiledProto) -> AsyncIterator[Backend]:
    server = grpc.aio.server()
    stacks = FakeStacks()
    health_servicer = health.aio.HealthServicer()
    stack_service_pb2_grpc.add_StackServiceServicer_to_server(stacks, server)
    auth_service_pb2_grpc.add_AuthServiceServicer_to_server(FakeAuth(), server)
    target_service_pb2_grpc.add_TargetServiceServicer_to_server(FakeTargets(), server)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    probe = ProbeServicer(probe_proto)
    server.add_generic_rpc_handlers([probe.handler()])
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield Backend(port, stacks, probe, health_servicer, server)
    finally:
        await server.stop(None)


@pytest.fixture
async def shim(backend: Backend, probe_proto: CompiledProto) -> AsyncIterator[Shim]:
    registry = CollectorRegistry()
    Counter("brokkr_broker_marker", "A metric of the broker's own, to see the registry is exposed.",
            registry=registry).inc()  # fmt: skip
    routes = rest.build_routes([*brokkr_files(), probe_proto.file])
    async with grpc.aio.insecure_channel(f"127.0.0.1:{backend.port}") as channel:
        app = rest.create_app(channel, routes, registry=registry, max_body_bytes=MAX_BODY_BYTES)
        server = await rest.start_rest_server(app, "127.0.0.1", 0)
        try:
            async with aiohttp.ClientSession(
                f"http://127.0.0.1:{server.port}", timeout=CLIENT_TIMEOUT
            ) as client:
                yield Shim(client, registry, routes)
        finally:
            await server.stop()
