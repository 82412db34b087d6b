"""The broker's settings: typed groups, a documented default per field, validated at start-up.

Sources, highest precedence first: command-line flags, `BROKKR_*` environment variables (groups are
separated by a double underscore: `BROKKR_DATABASE__URL`, `BROKKR_GRPC__PORT`), a YAML file named by
`--config` or `BROKKR_CONFIG`, the defaults below. The Helm chart's values map one-to-one onto these
groups. `brokkr-broker config` prints the effective settings with secrets masked.
"""

from __future__ import annotations

import socket
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

from brokkr_common.secretbox import SecretBox
from brokkr_common.settings import BrokkrSettings, LogSettings, SettingsGroup, reference

MiB = 1024 * 1024


class DatabaseSettings(SettingsGroup):
    url: str = Field(
        "sqlite+aiosqlite:///brokkr.db",
        description="SQLAlchemy URL. The default is an embedded SQLite file in the working directory "
        "(one replica only); production uses postgresql+psycopg://user@host:5432/db.",
    )
    pool_size: int = Field(10, ge=1, le=200, description="PostgreSQL connections per replica.")
    connect_timeout_seconds: float = Field(
        5.0, gt=0, description="How long to wait for a database connection before answering UNAVAILABLE."
    )
    migrate_on_start: bool = Field(True, description="Apply pending Alembic migrations at start-up.")

    @field_validator("url")
    @classmethod
    def _supported_driver(cls, url: str) -> str:
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite+aiosqlite:// or postgresql+psycopg://")
        return url

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")


class TlsSettings(SettingsGroup):
    cert_file: Path | None = Field(None, description="PEM server certificate chain; enables TLS.")
    key_file: Path | None = Field(None, description="PEM private key for cert_file.")
    client_ca_file: Path | None = Field(
        None, description="PEM CA bundle for client certificates; with it, clients must present one (mTLS)."
    )

    @model_validator(mode="after")
    def _complete(self) -> TlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.client_ca_file and not self.cert_file:
            raise ValueError("client_ca_file needs cert_file and key_file")
        for path in (self.cert_file, self.key_file, self.client_ca_file):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class GrpcSettings(SettingsGroup):
    host: str = Field("0.0.0.0", description="Address the gRPC server binds.")
    port: int = Field(50051, ge=0, le=65535, description="gRPC port; 0 picks a free one.")
    max_message_bytes: int = Field(
        16 * MiB, ge=MiB, description="Largest request or response; above the largest deployment object."
    )
    keepalive_time_seconds: float = Field(
        30.0, gt=0, description="HTTP/2 keepalive ping interval the broker sends to idle agents."
    )
    keepalive_timeout_seconds: float = Field(
        10.0, gt=0, description="How long a keepalive ping may go unanswered before the connection is closed."
    )
    min_client_ping_interval_seconds: float = Field(
        10.0,
        gt=0,
        description="Clients may ping this often without a GOAWAY (too_many_pings); agents ping every 30 s.",
    )
    max_pending_requests: int = Field(
        20000,
        ge=100,
        description="Calls waiting to be accepted before new ones are refused; a reconnect storm of "
        "thousands of agents needs far more than grpcio's default of 1,000.",
    )
    max_call_queue_seconds: int = Field(
        60,
        ge=1,
        description="How long a call may wait for the broker to take it up before it is cancelled (grpcio's "
        "default is 30 s). Keep it below the agents' Welcome timeout (120 s): in a reconnect storm an agent "
        "that gives up first would have its stream taken up for nothing.",
    )
    shutdown_grace_seconds: float = Field(
        15.0, ge=0, description="On SIGTERM: how long running calls may finish before they are cancelled."
    )
    tls: TlsSettings = Field(default_factory=TlsSettings, description="TLS and mutual TLS.")


class RestSettings(SettingsGroup):
    enabled: bool = Field(True, description="Serve the HTTP/JSON shim, OpenAPI and /metrics.")
    host: str = Field("0.0.0.0", description="Address the REST shim binds.")
    port: int = Field(3000, ge=0, le=65535, description="REST port; 0 picks a free one.")


class AuthSettings(SettingsGroup):
    admin_key_hash: SecretStr | None = Field(
        None,
        description="`<short>:<sha256>` of the admin key (from `brokkr-broker hash-key`). When set it "
        "replaces any stored admin key at start-up; when unset, the first start creates one and prints it.",
    )
    failure_limit: int = Field(
        20,
        ge=0,
        description="Failed authentications one client address may make within failure_window_seconds "
        "before its calls are refused (RESOURCE_EXHAUSTED) without looking at the key; 0 disables the limit.",
    )
    failure_window_seconds: float = Field(
        60.0, gt=0, description="The window failure_limit counts failed authentications in."
    )


class LimitsSettings(SettingsGroup):
    max_deployment_object_bytes: int = Field(
        4 * MiB, ge=1024, description="Largest YAML content of one deployment object (UTF-8 bytes)."
    )


class SessionSettings(SettingsGroup):
    heartbeat_interval_seconds: float = Field(
        30.0, gt=0, description="How often agents send a heartbeat; told to each agent in its Welcome."
    )
    heartbeat_timeout_seconds: float = Field(
        90.0, gt=0, description="Silence after which a session is closed and the agent shown disconnected."
    )
    sweep_interval_seconds: float = Field(
        60.0,
        gt=0,
        description="How often every local session is re-checked against the database, "
        "catching any change whose notification was missed.",
    )
    outbox_messages: int = Field(
        512, ge=8, description="Messages queued for one agent before it counts as not reading and is cut off."
    )
    max_concurrent_opens: int = Field(
        8,
        ge=1,
        description="Sessions that may read the database to open at once, and likewise calls that may "
        "authenticate at once. Keep it below database.pool_size: opens and authentications each use up to "
        "this many of the pool's connections (pool_size, and as many again in overflow), so other work "
        "still gets connections during a reconnect storm.",
    )
    max_waiting_opens: int = Field(
        4096,
        ge=0,
        description="Sessions that may wait for their turn to open (a waiting session holds no database "
        "connection); beyond that an agent is refused at once with RESOURCE_EXHAUSTED and retries after its "
        "jittered backoff, which after a few refusals is long: keep it above the agents one replica serves.",
    )
    report_batch_size: int = Field(
        1000,
        ge=1,
        description="Session records (opened, Hello, closed), acks, health reports and heartbeats "
        "written per database transaction.",
    )
    report_flush_seconds: float = Field(
        0.05, gt=0, description="How long reports gather before a batch is written."
    )

    @model_validator(mode="after")
    def _timeout_above_interval(self) -> SessionSettings:
        if self.heartbeat_timeout_seconds <= self.heartbeat_interval_seconds:
            raise ValueError("heartbeat_timeout_seconds must exceed heartbeat_interval_seconds")
        return self


class EventSettings(SettingsGroup):
    watch_poll_seconds: float = Field(
        5.0,
        gt=0,
        description="How often a WatchEvents stream re-reads the event log without being woken; a "
        "safety net for a missed notification, since new events normally wake watchers at once.",
    )


class AuditSettings(SettingsGroup):
    retention_days: int = Field(
        90, ge=1, description="Audit log entries older than this many days are erased by a periodic purge."
    )
    purge_interval_seconds: float = Field(
        3600.0, gt=0, description="How often each replica erases audit log entries past retention_days."
    )
    flush_seconds: float = Field(
        0.5,
        gt=0,
        description="How long audit entries gather before a batch is written (write-behind, so an "
        "audited call does not wait for a second transaction); queued entries are written on shutdown.",
    )
    batch_size: int = Field(500, ge=1, description="Audit log entries written per database transaction.")


class DiagnosticsSettings(SettingsGroup):
    timeout_seconds: float = Field(
        120.0,
        gt=0,
        description="How long a diagnostics request waits for the agent's answer (the agent may be "
        "disconnected meanwhile) before it is shown EXPIRED.",
    )
    retention_seconds: float = Field(
        3600.0,
        gt=0,
        description="How long a finished diagnostics request, its report included, is kept before the "
        "sessions' sweep erases it; reports hold container logs, which should not pile up.",
    )


class WebhookSettings(SettingsGroup):
    encryption_key: SecretStr | None = Field(
        None,
        description="Fernet key (32 random bytes, URL-safe base64: `python -c 'from cryptography.fernet "
        "import Fernet; print(Fernet.generate_key().decode())'`) that encrypts webhook URLs, auth headers "
        "and signing secrets at rest. To rotate, list several comma-separated, newest first: the first "
        "seals, every one opens. Required to create webhooks; the broker refuses to start if webhooks "
        "exist and it is unset.",
    )
    allowed_cidrs: str | None = Field(
        None,
        description="Comma-separated networks (CIDR) webhook targets may be in although they are private, "
        "loopback or link-local, e.g. 10.20.0.0/16 for an in-cluster receiver. Unset: public addresses only.",
    )
    worker_enabled: bool = Field(
        True, description="Run this replica's delivery worker; every replica can, they share the outbox."
    )
    worker_concurrency: int = Field(8, ge=1, le=256, description="Deliveries one replica sends at once.")
    poll_interval_seconds: float = Field(
        1.0, gt=0, description="How often an idle worker looks for due deliveries in the outbox."
    )
    lease_seconds: float = Field(
        120.0,
        gt=60,
        description="How long a claimed delivery stays with its worker; after that (the worker died) any "
        "replica may send it again. Longer than the longest webhook timeout (60 s).",
    )
    retry_base_seconds: float = Field(
        5.0, gt=0, description="Backoff after the first failed attempt; doubles per attempt, full jitter."
    )
    retry_cap_seconds: float = Field(
        3600.0, gt=0, description="Longest wait between two attempts, Retry-After included."
    )

    @field_validator("allowed_cidrs")
    @classmethod
    def _networks(cls, cidrs: str | None) -> str | None:
        for cidr in _split(cidrs or ""):
            try:
                ip_network(cidr, strict=True)
            except ValueError as error:
                raise ValueError(f"{cidr!r} is not a network in CIDR notation: {error}") from None
        return cidrs

    @field_validator("encryption_key")
    @classmethod
    def _keys(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None:
            try:
                SecretBox(_split(key.get_secret_value()))
            except ValueError as error:
                raise ValueError(str(error)) from None
        return key

    @property
    def networks(self) -> tuple[IPv4Network | IPv6Network, ...]:
        return tuple(ip_network(cidr) for cidr in _split(self.allowed_cidrs or ""))

    def secret_box(self) -> SecretBox | None:
        """The box over the configured keys, or None when there is none."""
        if self.encryption_key is None or not _split(self.encryption_key.get_secret_value()):
            return None
        return SecretBox(_split(self.encryption_key.get_secret_value()))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


class BrokerSettings(BrokkrSettings):
    """Everything the broker reads at start-up."""

    replica_name: str = Field(
        default_factory=socket.gethostname,
        description="This replica's name in connection records and logs; the pod name in Kubernetes.",
    )
    database: DatabaseSettings = Field(default_factory=DatabaseSettings, description="Where state lives.")
    grpc: GrpcSettings = Field(default_factory=GrpcSettings, description="The gRPC API.")
    rest: RestSettings = Field(default_factory=RestSettings, description="The HTTP/JSON shim.")
    auth: AuthSettings = Field(default_factory=AuthSettings, description="Keys.")
    limits: LimitsSettings = Field(default_factory=LimitsSettings, description="Input bounds.")
    sessions: SessionSettings = Field(default_factory=SessionSettings, description="Agent sessions.")
    events: EventSettings = Field(default_factory=EventSettings, description="The event log.")
    audit: AuditSettings = Field(default_factory=AuditSettings, description="The audit log.")
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings, description="Webhook delivery.")
    diagnostics: DiagnosticsSettings = Field(
        default_factory=DiagnosticsSettings, description="On-demand diagnostics of stacks on agents."
    )
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")


def load_settings(config_file: Path | None = None, **overrides: object) -> BrokerSettings:
    """Settings from defaults, the YAML file, the environment and explicit overrides, validated."""
    return BrokerSettings.load(config_file, **overrides)


def settings_reference() -> str:
    """docs/reference/settings.md; a test keeps the two equal."""
    return reference(BrokerSettings, "Broker settings", "brokkr-broker config --reference")
