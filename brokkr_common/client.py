"""A typed client for the Brokkr API, used by brokkrctl, the agent and the tests.

The generated stubs stay the interface (with their `.pyi` types); the client adds the bearer key to
every call through a channel interceptor, configures TLS, and turns failures into the typed errors
of `brokkr_common.errors` with `call()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from brokkr_common.pb.brokkr.v1 import (
    agent_service_pb2_grpc,
    audit_log_service_pb2_grpc,
    auth_service_pb2_grpc,
    deployment_object_service_pb2_grpc,
    deployment_status_service_pb2_grpc,
    diagnostics_service_pb2_grpc,
    event_service_pb2_grpc,
    generator_service_pb2_grpc,
    stack_service_pb2_grpc,
    target_service_pb2_grpc,
    template_service_pb2_grpc,
    webhook_service_pb2_grpc,
)
from brokkr_common.rpc_status import from_rpc_error

R = TypeVar("R")


@dataclass(frozen=True)
class TlsConfig:
    """Client-side TLS: the CA to trust and, for mutual TLS, the client's certificate and key."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        read = lambda path: path.read_bytes() if path else None  # noqa: E731
        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )


class _BearerKey(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor):
    def __init__(self, key: str) -> None:
        self._metadata = (("authorization", f"Bearer {key}"),)

    def _with_key(self, details: grpc.ClientCallDetails) -> grpc.ClientCallDetails:
        return details._replace(metadata=(*(details.metadata or ()), *self._metadata))  # type: ignore[attr-defined]

    def intercept_unary_unary(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)

    def intercept_unary_stream(self, continuation: Callable[..., Any], details: Any, request: Any) -> Any:
        return continuation(self._with_key(details), request)


class BrokkrClient:
    """Synchronous client. `with BrokkrClient(target, key) as client: client.stacks.ListStacks(...)`."""

    def __init__(
        self, target: str, key: str | None = None, *, tls: TlsConfig | None = None, timeout: float = 30.0
    ) -> None:
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        if tls is not None and tls.server_name:
            options.append(("grpc.ssl_target_name_override", tls.server_name))
        channel = (
            grpc.secure_channel(target, tls.credentials(), options=options)
            if tls is not None
            else grpc.insecure_channel(target, options=options)
        )
        self._raw_channel = channel
        if key:
            channel = grpc.intercept_channel(channel, _BearerKey(key))
        self.timeout = timeout
        self.agents = agent_service_pb2_grpc.AgentServiceStub(channel)
        self.generators = generator_service_pb2_grpc.GeneratorServiceStub(channel)
        self.stacks = stack_service_pb2_grpc.StackServiceStub(channel)
        self.deployment_objects = deployment_object_service_pb2_grpc.DeploymentObjectServiceStub(channel)
        self.targets = target_service_pb2_grpc.TargetServiceStub(channel)
        self.deployment_statuses = deployment_status_service_pb2_grpc.DeploymentStatusServiceStub(channel)
        self.auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        self.templates = template_service_pb2_grpc.TemplateServiceStub(channel)
        self.events = event_service_pb2_grpc.EventServiceStub(channel)
        self.audit_logs = audit_log_service_pb2_grpc.AuditLogServiceStub(channel)
        self.webhooks = webhook_service_pb2_grpc.WebhookServiceStub(channel)
        self.diagnostics = diagnostics_service_pb2_grpc.DiagnosticsServiceStub(channel)

    def call(self, method: Callable[..., R], request: Any) -> R:
        """Call a stub method with the client's deadline; failures raise `BrokkrError` subclasses."""
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None

    def stream(self, method: Callable[..., Iterator[R]], request: Any) -> Iterator[R]:
        """Follow a server stream without a deadline (it may run for days); failures raise
        `BrokkrError` subclasses. Closing the iterator early cancels the call."""
        call = method(request)
        try:
            yield from call
        except grpc.RpcError as error:
            raise from_rpc_error(error) from None
        finally:
            call.cancel()

    def close(self) -> None:
        self._raw_channel.close()

    def __enter__(self) -> BrokkrClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
