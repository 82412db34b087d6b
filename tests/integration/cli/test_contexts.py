"""brokkrctl contexts: the config file, `brokkrctl config ...`, and which setting wins.

The precedence tests talk to a real broker: a context that names the right broker and key must work
on its own, and a flag or BROKKR_* variable must beat it (proved by pointing the context at a dead
port or a wrong key and fixing it from the command line).
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from brokkr_common.ctl import config
from brokkr_common.ctl.main import cli
from tests.integration.harness import running_broker

DEAD = "127.0.0.1:9"
WRONG_KEY = "brokkr_0000000000000000_" + "a" * 43


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ctx') / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    return tmp_path / "xdg" / "brokkr" / "config.yaml"


@pytest.fixture
def ctl(config_file: Path):
    """brokkrctl with a clean environment: only BROKKR_CONFIG, plus what a test adds."""

    def run(*args: str, env: dict[str, str] | None = None):
        full_env = {
            "BROKKR_CONFIG": str(config_file),
            **{name: None for name in ("BROKKR_SERVER", "BROKKR_KEY", "BROKKR_KEY_FILE", "BROKKR_CONTEXT")},
            **(env or {}),
        }
        return CliRunner().invoke(cli, ["--timeout", "3", *args], env=full_env, catch_exceptions=False)

    return run


def test_set_context_writes_a_private_file_and_makes_the_first_context_current(ctl, config_file: Path):
    result = ctl("config", "set-context", "dev", "--server", "127.0.0.1:1", "--key", "brokkr_secret_key")
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(config_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(config_file.parent.stat().st_mode) == 0o700
    saved = yaml.safe_load(config_file.read_text())
    assert saved == {
        "current-context": "dev",
        "contexts": {"dev": {"server": "127.0.0.1:1", "key": "brokkr_secret_key"}},
    }
    assert ctl("config", "current-context").stdout == "dev\n"


def test_the_default_path_follows_xdg_config_home(tmp_path: Path):
    assert config.default_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "brokkr" / "config.yaml"
    assert config.default_path({}) == Path.home() / ".config" / "brokkr" / "config.yaml"


def test_view_redacts_keys_unless_raw(ctl):
    ctl("config", "set-context", "dev", "--server", "a:1", "--key", "brokkr_secret_key")
    ctl(
        "config", "set-context", "prod", "--server", "b:443", "--key-file", "/run/key", "--ca-file", "/ca.pem"
    )
    view = ctl("config", "view")
    assert "brokkr_secret_key" not in view.stdout
    assert yaml.safe_load(view.stdout)["contexts"] == {
        "dev": {"server": "a:1", "key": "REDACTED"},
        "prod": {"server": "b:443", "key-file": "/run/key", "ca-file": "/ca.pem"},
    }
    assert json.loads(ctl("-o", "json", "config", "view", "--raw").stdout)["contexts"]["dev"]["key"] == (
        "brokkr_secret_key"
    )


def test_get_use_and_delete_contexts(ctl, config_file: Path):
    ctl("config", "set-context", "dev", "--server", "a:1")
    ctl("config", "set-context", "prod", "--server", "b:443", "--tls")
    rows = [line.split() for line in ctl("config", "get-contexts").stdout.splitlines()]
    assert rows[0] == ["CURRENT", "NAME", "SERVER", "AUTH", "TLS"]
    assert rows[1] == ["*", "dev", "a:1", "no"]
    assert rows[2] == ["prod", "b:443", "yes"]

    assert ctl("config", "use-context", "prod").exit_code == 0
    assert ctl("config", "current-context").stdout == "prod\n"
    missing = ctl("config", "use-context", "nope")
    assert missing.exit_code == 2
    assert "no context named 'nope'" in missing.stderr

    assert ctl("config", "delete-context", "prod").exit_code == 0
    assert yaml.safe_load(config_file.read_text()) == {
        "current-context": None,
        "contexts": {"dev": {"server": "a:1"}},
    }
    assert ctl("config", "current-context").exit_code == 2
    assert ctl("config", "delete-context", "prod").exit_code == 2


def test_set_context_keeps_one_credential(ctl, config_file: Path):
    ctl("config", "set-context", "dev", "--server", "a:1", "--key", "brokkr_k")
    ctl("config", "set-context", "dev", "--key-file", "/run/key")
    assert yaml.safe_load(config_file.read_text())["contexts"]["dev"] == {
        "server": "a:1",
        "key-file": "/run/key",
    }
    both = ctl("config", "set-context", "dev", "--key", "x", "--key-file", "/y")
    assert both.exit_code == 2


def test_a_broken_config_file_is_a_one_line_usage_error(ctl, config_file: Path):
    config_file.parent.mkdir(parents=True)
    config_file.write_text("contexts:\n  dev:\n    sever: typo:1\n")
    result = ctl("whoami")
    assert result.exit_code == 2
    assert "unknown keys: sever" in result.stderr
    assert "Traceback" not in result.output


def test_the_current_context_reaches_the_broker(ctl, broker, tmp_path: Path):
    key_file = tmp_path / "admin.key"
    key_file.write_text(broker.admin_key + "\n")
    ctl("config", "set-context", "local", "--server", broker.grpc_target, "--key-file", str(key_file))
    result = ctl("-o", "json", "whoami")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["role"] == "ROLE_ADMIN"


def test_context_flag_and_env_select_a_context_other_than_the_current_one(ctl, broker):
    ctl("config", "set-context", "dead", "--server", DEAD, "--key", broker.admin_key)
    ctl("config", "set-context", "live", "--server", broker.grpc_target, "--key", broker.admin_key)
    assert ctl("whoami").exit_code == 3  # "dead" is current: it was set first
    assert ctl("--context", "live", "whoami").exit_code == 0
    assert ctl("whoami", env={"BROKKR_CONTEXT": "live"}).exit_code == 0
    unknown = ctl("--context", "nope", "whoami")
    assert unknown.exit_code == 2
    assert "no context named 'nope'" in unknown.stderr


def test_flags_beat_environment_beats_context(ctl, broker):
    ctl("config", "set-context", "dead", "--server", DEAD, "--key", WRONG_KEY)
    # the context alone: unreachable
    assert ctl("whoami").exit_code == 3
    # environment beats the context: right server, but still the context's wrong key
    by_env = ctl("whoami", env={"BROKKR_SERVER": broker.grpc_target})
    assert by_env.exit_code == 1
    assert "KEY_INVALID" in by_env.stderr
    # environment key beats the context's key
    assert (
        ctl("whoami", env={"BROKKR_SERVER": broker.grpc_target, "BROKKR_KEY": broker.admin_key}).exit_code
        == 0
    )
    # a flag beats the environment
    by_flag = ctl(
        "--server", DEAD, "whoami", env={"BROKKR_SERVER": broker.grpc_target, "BROKKR_KEY": broker.admin_key}
    )
    assert by_flag.exit_code == 3
    by_flag_key = ctl(
        "--key",
        WRONG_KEY,
        "whoami",
        env={"BROKKR_SERVER": broker.grpc_target, "BROKKR_KEY": broker.admin_key},
    )
    assert by_flag_key.exit_code == 1


def test_a_key_flag_replaces_the_contexts_key_file():
    context = config.BrokerContext(server="a:1", key_file="/does/not/exist")
    connection = config.resolve(config.BrokerContext(key="brokkr_flag"), context)
    assert connection.key == "brokkr_flag"
    assert connection.server == "a:1"


def test_tls_follows_the_ca_file_unless_insecure_says_otherwise(tmp_path: Path):
    ca = str(tmp_path / "ca.pem")
    empty = config.BrokerContext()
    assert config.resolve(empty, empty).tls is False
    assert config.resolve(empty, empty).server == config.DEFAULT_SERVER
    assert config.resolve(empty, config.BrokerContext(ca_file=ca)).tls is True
    assert config.resolve(empty, config.BrokerContext(insecure=False)).tls is True
    assert (
        config.resolve(config.BrokerContext(insecure=True), config.BrokerContext(insecure=False)).tls is False
    )
    with pytest.raises(config.ConfigError, match="contradicts"):
        config.resolve(config.BrokerContext(insecure=True), config.BrokerContext(ca_file=ca))


def test_tls_to_a_plaintext_broker_fails_as_unreachable(ctl, broker):
    result = ctl("--server", broker.grpc_target, "--key", broker.admin_key, "--tls", "whoami")
    assert result.exit_code == 3
    assert "UNAVAILABLE" in result.stderr
