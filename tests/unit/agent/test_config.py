from pathlib import Path

import pytest
from pydantic import ValidationError

from agent.config import load_settings, settings_reference


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith("BROKKR_"):
            monkeypatch.delenv(name)


def test_a_key_is_required(monkeypatch):
    with pytest.raises(ValidationError, match=r"set broker.key or broker.key_file"):
        load_settings()


def test_key_file_is_read_fresh_each_time(tmp_path: Path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text("first\n")
    monkeypatch.setenv("BROKKR_BROKER__KEY_FILE", str(key_file))
    settings = load_settings()
    assert settings.broker.read_key() == "first"
    key_file.write_text("rotated")
    assert settings.broker.read_key() == "rotated"


def test_only_one_key_source(tmp_path: Path, monkeypatch):
    key_file = tmp_path / "key"
    key_file.write_text("k")
    monkeypatch.setenv("BROKKR_BROKER__KEY_FILE", str(key_file))
    monkeypatch.setenv("BROKKR_BROKER__KEY", "k")
    with pytest.raises(ValidationError, match="only one"):
        load_settings()


def test_agent_settings_reference_in_docs_is_current():
    documented = (Path(__file__).parents[3] / "docs" / "reference" / "agent-settings.md").read_text()
    assert documented == settings_reference(), (
        "run: brokkr-agent config --reference > docs/reference/agent-settings.md"
    )
