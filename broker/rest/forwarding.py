"""Forwarding a routed HTTP request to its gRPC method over the broker's own channel, and the
method's answer back as HTTP, like grpc-gateway.

The shim adds no behaviour: the caller's `Authorization` header travels as the `authorization`
metadata entry and the servicer authenticates it, exactly as for a native gRPC client. Unary
answers are one JSON document; server-streaming answers are newline-delimited JSON, one
`{"result": ...}` line per message and a final `{"error": <google.rpc.Status>}` line if the stream
fails after it started (before it started, the status sets the HTTP status as for a unary call).
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import message_factory
from google.protobuf.message import Message

from broker.rest.rendering import response_json
from broker.rest.routing import Binding
from broker.rest.statuses import (
    http_status,
    status_headers,
    status_json,
    status_of_rpc_error,
    status_response,
)
from brokkr_common import errors

NDJSON = "application/x-ndjson"

#: HTTP headers passed on as call metadata, by metadata key.
FORWARDED_HEADERS = {"authorization": "Authorization", "x-request-id": "X-Request-Id"}

Metadata = tuple[tuple[str, str], ...]


def call_metadata(request: web.Request) -> Metadata:
    """The metadata for the call: forwarded headers, and the client's address appended to X-Forwarded-For."""
    metadata = []
    for key, header in FORWARDED_HEADERS.items():
        value = request.headers.get(header)
        if value is not None:
            metadata.append((key, _metadata_value(header, value)))
    forwarded_for = request.headers.get("X-Forwarded-For")
    if request.remote:
        chain = f"{forwarded_for}, {request.remote}" if forwarded_for else request.remote
        metadata.append(("x-forwarded-for", _metadata_value("X-Forwarded-For", chain)))
    return tuple(metadata)


class Forwarder:
    """Calls methods on one channel; a multicallable per method, made on first use."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self._channel = channel
        self._methods: dict[str, Any] = {}

    async def unary(self, binding: Binding, request: Message, metadata: Metadata) -> web.Response:
        try:
            response = await self._method(binding)(request, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            return status_response(status_of_rpc_error(error))
        return web.json_response(response_json(response, binding.response_body))

    async def server_streaming(
        self, http_request: web.Request, binding: Binding, request: Message, metadata: Metadata
    ) -> web.StreamResponse:
        call = self._method(binding)(request, metadata=metadata)
        try:
            return await _relay(http_request, binding, call)
        finally:
            call.cancel()  # a no-op once the stream has ended; stops it when the client went away

    def _method(self, binding: Binding) -> Any:
        method = self._methods.get(binding.grpc_path)
        if method is None:
            make = self._channel.unary_stream if binding.server_streaming else self._channel.unary_unary
            method = make(
                binding.grpc_path,
                request_serializer=message_factory.GetMessageClass(
                    binding.method.input_type
                ).SerializeToString,
                response_deserializer=message_factory.GetMessageClass(binding.method.output_type).FromString,
            )
            self._methods[binding.grpc_path] = method
        return method


async def _relay(
    http_request: web.Request, binding: Binding, call: grpc.aio.UnaryStreamCall
) -> web.StreamResponse:
    try:
        message = await call.read()
    except grpc.aio.AioRpcError as error:
        status = status_of_rpc_error(error)
        return web.Response(
            status=http_status(status.code),
            body=_line({"error": status_json(status)}),
            content_type=NDJSON,
            headers=status_headers(status),
        )
    response = web.StreamResponse(headers={"Content-Type": NDJSON})
    await response.prepare(http_request)
    try:
        while message is not grpc.aio.EOF:
            await response.write(_line({"result": response_json(message, binding.response_body)}))
            message = await call.read()
    except grpc.aio.AioRpcError as error:
        await response.write(_line({"error": status_json(status_of_rpc_error(error))}))
    except ConnectionResetError:  # the client went away mid-stream; the caller cancels the call
        return response
    await response.write_eof()
    return response


def _line(document: dict[str, Any]) -> bytes:
    return json.dumps(document).encode() + b"\n"


def _metadata_value(header: str, value: str) -> str:
    # gRPC metadata values are printable ASCII; anything else would fail the call obscurely.
    if not (value.isascii() and value.isprintable()):
        raise errors.InvalidArgument(f"the {header} header must be printable ASCII", reason="INVALID_HEADER")
    return value
