"""The broker's settings: typed groups, a documented default per field, validated at start-up.

Sources, highest precedence first: command-line flags, `BROKKR_*` environment variables (groups are
separated by a double underscore: `BROKKR_DATABASE__URL`, `BROKKR_GRPC__PORT`), a YAML file named by
`--config` or `BROKKR_CONFIG`, the defaults below. The Helm chart's values map one-to-one onto these
groups. `brokkr-broker config` prints the effective settings with secrets masked.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator

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


class LimitsSettings(SettingsGroup):
    max_deployment_object_bytes: int = Field(
        4 * MiB, ge=1024, description="Largest YAML content of one deployment object (UTF-8 bytes)."
    )


class SessionSettings(SettingsGroup):
    heartbeat_interval_seconds: float = Field(
        10.0, gt=0, description="How often agents send a heartbeat; told to each agent in its Welcome."
    )
    heartbeat_timeout_seconds: float = Field(
        30.0, gt=0, description="Silence after which a session is closed and the agent shown disconnected."
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
    report_batch_size: int = Field(
        1000, ge=1, description="Acks, health reports and heartbeats written per database transaction."
    )
    report_flush_seconds: float = Field(
        0.05, gt=0, description="How long reports gather before a batch is written."
    )

    @model_validator(mode="after")
    def _timeout_above_interval(self) -> SessionSettings:
        if self.heartbeat_timeout_seconds <= self.heartbeat_interval_seconds:
            raise ValueError("heartbeat_timeout_seconds must exceed heartbeat_interval_seconds")
        return self


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
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")


def load_settings(config_file: Path | None = None, **overrides: object) -> BrokerSettings:
    """Settings from defaults, the YAML file, the environment and explicit overrides, validated."""
    return BrokerSettings.load(config_file, **overrides)


def settings_reference() -> str:
    """docs/reference/settings.md; a test keeps the two equal."""
    return reference(BrokerSettings, "Broker settings", "brokkr-broker config --reference")
