"""brokkrctl's contexts: named broker connections kept in a config file, like kubectl's kubeconfig.

People talk to several brokers (a laptop, staging, production) with different keys and TLS
material; typing them on every command is error-prone and puts keys in shell history. A context
bundles one connection; the file remembers which one is current.

Where the file is: `--config`, else `BROKKR_CONFIG`, else `$XDG_CONFIG_HOME/brokkr/config.yaml`
(`~/.config/brokkr/config.yaml` when XDG_CONFIG_HOME is unset). It can hold keys, so it is always
written with mode 0600, in a directory created with mode 0700, and replaced atomically.

How a connection setting is chosen, first hit wins: command-line flag, `BROKKR_*` environment
variable, the selected context (`--context`, else `BROKKR_CONTEXT`, else the file's current
context), built-in default. `resolve` is that rule and nothing else, so it is tested on its own.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

#: The broker address used when neither flag, environment nor context names one.
DEFAULT_SERVER = "localhost:50051"
#: What `config view` shows instead of a key.
REDACTED = "REDACTED"


class ConfigError(Exception):
    """The config file cannot be read or does not say what the command needs."""


@dataclass(frozen=True)
class BrokerContext:
    """One named connection. Unset fields (None) fall through to the defaults.

    `insecure` True means plaintext gRPC; False means TLS even without a CA file (the system's trust
    roots). Unset: TLS exactly when a CA file or client certificate is configured.
    """

    server: str | None = None
    key: str | None = None
    key_file: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None
    insecure: bool | None = None

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> BrokerContext:
        known = {f.name.replace("_", "-"): f.name for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"context {name!r} has unknown keys: {', '.join(unknown)}")
        values = {known[k]: v for k, v in data.items() if v is not None}
        for attribute, value in values.items():
            expected = bool if attribute == "insecure" else str
            if not isinstance(value, expected):
                raise ConfigError(
                    f"context {name!r}: {attribute.replace('_', '-')} must be a {expected.__name__}"
                )
        return cls(**values)

    def to_dict(self, *, redact: bool = False) -> dict[str, Any]:
        data = {f.name.replace("_", "-"): getattr(self, f.name) for f in fields(self)}
        if redact and data["key"] is not None:
            data["key"] = REDACTED
        return {k: v for k, v in data.items() if v is not None}

    def merged(self, **changes: Any) -> BrokerContext:
        """This context with the given fields replaced; None leaves a field as it is."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


@dataclass
class Config:
    """The whole file: contexts by name and the current one."""

    contexts: dict[str, BrokerContext] = field(default_factory=dict)
    current_context: str | None = None

    def to_dict(self, *, redact: bool = False) -> dict[str, Any]:
        return {
            "current-context": self.current_context,
            "contexts": {name: c.to_dict(redact=redact) for name, c in sorted(self.contexts.items())},
        }


def default_path(environ: Mapping[str, str] | None = None) -> Path:
    """`$XDG_CONFIG_HOME/brokkr/config.yaml`, or `~/.config/brokkr/config.yaml`."""
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "brokkr" / "config.yaml"


def load(path: Path) -> Config:
    """The config at `path`; an empty config when the file does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Config()
    except OSError as error:
        raise ConfigError(f"cannot read {path}: {error.strerror}") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping")
    unknown = sorted(set(data) - {"current-context", "contexts"})
    if unknown:
        raise ConfigError(f"{path} has unknown keys: {', '.join(unknown)}")
    raw_contexts = data.get("contexts") or {}
    if not isinstance(raw_contexts, dict) or not all(isinstance(v, dict) for v in raw_contexts.values()):
        raise ConfigError(f"{path}: contexts must map names to mappings")
    current = data.get("current-context")
    if current is not None and not isinstance(current, str):
        raise ConfigError(f"{path}: current-context must be a string")
    return Config(
        contexts={str(name): BrokerContext.from_dict(str(name), c) for name, c in raw_contexts.items()},
        current_context=current,
    )


def save(config: Config, path: Path) -> None:
    """Write `config` to `path` with mode 0600, atomically (a reader never sees half a file)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    text = "# brokkrctl contexts; managed by `brokkrctl config`. May hold keys: keep it private.\n"
    text += yaml.safe_dump(config.to_dict(), sort_keys=False)
    descriptor, temporary = tempfile.mkstemp(prefix=".config-", suffix=".yaml", dir=path.parent)
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def selected(config: Config, name: str | None) -> BrokerContext:
    """The context named `name`, else the current one, else an empty context."""
    chosen = name or config.current_context
    if chosen is None:
        return BrokerContext()
    try:
        return config.contexts[chosen]
    except KeyError:
        where = "" if name else " (the current context)"
        raise ConfigError(
            f"no context named {chosen!r}{where}; see `brokkrctl config get-contexts`"
        ) from None


@dataclass(frozen=True)
class Connection:
    """Everything needed to open a channel, after precedence was applied."""

    server: str
    key: str | None
    ca_file: Path | None
    client_cert: Path | None
    client_key: Path | None
    server_name: str | None
    tls: bool


def resolve(given: BrokerContext, context: BrokerContext) -> Connection:
    """Flags and environment (`given`, already merged by the CLI framework) over `context`, over
    defaults. A key given on the command line or environment beats a key file from the context, and
    the other way round, so that one layer's choice of credential is taken whole."""
    layered = context.merged(**{f.name: getattr(given, f.name) for f in fields(given)})
    key, key_file = layered.key, layered.key_file
    if given.key is not None or given.key_file is not None:
        key, key_file = given.key, given.key_file
    if key is None and key_file is not None:
        try:
            key = Path(key_file).expanduser().read_text(encoding="utf-8").strip()
        except OSError as error:
            raise ConfigError(f"cannot read the key file {key_file}: {error.strerror}") from None
    path = lambda value: Path(value).expanduser() if value else None  # noqa: E731
    ca_file, client_cert = path(layered.ca_file), path(layered.client_cert)
    if layered.insecure and (ca_file or client_cert):
        raise ConfigError("insecure (plaintext) contradicts a CA file or client certificate")
    tls = not layered.insecure if layered.insecure is not None else bool(ca_file or client_cert)
    return Connection(
        server=layered.server or DEFAULT_SERVER,
        key=key,
        ca_file=ca_file,
        client_cert=client_cert,
        client_key=path(layered.client_key),
        server_name=layered.server_name,
        tls=tls,
    )
