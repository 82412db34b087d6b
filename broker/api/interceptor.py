"""One interceptor wraps every Brokkr RPC: authenticate, authorise, log, measure, audit, map errors.

It wraps the method handler rather than inspecting the call, so the same code covers unary and
streaming methods and can abort with a rich `google.rpc.Status`. Servicers therefore only ever
raise `BrokkrError`s; anything else is a bug, answered as INTERNAL with a correlation id that is
logged next to the traceback and never sent to the client.

Auditing happens here too, once for every method: each call of an audited (state-changing) method
and every failed authentication becomes an `AuditEntry` handed to a write-behind recorder, with
the caller, the resources the request (and, for creates, the response) named, and the outcome.
A client that cancels a call (or goes away mid-stream) is logged and counted as CANCELLED, not as
a crash. A request that does not decode (invalid UTF-8 in a string field, truncated bytes) is
INVALID_ARGUMENT (MALFORMED_REQUEST), answered after authentication like any bad input: grpcio
would otherwise answer UNKNOWN with the parser's exception text.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import grpc
import structlog
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from prometheus_client import CollectorRegistry, Counter, Histogram

from broker.api import authz
from broker.api.throttling import AuthenticationFailures, client_address
from broker.context import set_principal
from broker.domain.audit import UNAUTHENTICATED_ACTOR, AuditEntry
from broker.domain.model import Principal
from brokkr_common import errors
from brokkr_common.rpc_status import to_grpc_status

log = structlog.get_logger("brokkr.api")

#: Turns the `authorization` metadata value (or None) into a principal, or raises Unauthenticated.
Authenticator = Callable[[str | None], Awaitable[Principal]]
#: Takes an audit entry without waiting (`broker.services.audit.AuditTrail.record`).
AuditRecorder = Callable[[AuditEntry], None]


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
        self,
        method: str,
        details: grpc.HandlerCallDetails,
        authenticator: Authenticator,
        metrics: RpcMetrics,
        audit: AuditRecorder | None = None,
        audited: bool = False,
        failures: AuthenticationFailures | None = None,
    ) -> None:
        self.method = method
        self.failures = failures
        self.audit = audit
        self.audited = audited
        self.principal: Principal | None = None
        self.peer = ""
        self.resources: list[str] = []
        self.authorization = _metadata_value(details.invocation_metadata, "authorization")
        self.request_id = _metadata_value(details.invocation_metadata, "x-request-id") or uuid.uuid4().hex
        # Calls through the REST shim arrive from 127.0.0.1; the shim names the real client.
        self.forwarded_for = _metadata_value(details.invocation_metadata, "x-forwarded-for")
        self.authenticator = authenticator
        self.metrics = metrics
        self.started = time.perf_counter()

    async def begin(self, context: grpc.aio.ServicerContext, request: Any = None) -> None:
        tcp_peer = context.peer() or ""
        self.peer = self.forwarded_for or tcp_peer
        structlog.contextvars.bind_contextvars(rpc=self.method, peer=self.peer, request_id=self.request_id)
        if self.audited and isinstance(request, Message):
            self.resources = resource_names(request, service_noun(self.method))
        client = _client(tcp_peer, self.forwarded_for)
        try:
            if self.failures is not None:
                self.failures.check(client)
            principal = await self.authenticator(self.authorization)
        except (errors.Unauthenticated, errors.ResourceExhausted) as error:
            if not self.audited and isinstance(request, Message):
                self.resources = resource_names(request, service_noun(self.method))
            self.audited = True  # every failed authentication is audited, whatever the method
            if isinstance(error, errors.Unauthenticated) and self.failures is not None:
                self.failures.failed(client)
            raise
        self.principal = principal
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

    def finish(self, code: str, response: Any = None) -> None:
        elapsed = time.perf_counter() - self.started
        self.metrics.requests.labels(self.method, code).inc()
        self.metrics.duration.labels(self.method).observe(elapsed)
        if code == "OK":
            log.debug("rpc ok", duration_ms=round(elapsed * 1000, 2))
        if self.audited and self.audit is not None:
            if isinstance(response, Message):
                self.resources.extend(resource_names(response, service_noun(self.method), top_level_id=False))
            principal = self.principal
            self.audit(
                AuditEntry(
                    id="",
                    time=datetime.now(UTC),
                    actor_role=principal.role.value if principal else UNAUTHENTICATED_ACTOR,
                    actor_id=principal.id if principal else None,
                    action=self.method[:_MAX_ACTION],
                    resource=",".join(dict.fromkeys(self.resources)),
                    outcome=code,
                    peer=self.peer[:_MAX_PEER],
                    request_id=self.request_id[:_MAX_REQUEST_ID],
                )
            )

    def cancelled(self) -> None:
        """The client cancelled the call or went away: not an error of ours."""
        log.info("rpc cancelled", duration_ms=round((time.perf_counter() - self.started) * 1000, 2))
        self.finish("CANCELLED")


def grpc_code_name(code: int) -> str:
    for status_code in grpc.StatusCode:
        if status_code.value[0] == code:
            return status_code.name
    return "UNKNOWN"


def _is_passthrough(error: BaseException) -> bool:
    # AbortError: the servicer aborted on purpose; CancelledError: the client went away.
    return isinstance(error, (grpc.aio.AbortError, asyncio.CancelledError))


def _is_cancellation(error: BaseException) -> bool:
    """The client cancelled: a unary handler sees CancelledError, a streaming one GeneratorExit
    (grpc closes the abandoned response generator) or CancelledError."""
    return isinstance(error, (asyncio.CancelledError, GeneratorExit))


_WORD = re.compile(r"(?<!^)(?=[A-Z])")
#: Bounds on what a client controls in an audit entry (ids are checked only after the request is
#: read, so a refused request may carry anything): the column sizes, and a sane id length.
_MAX_ACTION, _MAX_REQUEST_ID, _MAX_PEER, _MAX_ID = 128, 64, 512, 128


def service_noun(method: str) -> str:
    """`/brokkr.v1.DeploymentObjectService/X` -> `deployment_objects`: the collection a request's
    plain `id` belongs to."""
    service = authz.service_of(method).rsplit(".", 1)[-1].removesuffix("Service")
    return _WORD.sub("_", service).lower() + "s"


def resource_names(message: Message, noun: str, *, top_level_id: bool = True) -> list[str]:
    """The resources a request or response names, as `<collection>/<id>`: a top-level `id` (of the
    service's collection), `<thing>_id` fields (`stack_id` -> `stacks/...`), and the `id` of a
    top-level resource message (`UpdateStackRequest.stack` -> `stacks/...`)."""
    names: list[str] = []
    for field, value in message.ListFields():
        if field.is_repeated:
            continue
        if field.type == FieldDescriptor.TYPE_STRING and value:
            if field.name == "id" and top_level_id:
                names.append(f"{noun}/{value[:_MAX_ID]}")
            elif field.name.endswith("_id") and field.name != "request_id":
                names.append(f"{field.name.removesuffix('_id')}s/{value[:_MAX_ID]}")
        elif field.type == FieldDescriptor.TYPE_MESSAGE and "id" in field.message_type.fields_by_name:
            ident = getattr(value, "id", "")
            if isinstance(ident, str) and ident:
                names.append(f"{field.name}s/{ident[:_MAX_ID]}")
    return names


class ApiInterceptor(grpc.aio.ServerInterceptor):
    def __init__(
        self,
        authenticator: Authenticator,
        registry: CollectorRegistry,
        *,
        audit: AuditRecorder | None = None,
        audited_methods: frozenset[str] = frozenset(),
        failures: AuthenticationFailures | None = None,
    ) -> None:
        self._failures = failures
        self._authenticator = authenticator
        self._metrics = RpcMetrics(registry)
        self._audit = audit
        self._audited = audited_methods

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or authz.is_public(method):
            return handler
        audited = method in self._audited
        call = lambda: _Call(  # noqa: E731
            method,
            handler_call_details,
            self._authenticator,
            self._metrics,
            self._audit,
            audited,
            self._failures,
        )
        deserializer = _tolerant(handler.request_deserializer)
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _wrap_unary(handler.unary_unary, call),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _wrap_streaming(handler.unary_stream, call),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        if handler.stream_stream:
            return grpc.stream_stream_rpc_method_handler(
                _wrap_streaming(handler.stream_stream, call),
                request_deserializer=deserializer,
                response_serializer=handler.response_serializer,
            )
        raise errors.Internal(f"{method}: client-streaming methods are not supported")


def _wrap_unary(
    behaviour: Callable[..., Awaitable[Any]], new_call: Callable[[], _Call]
) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        call = new_call()
        try:
            await call.begin(context, request)
            _refuse_undecodable(request)
            response = await behaviour(request, context)
        except BaseException as error:
            if _is_cancellation(error):
                call.cancelled()
                raise
            if _is_passthrough(error):
                raise
            await call.fail(context, error)
            raise  # unreachable: fail() aborts
        call.finish("OK", response)
        return response

    return handle


def _wrap_streaming(
    behaviour: Callable[..., AsyncIterator[Any]], new_call: Callable[[], _Call]
) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        call = new_call()
        try:
            await call.begin(context, request)
            if isinstance(request, AsyncIterator):  # a bidirectional stream: check each message
                request = _decoded(request)
            _refuse_undecodable(request)
            async for response in behaviour(request, context):
                yield response
        except BaseException as error:
            if _is_cancellation(error):
                call.cancelled()
                raise
            if _is_passthrough(error):
                raise
            await call.fail(context, error)
            raise
        call.finish("OK")

    return handle


class _Undecodable:
    """Stands for a request message that did not decode, so the handler can refuse it properly."""

    def __init__(self, error: Exception) -> None:
        self.error = error


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None

    def deserialize(data: bytes) -> Any:
        try:
            return deserializer(data)
        except Exception as error:  # protobuf's DecodeError, or a UnicodeDecodeError from a string field
            return _Undecodable(error)

    return deserialize


def _refuse_undecodable(request: Any) -> None:
    if isinstance(request, _Undecodable):
        raise errors.InvalidArgument(
            "the request is not a valid protobuf message for this method "
            "(truncated, or a string field that is not UTF-8)",
            reason="MALFORMED_REQUEST",
        )


async def _decoded(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        _refuse_undecodable(request)
        yield request


def _client(tcp_peer: str, forwarded_for: str | None) -> str:
    """Who to count authentication failures against: the TCP peer's address, except for calls from
    the in-process REST shim (loopback), which names the HTTP client last in X-Forwarded-For."""
    address = client_address(tcp_peer)
    if forwarded_for and address in ("127.0.0.1", "::1"):
        return forwarded_for.rsplit(",", 1)[-1].strip()
    return address
