from pathlib import Path

import pytest
from pydantic import ValidationError

from broker.config import load_settings


def test_defaults_are_an_embedded_sqlite_broker_on_the_documented_ports(monkeypatch):
    for name in ("BROKKR_CONFIG", "BROKKR_DATABASE__URL", "BROKKR_GRPC__PORT", "BROKKR_REST__PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings()
    assert settings.database.url == "sqlite+aiosqlite:///brokkr.db"
    assert settings.database.is_sqlite
    assert settings.grpc.port == 50051
    assert settings.rest.port == 3000
    assert settings.limits.max_deployment_object_bytes == 4 * 1024 * 1024


def test_environment_overrides_file_and_file_overrides_defaults(tmp_path: Path, monkeypatch):
    config = tmp_path / "broker.yaml"
    config.write_text("grpc:\n  port: 7000\nrest:\n  port: 7001\nlog:\n  level: debug\n")
    monkeypatch.setenv("BROKKR_REST__PORT", "7002")
    settings = load_settings(config)
    assert settings.grpc.port == 7000
    assert settings.rest.port == 7002
    assert settings.log.level == "debug"


@pytest.mark.parametrize(
    ("env", "value", "complaint"),
    [
        ("BROKKR_GRPC__PORT", "seventy", "grpc.port"),
        ("BROKKR_GRPC__PORT", "70000", "grpc.port"),
        ("BROKKR_DATABASE__URL", "mysql://localhost/brokkr", "database.url"),
        ("BROKKR_GRPC__PROT", "1", "grpc.prot"),
        ("BROKKR_LOG__LEVEL", "chatty", "log.level"),
    ],
)
def test_invalid_settings_are_refused_at_start_up_naming_the_field(monkeypatch, env, value, complaint):
    monkeypatch.setenv(env, value)
    with pytest.raises(ValidationError) as raised:
        load_settings()
    assert complaint in str(raised.value)


def test_tls_needs_certificate_and_key_together(tmp_path: Path, monkeypatch):
    cert = tmp_path / "tls.crt"
    cert.write_text("not checked here")
    monkeypatch.setenv("BROKKR_GRPC__TLS__CERT_FILE", str(cert))
    with pytest.raises(ValidationError, match="cert_file and key_file go together"):
        load_settings()


def test_missing_config_file_is_an_error(tmp_path: Path):
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "absent.yaml")


def test_settings_reference_in_docs_is_current():
    from broker.config import settings_reference

    documented = (Path(__file__).parents[3] / "docs" / "reference" / "settings.md").read_text()
    assert documented == settings_reference(), (
        "run: brokkr-broker config --reference > docs/reference/settings.md"
    )


def test_tls_group_appears_with_its_nested_environment_names():
    from broker.config import settings_reference

    assert (
        "| `grpc.tls.client_ca_file` | `BROKKR_GRPC__TLS__CLIENT_CA_FILE` | unset |" in settings_reference()
    )
