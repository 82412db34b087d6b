"""brokkrctl against a real broker: output formats, errors and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from brokkr_common.ctl.main import cli
from tests.integration.harness import running_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('ctl') / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def ctl(broker):
    runner = CliRunner()

    def run(*args: str, key: str | None = None, input: str | None = None):
        # an empty config file: a developer's own contexts must not leak into the test
        env = {
            "BROKKR_SERVER": broker.grpc_target,
            "BROKKR_KEY": key or broker.admin_key,
            "BROKKR_CONFIG": "/nonexistent/config.yaml",
        }
        return runner.invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return run


def test_whoami_as_json_and_yaml(ctl):
    result = ctl("-o", "json", "whoami")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"role": "ROLE_ADMIN", "principalId": "", "principalName": "admin"}
    assert yaml.safe_load(ctl("-o", "yaml", "whoami").stdout)["role"] == "ROLE_ADMIN"


def test_create_stack_submit_content_and_list(ctl, tmp_path: Path):
    created = ctl("-o", "json", "stacks", "create", "--name", "ctl-app", "--label", "env=prod")
    assert created.exit_code == 0, created.output
    stack_id = json.loads(created.stdout)["id"]
    manifest = tmp_path / "app.yaml"
    manifest.write_text("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: ctl-app\n")
    submitted = ctl("-o", "json", "deployment-objects", "create", stack_id, "-f", str(manifest))
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.stdout)["sequenceId"] == "1"
    table = ctl("stacks", "list")
    assert table.exit_code == 0
    header, *rows = [line for line in table.stdout.splitlines() if line.strip()]
    assert header.split()[:3] == ["ID", "NAME", "GENERATOR"]
    assert any(stack_id in row and "ctl-app" in row and "env=prod" in row for row in rows)
    assert "kind: Namespace" in ctl("deployment-objects", "get", json.loads(submitted.stdout)["id"]).stdout


def test_api_errors_are_one_line_with_the_reason_and_exit_1(ctl):
    result = ctl("stacks", "create", "--name", "Bad Name")
    assert result.exit_code == 1
    assert "INVALID" in result.stderr and "stack.name" in result.stderr
    assert "Traceback" not in result.output


def test_a_bad_key_exits_1_as_unauthenticated(ctl):
    result = ctl("whoami", key="brokkr_0000000000000000_" + "a" * 43)
    assert result.exit_code == 1
    assert "KEY_INVALID" in result.stderr


def test_an_unreachable_broker_exits_3():
    result = CliRunner().invoke(
        cli,
        ["--server", "127.0.0.1:9", "--timeout", "2", "whoami"],
        env={
            "BROKKR_KEY": "brokkr_0000000000000000_" + "a" * 43,
            "BROKKR_CONFIG": "/nonexistent/config.yaml",
        },
    )
    assert result.exit_code == 3
    assert "UNAVAILABLE" in result.stderr
