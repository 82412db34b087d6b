"""The broker's composition root: the one place that wires concrete classes together.

Nothing connects at import time. `Broker.start()` opens the database (migrating it), makes sure an
admin key exists, and starts the gRPC server (API, health, reflection) and the REST shim;
`Broker.stop()` shuts down in stages: health NOT_SERVING so load balancers stop sending, running
calls drain for the grace period, then the REST shim, the gRPC server and the database close.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
from dataclasses import dataclass
from datetime import timedelta

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from broker import rest
from broker.api import interceptor, registry
from broker.api.audit_logs import audited_methods
from broker.api.throttling import AuthenticationFailures
from broker.config import BrokerSettings
from broker.db import Database, open_database
from broker.db.notifications import listen
from broker.domain.changes import Change
from broker.domain.ports import UnitOfWorkFactory
from broker.services import keys as key_service
from broker.services import webhooks as webhook_service
from broker.services.admission import Admission
from broker.services.audit import AuditTrail
from broker.services.diagnostics import DiagnosticsPolicy
from broker.services.events import EventSignal
from broker.services.webhooks_delivery import DeliveryPolicy, DeliveryWorker
from broker.services.webhooks_http import HttpSender
from broker.stream.connect import AgentSessionServicer, StreamLimits
from broker.stream.hub import SessionHub
from broker.stream.recording import Recorder
from brokkr_common.errors import Unavailable
from brokkr_common.secretbox import SecretBox
from brokkr_common.session.broker_session import HeartbeatPolicy

log = structlog.get_logger("brokkr.server")


def grpc_server_options(settings: BrokerSettings) -> list[tuple[str, int]]:
    """Channel arguments for the gRPC server, kept consistent with what agents send.

    Agents ping every `keepalive_time` (30 s by default); the broker accepts pings down to
    `min_client_ping_interval_seconds`, so neither end GOAWAYs the other with `too_many_pings`.
    """
    grpc_settings = settings.grpc
    return [
        ("grpc.max_receive_message_length", grpc_settings.max_message_bytes),
        ("grpc.max_send_message_length", grpc_settings.max_message_bytes),
        ("grpc.keepalive_time_ms", int(grpc_settings.keepalive_time_seconds * 1000)),
        ("grpc.keepalive_timeout_ms", int(grpc_settings.keepalive_timeout_seconds * 1000)),
        ("grpc.keepalive_permit_without_calls", 1),
        (
            "grpc.http2.min_recv_ping_interval_without_data_ms",
            int(grpc_settings.min_client_ping_interval_seconds * 1000),
        ),
        ("grpc.http2.max_ping_strikes", 2),
        ("grpc.server.max_pending_requests", grpc_settings.max_pending_requests),
        ("grpc.server.max_pending_requests_hard_limit", grpc_settings.max_pending_requests * 2),
        ("grpc.server_max_unrequested_time_in_server", grpc_settings.max_call_queue_seconds),
    ]


def _server_credentials(settings: BrokerSettings) -> grpc.ServerCredentials | None:
    tls = settings.grpc.tls
    if tls.cert_file is None or tls.key_file is None:
        return None
    return grpc.ssl_server_credentials(
        [(tls.key_file.read_bytes(), tls.cert_file.read_bytes())],
        root_certificates=tls.client_ca_file.read_bytes() if tls.client_ca_file else None,
        require_client_auth=tls.client_ca_file is not None,
    )


@dataclass
class Ports:
    grpc: int
    rest: int | None


class Broker:
    """One broker replica."""

    def __init__(self, settings: BrokerSettings) -> None:
        self.settings = settings
        self.registry = CollectorRegistry()
        self.health = health.aio.HealthServicer()
        self.bootstrap_admin_key: str | None = None
        self.ports: Ports | None = None
        self._database: Database | None = None
        self._server: grpc.aio.Server | None = None
        self._rest_channel: grpc.aio.Channel | None = None
        self._rest: rest.RunningServer | None = None
        self.hub: SessionHub | None = None
        self._recorder: Recorder | None = None
        self._background_stop = asyncio.Event()
        # Wakes WatchEvents streams when events commit (on any replica); closed first on stop.
        self.event_signal = EventSignal()
        self.audit_trail: AuditTrail | None = None
        self._background: list[asyncio.Task[None]] = []
        self.webhook_worker: DeliveryWorker | None = None
        self._webhook_sender: HttpSender | None = None

    @property
    def database(self) -> Database:
        assert self._database is not None, "broker not started"
        return self._database

    async def start(self) -> Ports:
        settings = self.settings
        self._database = await open_database(
            settings.database.url,
            pool_size=settings.database.pool_size,
            connect_timeout=settings.database.connect_timeout_seconds,
            migrate=settings.database.migrate_on_start,
        )
        database = self._database
        sessions = settings.sessions
        plain_uow = database.uow_factory()
        webhook_box = await self._webhook_box(database)
        self._recorder = Recorder(
            plain_uow, batch_size=sessions.report_batch_size, interval=sessions.report_flush_seconds
        )
        self.hub = SessionHub(
            plain_uow,
            self._recorder,
            replica_name=settings.replica_name,
            registry=self.registry,
            heartbeat_timeout=sessions.heartbeat_timeout_seconds,
            max_opening=sessions.max_concurrent_opens,
            max_waiting=sessions.max_waiting_opens,
            diagnostics_policy=DiagnosticsPolicy(
                timeout=timedelta(seconds=settings.diagnostics.timeout_seconds),
                retention=timedelta(seconds=settings.diagnostics.retention_seconds),
            ),
        )
        self._recorder.defer_while(self.hub.delivering)
        # On PostgreSQL every replica, this one included, learns of commits through LISTEN/NOTIFY;
        # on SQLite (one replica) the unit of work hands them over directly after commit.
        uow_factory = plain_uow if database.uses_notify else database.uow_factory(on_commit=self._publish)
        audit_settings = settings.audit
        self.audit_trail = AuditTrail(
            plain_uow,
            batch_size=audit_settings.batch_size,
            flush_seconds=audit_settings.flush_seconds,
            retention_days=audit_settings.retention_days,
            purge_interval_seconds=audit_settings.purge_interval_seconds,
        )
        admin_hash = settings.auth.admin_key_hash.get_secret_value() if settings.auth.admin_key_hash else None
        self.bootstrap_admin_key = await key_service.ensure_admin_key(uow_factory(), admin_hash)

        # Every call authenticates against the database; in a reconnect storm thousands do at
        # once. They take turns like session opens, with the same budget, and wait in memory
        # rather than on the pool (whose checkout timeout would fail them).
        authenticating = Admission(
            sessions.max_concurrent_opens,
            settings.grpc.max_pending_requests,
            refusal="too many calls are authenticating at this broker; retry shortly",
            reason="TOO_MANY_CALLS_AUTHENTICATING",
        )

        async def authenticate(authorization: str | None):
            return await authenticating.run(lambda: key_service.authenticate(uow_factory(), authorization))

        server = grpc.aio.server(
            interceptors=[
                interceptor.ApiInterceptor(
                    authenticate,
                    self.registry,
                    audit=self.audit_trail.record,
                    audited_methods=audited_methods(registry.file_descriptors()),
                    failures=AuthenticationFailures(
                        settings.auth.failure_limit, settings.auth.failure_window_seconds
                    )
                    if settings.auth.failure_limit
                    else None,
                )
            ],
            options=grpc_server_options(settings),
        )
        service_names = registry.add_servicers(server, uow_factory, settings, event_signal=self.event_signal)
        session_servicer = AgentSessionServicer(
            self.hub,
            self._recorder,
            replica_name=settings.replica_name,
            limits=StreamLimits(
                outbox_messages=sessions.outbox_messages,
                heartbeat=HeartbeatPolicy(
                    sessions.heartbeat_interval_seconds, sessions.heartbeat_timeout_seconds
                ),
            ),
        )
        server.add_generic_rpc_handlers((session_servicer.handler(),))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [
                *service_names,
                health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                reflection.SERVICE_NAME,
            ],
            server,
        )
        address = f"{settings.grpc.host}:{settings.grpc.port}"
        credentials = _server_credentials(settings)
        grpc_port = (
            server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
        )
        # The REST shim forwards over a loopback-only plaintext port, so it works unchanged when the
        # public port requires TLS or client certificates. Keys are still checked on every call.
        internal_port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._server = server
        self._recorder.start()
        self.audit_trail.start()
        hub = self.hub
        await hub.sweep()  # sessions this replica held before a crash are shown disconnected
        self._background.append(asyncio.create_task(hub.run_changes(), name="change-fan-out"))
        self._background.append(
            asyncio.create_task(
                hub.run_sweeps(sessions.sweep_interval_seconds, self._background_stop), name="session-sweeps"
            )
        )
        if database.uses_notify:
            self._background.append(
                asyncio.create_task(
                    listen(settings.database.url, self._publish, hub.sweep, self._background_stop),
                    name="change-listener",
                )
            )
        if webhook_box is not None and settings.webhooks.worker_enabled:
            self._start_webhook_worker(uow_factory, webhook_box)
        for name in ("", *service_names):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

        rest_port = None
        if settings.rest.enabled:
            self._rest_channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{internal_port}",
                options=[
                    ("grpc.max_receive_message_length", settings.grpc.max_message_bytes),
                    ("grpc.max_send_message_length", settings.grpc.max_message_bytes),
                ],
            )
            routes = rest.build_routes(registry.file_descriptors())
            app = rest.create_app(self._rest_channel, routes, registry=self.registry)
            self._rest = await rest.start_rest_server(app, settings.rest.host, settings.rest.port)
            rest_port = self._rest.port
        self.ports = Ports(grpc=grpc_port, rest=rest_port)
        log.info(
            "broker started",
            grpc_port=grpc_port,
            rest_port=rest_port,
            replica=settings.replica_name,
            database="sqlite" if settings.database.is_sqlite else "postgresql",
            tls=settings.grpc.tls.enabled,
        )
        return self.ports

    async def stop(self, grace: float | None = None) -> None:
        grace = self.settings.grpc.shutdown_grace_seconds if grace is None else grace
        log.info("broker stopping", grace_seconds=grace)
        await self.health.enter_graceful_shutdown()
        self._background_stop.set()
        # Event watchers end cleanly (OK) instead of holding the shutdown for the whole grace period.
        self.event_signal.close()
        if self.hub is not None:
            # Agents reconnect, with jitter, to another replica (or to this one after a restart).
            self.hub.close_all(Unavailable("the broker is shutting down", reason="BROKER_SHUTTING_DOWN"))
        if self._server is not None:
            await self._server.stop(grace)
        if self.hub is not None:
            await self.hub.stop()
        # The sweeps and the change listener end by themselves once told to stop; cancelling them
        # mid-query would leak their connections.
        _, stuck = await asyncio.wait(self._background, timeout=10) if self._background else ((), ())
        for task in stuck:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._webhook_sender is not None:
            await self._webhook_sender.close()
        if self._recorder is not None:
            await self._recorder.stop()
        if self.audit_trail is not None:
            await self.audit_trail.stop()  # writes the entries still queued
        if self._rest is not None:
            await self._rest.stop()
        if self._rest_channel is not None:
            await self._rest_channel.close()
        if self._database is not None:
            await self._database.dispose()
        log.info("broker stopped")

    async def _webhook_box(self, database: Database) -> SecretBox | None:
        """The webhook key box. Refuses to start (closing the database) if webhooks exist but no key
        is configured: their secrets could not be opened."""
        box = self.settings.webhooks.secret_box()
        try:
            await webhook_service.require_key_if_webhooks_exist(
                database.uow_factory()(), webhook_service.WebhookConfig(box)
            )
        except BaseException:
            await database.dispose()
            self._database = None
            raise
        return box

    def _start_webhook_worker(self, uow_factory: UnitOfWorkFactory, box: SecretBox) -> None:
        """This replica's share of webhook delivery; every replica claims from the same outbox."""
        webhooks = self.settings.webhooks
        self._webhook_sender = HttpSender(webhooks.networks)
        self.webhook_worker = DeliveryWorker(
            uow_factory,
            box,
            self._webhook_sender,
            DeliveryPolicy(
                concurrency=webhooks.worker_concurrency,
                poll_interval_seconds=webhooks.poll_interval_seconds,
                lease_seconds=webhooks.lease_seconds,
                retry_base_seconds=webhooks.retry_base_seconds,
                retry_cap_seconds=webhooks.retry_cap_seconds,
            ),
            replica_name=self.settings.replica_name,
        )
        self._background.append(
            asyncio.create_task(self.webhook_worker.run(self._background_stop), name="webhook-delivery")
        )

    async def _publish(self, changes: tuple[Change, ...]) -> None:
        """Committed changes (after commit on SQLite, on NOTIFY on PostgreSQL) go to the agent
        sessions and wake the event watchers."""
        await self.event_signal.on_changes(changes)
        if self.hub is not None:
            await self.hub.publish(changes)

    async def wait_for_termination(self) -> None:
        assert self._server is not None
        await self._server.wait_for_termination()


async def serve(settings: BrokerSettings, stop: asyncio.Event) -> None:
    """Run a broker until `stop` is set, then shut it down gracefully."""
    broker = Broker(settings)
    await broker.start()
    # Everything allocated so far lives as long as the process: keep the collector off it.
    gc.collect()
    gc.freeze()
    if broker.bootstrap_admin_key:
        print_bootstrap_key(broker.bootstrap_admin_key)
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await broker.stop()


def print_bootstrap_key(key: str) -> None:
    """Show the first admin key once, on stdout only: never in logs."""
    print(
        "\nBrokkr admin key (shown once; store it now):\n\n"
        f"    {key}\n\n"
        "Use it as `Authorization: Bearer <key>` or `brokkrctl --key`. Rotate it with "
        "`brokkr-broker rotate-admin-key`.\n",
        flush=True,
    )
