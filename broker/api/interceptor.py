"""One interceptor wraps every Brokkr RPC: authenticate, authorise, log, measure, map errors.

It wraps the method handler rather than inspecting the call, so the same code covers unary and
streaming methods and can abort with a rich `google.rpc.Status`. Servicers therefore only ever
raise `BrokkrError`s; anything else is a bug, answered as INTERNAL with a correlation id that is
logged next to the traceback and never sent to the client.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
import structlog
from prometheus_client import CollectorRegistry, Counter, Histogram

from broker.api import authz
from broker.context import set_principal
from broker.domain.model import Principal
from brokkr_common import errors
from brokkr_common.rpc_status import to_grpc_status

log = structlog.get_logger("brokkr.api")

#: Turns the `authorization` metadata value (or None) into a principal, or raises Unauthenticated.
Authenticator = Callable[[str | None], Awaitable[Principal]]


class RpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "brokkr_grpc_requests",
            "gRPC calls handled, by method and status code.",
            ["method", "code"],
            registry=registry,
        )
        self.duration = Histogram(
            "brokkr_grpc_request_duration_seconds",
            "gRPC call latency (unary) or lifetime (streams).",
            ["method"],
            registry=registry,
        )


def _metadata_value(metadata: tuple[Any, ...] | None, key: str) -> str | None:
    for entry in metadata or ():
        if entry.key == key:
            value = entry.value
            return value.decode() if isinstance(value, bytes) else value
    return None


class _Call:
    """The bookkeeping of one RPC: context for logs, the outcome for metrics."""

    def __init__(
        self, method: str, details: grpc.HandlerCallDetails, authenticator: Authenticator, metrics: RpcMetrics
    ) -> None:
        self.method = method
        self.authorization = _metadata_value(details.invocation_metadata, "authorization")
        self.request_id = _metadata_value(details.invocation_metadata, "x-request-id") or uuid.uuid4().hex
        # Calls through the REST shim arrive from 127.0.0.1; the shim names the real client.
        self.forwarded_for = _metadata_value(details.invocation_metadata, "x-forwarded-for")
        self.authenticator = authenticator
        self.metrics = metrics
        self.started = time.perf_counter()

    async def begin(self, context: grpc.aio.ServicerContext) -> None:
        structlog.contextvars.bind_contextvars(
            rpc=self.method, peer=self.forwarded_for or context.peer(), request_id=self.request_id
        )
        principal = await self.authenticator(self.authorization)
        authz.authorize(self.method, principal)
        set_principal(principal)
        structlog.contextvars.bind_contextvars(
            role=principal.role.value, principal=principal.id or principal.name
        )

    async def fail(self, context: grpc.aio.ServicerContext, error: BaseException) -> None:
        """Abort the call with the status for `error` (raises grpc's AbortError)."""
        if isinstance(error, errors.BrokkrError):
            brokkr_error = error
            log_method = log.info if error.code != errors.Internal.code else log.error
            log_method(
                "rpc failed", code=grpc_code_name(error.code), reason=error.reason, error=error.message
            )
        else:
            correlation_id = uuid.uuid4().hex
            log.error("rpc crashed", correlation_id=correlation_id, exc_info=error)
            brokkr_error = errors.Internal(
                f"internal error; correlation id {correlation_id}",
                metadata={"correlation_id": correlation_id},
            )
        self.finish(grpc_code_name(brokkr_error.code))
        await context.abort_with_status(to_grpc_status(brokkr_error))

    def finish(self, code: str) -> None:
        elapsed = time.perf_counter() - self.started
        self.metrics.requests.labels(self.method, code).inc()
        self.metrics.duration.labels(self.method).observe(elapsed)
        if code == "OK":
            log.debug("rpc ok", duration_ms=round(elapsed * 1000, 2))


def grpc_code_name(code: int) -> str:
    for status_code in grpc.StatusCode:
        if status_code.value[0] == code:
            return status_code.name
    return "UNKNOWN"


def _is_passthrough(error: BaseException) -> bool:
    # AbortError: the servicer aborted on purpose; CancelledError: the client went away.
    return isinstance(error, (grpc.aio.AbortError, asyncio.CancelledError))


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, authenticator: Authenticator, registry: CollectorRegistry) -> None:
        self._authenticator = authenticator
        self._metrics = RpcMetrics(registry)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or authz.is_public(method):
            return handler
        call = lambda: _Call(method, handler_call_details, self._authenticator, self._metrics)  # noqa: E731
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, call),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_streaming(handler.unary_stream, call),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_streaming(handler.stream_stream, call),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        raise errors.Internal(f"{method}: client-streaming methods are not supported")


def _wrap_unary(
    behaviour: Callable[..., Awaitable[Any]], new_call: Callable[[], _Call]
) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = new_call()
        try:
            await call.begin(context)
            response = await behaviour(request, context)
        except BaseException as error:
            if _is_passthrough(error):
                raise
            await call.fail(context, error)
            raise  # unreachable: fail() aborts
        call.finish("OK")
        return response

    return handle


def _wrap_streaming(
    behaviour: Callable[..., AsyncIterator[Any]], new_call: Callable[[], _Call]
) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = new_call()
        try:
            await call.begin(context)
            async for response in behaviour(request, context):
                yield response
        except BaseException as error:
            if _is_passthrough(error):
                raise
            await call.fail(context, error)
            raise
        call.finish("OK")

    return handle
