"""The REST shim's aiohttp application and its server: routing, transcoding and forwarding for the
API routes, plus the endpoints every deployment wants (OpenAPI, metrics, liveness, readiness).

Every refusal, whether the shim's own or the servicer's, leaves as a `google.rpc.Status` JSON body;
nothing leaks a traceback.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import grpc
import structlog
from aiohttp import hdrs, web
from aiohttp.typedefs import Handler
from google.protobuf import descriptor_pb2
from google.rpc import code_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry

from broker.rest.comments import brokkr_source_info, comments_by_name
from broker.rest.forwarding import Forwarder, call_metadata
from broker.rest.metrics import ROUTE, UNMATCHED, ShimMetrics
from broker.rest.openapi import openapi_document
from broker.rest.routing import RouteTable
from broker.rest.statuses import HttpRefusal, error_response
from broker.rest.templates import UnsupportedAnnotation
from broker.rest.transcoding import build_request
from brokkr_common import errors

log = structlog.get_logger("brokkr.rest")

OPENAPI_PATH = "/api/v1/openapi.json"
#: How long /readyz waits for the gRPC health service before calling the broker not ready.
READINESS_TIMEOUT_SECONDS = 2.0


@dataclass(frozen=True)
class _Shim:
    routes: RouteTable
    forwarder: Forwarder
    health: health_pb2_grpc.HealthStub
    openapi: bytes


_SHIM = web.AppKey("brokkr_rest_shim", _Shim)


def create_app(
    channel: grpc.aio.Channel,
    routes: RouteTable,
    *,
    registry: CollectorRegistry,
    max_body_bytes: int = 8 * 1024 * 1024,
    source_info: descriptor_pb2.FileDescriptorSet | None = None,
) -> web.Application:
    """The shim for `routes`, forwarding over `channel` (the broker's own gRPC port).

    `registry` is exposed at /metrics, with the shim's metrics added to it. `source_info` holds
    the proto comments for the OpenAPI document; by default, Brokkr's generated descriptor set.
    """
    fixed_paths = (OPENAPI_PATH, "/metrics", "/healthz", "/readyz")
    _refuse_shadowed_routes(routes, fixed_paths)
    comments = comments_by_name((source_info or brokkr_source_info()).file)
    metrics = ShimMetrics(registry)
    app = web.Application(middlewares=[metrics.middleware, _statuses], client_max_size=max_body_bytes)
    app[_SHIM] = _Shim(
        routes=routes,
        forwarder=Forwarder(channel),
        health=health_pb2_grpc.HealthStub(channel),
        openapi=json.dumps(openapi_document(routes, comments)).encode(),
    )
    app.router.add_get(OPENAPI_PATH, _openapi)
    app.router.add_get("/metrics", metrics.exposition)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_route("*", "/{path:.*}", _forward)
    return app


@dataclass
class RunningServer:
    """A started REST server; `port` is the bound port (useful when 0 was asked for)."""

    port: int
    _runner: web.AppRunner

    async def stop(self) -> None:
        """Stop accepting, let running requests finish within the shutdown timeout, then close."""
        await self._runner.cleanup()


async def start_rest_server(
    app: web.Application, host: str, port: int, *, shutdown_timeout: float = 10.0
) -> RunningServer:
    """Serve `app` on `host:port`; port 0 picks a free port."""
    # A client that goes away cancels its handler, and so its call, as grpc-gateway's request
    # context does: an idle watch stream would otherwise hold its gRPC stream forever.
    runner = web.AppRunner(app, shutdown_timeout=shutdown_timeout, handler_cancellation=True)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return RunningServer(port=runner.addresses[0][1], _runner=runner)


async def _forward(request: web.Request) -> web.StreamResponse:
    request[ROUTE] = UNMATCHED
    shim = request.app[_SHIM]
    match = shim.routes.resolve(request.method, request.rel_url.raw_path)
    request[ROUTE] = match.binding.template.text
    message = build_request(
        match.binding,
        match.path_params,
        request.rel_url.query,
        await _read_body(request),
        request.headers.get(hdrs.CONTENT_TYPE, ""),
    )
    metadata = call_metadata(request)
    if match.binding.server_streaming:
        return await shim.forwarder.server_streaming(request, match.binding, message, metadata)
    return await shim.forwarder.unary(match.binding, message, metadata)


async def _read_body(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as error:
        raise HttpRefusal(
            413,
            code_pb2.RESOURCE_EXHAUSTED,
            f"request body exceeds {request.client_max_size} bytes",
            reason="REQUEST_TOO_LARGE",
        ) from error


async def _openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[_SHIM].openapi, content_type="application/json")


async def _healthz(request: web.Request) -> web.Response:
    """Liveness: the process answers HTTP."""
    return web.json_response({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Readiness: the broker's gRPC health service reports SERVING."""
    try:
        reply = await request.app[_SHIM].health.Check(
            health_pb2.HealthCheckRequest(), timeout=READINESS_TIMEOUT_SECONDS
        )
    except grpc.aio.AioRpcError as error:
        return web.json_response({"status": "UNREACHABLE", "message": error.details() or ""}, status=503)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return web.json_response({"status": status}, status=200 if status == "SERVING" else 503)


@web.middleware
async def _statuses(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except errors.BrokkrError as error:
        return error_response(error)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("REST shim failed", method=request.method, path=request.path)
        return error_response(errors.Internal("the REST shim failed; see the broker log"))


def _refuse_shadowed_routes(routes: RouteTable, paths: tuple[str, ...]) -> None:
    for path in paths:
        try:
            match = routes.resolve("GET", path)
        except errors.BrokkrError:
            continue
        raise UnsupportedAnnotation(
            f"{match.binding.method.full_name} is shadowed by the shim's own GET {path}"
        )
