"""The agent's settings: typed groups, a documented default per field, validated at start-up.

Sources, highest precedence first: command-line flags, `BROKKR_*` environment variables (groups
separated by a double underscore: `BROKKR_BROKER__ADDRESS`), a YAML file named by `--config` or
`BROKKR_CONFIG`, the defaults below. The agent Helm chart's values map one-to-one onto these.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from brokkr_common.settings import BrokkrSettings, LogSettings, SettingsGroup, reference


class BrokerTlsSettings(SettingsGroup):
    enabled: bool = Field(False, description="Dial the broker with TLS (system CAs unless ca_file is set).")
    ca_file: Path | None = Field(None, description="PEM CA bundle to trust for the broker's certificate.")
    cert_file: Path | None = Field(None, description="PEM client certificate for mutual TLS.")
    key_file: Path | None = Field(None, description="PEM private key for cert_file.")
    server_name: str | None = Field(
        None, description="Override the TLS server name checked in the certificate."
    )

    @model_validator(mode="after")
    def _complete(self) -> BrokerTlsSettings:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        for path in (self.ca_file, self.cert_file, self.key_file):
            if path is not None and not path.is_file():
                raise ValueError(f"{path} is not a readable file")
        return self

    @property
    def active(self) -> bool:
        return self.enabled or self.ca_file is not None or self.cert_file is not None


class BrokerSettings(SettingsGroup):
    address: str = Field("localhost:50051", description="The broker's gRPC address, host:port.")
    key: SecretStr | None = Field(None, description="The agent's key (prefer key_file in clusters).")
    key_file: Path | None = Field(None, description="File holding the agent's key, e.g. a mounted Secret.")
    tls: BrokerTlsSettings = Field(default_factory=BrokerTlsSettings, description="TLS to the broker.")
    keepalive_time_seconds: float = Field(
        30.0,
        gt=0,
        description="HTTP/2 keepalive ping interval; the broker accepts pings every 10 s or slower.",
    )
    keepalive_timeout_seconds: float = Field(10.0, gt=0, description="Unanswered ping -> connection is dead.")
    reconnect_max_seconds: float = Field(
        60.0, gt=0, description="Cap of the exponential reconnect backoff (full jitter below it)."
    )

    @model_validator(mode="after")
    def _one_key(self) -> BrokerSettings:
        if self.key is None and self.key_file is None:
            raise ValueError("set broker.key or broker.key_file")
        if self.key is not None and self.key_file is not None:
            raise ValueError("set only one of broker.key and broker.key_file")
        if self.key_file is not None and not self.key_file.is_file():
            raise ValueError(f"broker.key_file {self.key_file} is not a readable file")
        return self

    def read_key(self) -> str:
        """The key, read fresh from key_file each time so a rotated Secret is picked up on reconnect."""
        if self.key is not None:
            return self.key.get_secret_value()
        assert self.key_file is not None
        return self.key_file.read_text().strip()


class KubernetesSettings(SettingsGroup):
    kubeconfig: Path | None = Field(
        None, description="kubeconfig file; unset means in-cluster service account."
    )
    context: str | None = Field(None, description="kubeconfig context; unset means the current one.")
    field_manager: str = Field("brokkr-agent", description="Server-side apply field manager name.")
    namespace: str | None = Field(
        None,
        description=(
            "Confine the agent to one namespace (for namespaced RBAC): its records live there and"
            " stacks may hold only objects of it; unset means cluster-wide."
        ),
    )
    records_namespace: str = Field(
        "brokkr-system",
        min_length=1,
        max_length=63,
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        description=(
            "Namespace of a cluster-wide agent's records (one ApplySet parent Secret per stack), created"
            " at start-up if missing; the Helm chart sets it to the release namespace. A confined agent"
            " keeps its records in `namespace` instead."
        ),
    )
    request_timeout_seconds: float = Field(30.0, gt=0, description="Timeout of one Kubernetes API request.")
    max_apply_retries: int = Field(
        5, ge=0, description="Retries of temporary errors (409 races, 429, 5xx, network) before giving up."
    )


class HealthSettings(SettingsGroup):
    interval_seconds: float = Field(
        30.0,
        gt=0,
        description="How often resource health is re-assessed at the latest (watches report changes sooner).",
    )
    debounce_seconds: float = Field(
        2.0,
        ge=0,
        description=(
            "After a watched object of a held stack changes, wait this long for more changes before"
            " re-assessing, so a rollout's burst of status updates makes one report."
        ),
    )


class HttpSettings(SettingsGroup):
    host: str = Field("0.0.0.0", description="Address of the /healthz, /readyz and /metrics endpoint.")
    port: int = Field(8080, ge=0, le=65535, description="Port of that endpoint; 0 picks a free one.")


class AgentSettings(BrokkrSettings):
    """Everything the agent reads at start-up."""

    broker: BrokerSettings = Field(
        default_factory=BrokerSettings, description="Where the broker is and how to reach it."
    )
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings, description="The cluster.")
    health: HealthSettings = Field(default_factory=HealthSettings, description="Health assessment.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="Probe and metrics endpoint.")
    log: LogSettings = Field(default_factory=LogSettings, description="Logging.")


def load_settings(config_file: Path | None = None, **overrides: object) -> AgentSettings:
    """Settings from defaults, the YAML file, the environment and explicit overrides, validated."""
    return AgentSettings.load(config_file, **overrides)


def settings_reference() -> str:
    """docs/reference/agent-settings.md; a test keeps the two equal."""
    return reference(AgentSettings, "Agent settings", "brokkr-agent config --reference")
