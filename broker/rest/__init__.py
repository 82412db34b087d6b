"""The HTTP/JSON shim over the broker's gRPC API, grpc-gateway style.

Routes come from the `google.api.http` annotations of the served methods, read at start-up; each
request is transcoded into the method's request message and forwarded over a gRPC channel to the
broker's own port, so authentication, validation and errors happen once, behind the methods.

    templates    path templates: parse, match
    routing      the route table from descriptors; verb + path -> binding
    transcoding  HTTP request -> request message (body, path variables, query parameters)
    rendering    response message -> grpc-gateway JSON
    statuses     gRPC code -> HTTP status; google.rpc.Status bodies
    forwarding   the call over the channel; unary JSON and server-streaming NDJSON
    comments     proto comments from the descriptor set, for the OpenAPI document
    openapi      the OpenAPI 3.1 document
    metrics      request counters and latency; /metrics
    app          the aiohttp application and server; /healthz, /readyz
"""

from broker.rest.app import RunningServer, create_app, start_rest_server
from broker.rest.routing import Binding, RouteTable, build_routes
from broker.rest.templates import UnsupportedAnnotation

__all__ = [
    "Binding",
    "RouteTable",
    "RunningServer",
    "UnsupportedAnnotation",
    "build_routes",
    "create_app",
    "start_rest_server",
]
