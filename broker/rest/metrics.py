"""What the REST shim tells Prometheus, and the /metrics endpoint that exposes the broker's registry.

Requests are counted by verb, route *template* (never the concrete path, which would make one
series per stack id) and HTTP status; paths that match no route share the label `unmatched`.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

#: The route template a request was routed to, set by the handler that routes it.
ROUTE = web.RequestKey("brokkr_rest_route", str)
UNMATCHED = "unmatched"
#: The status counted for requests whose client went away first (nginx's and grpc-gateway's 499).
CLIENT_CLOSED_REQUEST = 499


class ShimMetrics:
    """The shim's metrics, registered in the broker's registry so /metrics shows everything at once."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "brokkr_rest_requests",
            "HTTP requests answered by the REST shim, by verb, route template and HTTP status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "brokkr_rest_request_duration_seconds",
            "Time to answer an HTTP request (streams: until they end), by verb and route template.",
            ["method", "route"],
            registry=registry,
        )

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as error:
            status = error.status
            raise
        except asyncio.CancelledError:
            status = CLIENT_CLOSED_REQUEST
            raise
        finally:
            route = request.get(ROUTE) or request.match_info.route.resource.canonical
            self.requests.labels(request.method, route, str(status)).inc()
            self.latency.labels(request.method, route).observe(time.perf_counter() - started)

    async def exposition(self, request: web.Request) -> web.Response:
        """GET /metrics: the Prometheus text format of the whole registry."""
        return web.Response(
            body=generate_latest(self.registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )
