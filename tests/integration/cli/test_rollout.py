"""`brokkrctl rollout status` against a real broker and agents speaking the real session protocol.

Each test gets its own stack and agents, so they do not see each other's agents.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from brokkr_common.client import BrokkrClient
from brokkr_common.ctl.main import cli
from brokkr_common.ctl.rollout import parse_duration
from brokkr_common.pb.brokkr.v1 import agent_pb2
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as session
from brokkr_common.pb.brokkr.v1 import target_service_pb2 as target_api
from tests.integration.cli.scripted_agent import ScriptedAgent
from tests.integration.harness import running_broker

CONFIG = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  colour: {}\n"
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('rollout') / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def admin(broker):
    with BrokkrClient(broker.grpc_target, broker.admin_key) as client:
        yield client


@pytest.fixture
def ctl(broker):
    def run(*args: str, env: dict[str, str] | None = None):
        full_env = {
            "BROKKR_SERVER": broker.grpc_target,
            "BROKKR_KEY": broker.admin_key,
            "BROKKR_CONFIG": "/nonexistent",
            **(env or {}),
        }
        return CliRunner().invoke(cli, list(args), env=full_env, catch_exceptions=False)

    return run


def applied_stack(ctl, tmp_path: Path, name: str, colour: str = "blue") -> str:
    file = tmp_path / f"{name}.yaml"
    file.write_text(CONFIG.format(colour))
    result = ctl("-o", "json", "apply", "-f", str(file), "--stack", name)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["stack"]["id"]


def targeted_agent(admin: BrokkrClient, stack_id: str, name: str) -> str:
    """An ACTIVE agent explicitly targeted by the stack; returns its key."""
    created = admin.call(
        admin.agents.CreateAgent,
        agent_api.CreateAgentRequest(
            agent=agent_pb2.Agent(
                name=name, cluster_name=f"{name}-cluster", status=agent_pb2.AGENT_STATUS_ACTIVE
            )
        ),
    )
    admin.call(
        admin.targets.CreateTarget,
        target_api.CreateTargetRequest(agent_id=created.agent.id, stack_id=stack_id),
    )
    return created.key


def test_durations():
    assert parse_duration("90") == 90
    assert parse_duration("1.5s") == 1.5
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    with pytest.raises(Exception, match="not a duration"):
        parse_duration("soon")


def test_rollout_succeeds_when_every_agent_applied_and_is_healthy(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "web")
    keys = [targeted_agent(admin, stack_id, name) for name in ("web-east", "web-west")]
    with ScriptedAgent(broker.grpc_target, keys[0]), ScriptedAgent(broker.grpc_target, keys[1]):
        result = ctl("rollout", "status", "web", "--timeout", "20s", "--interval", "0.2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert any(
        line.startswith("web-east (web-east-cluster): done, applied 1/1, state APPLIED") for line in lines
    )
    assert any(line.startswith("web-west (web-west-cluster): done, applied 1/1") for line in lines)
    assert "all 2 agents applied it and report it healthy" in result.stderr
    assert "\x1b[" not in result.output, "plain lines, no colour, when not on a terminal"


def test_on_a_terminal_the_view_is_a_live_table(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "shown")
    key = targeted_agent(admin, stack_id, "shown-one")
    with ScriptedAgent(broker.grpc_target, key):
        # rich treats stdout as a terminal when TTY_COMPATIBLE=1; CliRunner's stdout is not one
        result = ctl(
            "rollout", "status", "shown", "--timeout", "20s", "--interval", "0.2", env={"TTY_COMPATIBLE": "1"}
        )
    assert result.exit_code == 0, result.output
    assert "stack/shown deployment object 1: 1/1 agents done" in result.stdout
    assert "AGENT" in result.stdout and "HEALTH" in result.stdout
    assert "shown-one (shown-one-cluster)" not in result.stdout, "no plain lines on a terminal"


def test_rollout_follows_the_newest_deployment_object(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "api")
    key = targeted_agent(admin, stack_id, "api-one")
    with ScriptedAgent(broker.grpc_target, key) as agent:
        assert ctl("rollout", "status", "api", "--timeout", "20s", "--interval", "0.2").exit_code == 0
        applied_stack(ctl, tmp_path, "api", colour="green")
        result = ctl("-o", "json", "rollout", "status", stack_id, "--timeout", "20s", "--interval", "0.2")
        assert result.exit_code == 0, result.output
        assert [u.deployment_object.sequence_id for u in agent.updates] == [1, 2]
    rows = json.loads(result.stdout)
    assert rows == [
        {
            "agent": "api-one",
            "cluster": "api-one-cluster",
            "connection": rows[0]["connection"],
            "applied": "2/2",
            "state": "APPLIED",
            "health": "HEALTHY",
            "progress": "done",
            "message": "",
        }
    ]


def test_a_nack_fails_the_rollout_with_exit_1(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "broken")
    good, bad = targeted_agent(admin, stack_id, "broken-good"), targeted_agent(admin, stack_id, "broken-bad")
    with ScriptedAgent(broker.grpc_target, good), ScriptedAgent(broker.grpc_target, bad, nack=True):
        result = ctl("rollout", "status", "broken", "--timeout", "20s", "--interval", "0.2")
    assert result.exit_code == 1, result.output
    assert "broken-bad (broken-bad-cluster): failed" in result.stdout
    assert "the cluster refused it" in result.stdout
    assert "ROLLOUT_FAILED" in result.stderr and "broken-bad" in result.stderr


def test_a_failing_health_report_fails_the_rollout(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "crashy")
    key = targeted_agent(admin, stack_id, "crashy-one")
    with ScriptedAgent(broker.grpc_target, key, health=session.HEALTH_STATUS_FAILING):
        result = ctl("rollout", "status", "crashy", "--timeout", "20s", "--interval", "0.2")
    assert result.exit_code == 1, result.output
    assert "health FAILING" in result.stdout


def test_an_agent_that_never_answers_times_out_with_exit_4(ctl, admin, broker, tmp_path: Path):
    stack_id = applied_stack(ctl, tmp_path, "slow")
    key = targeted_agent(admin, stack_id, "slow-ok")
    targeted_agent(admin, stack_id, "slow-offline")
    with ScriptedAgent(broker.grpc_target, key, health=session.HEALTH_STATUS_PROGRESSING):
        result = ctl("rollout", "status", "slow", "--timeout", "1s", "--interval", "0.2")
    assert result.exit_code == 4, result.output
    assert "slow-offline (slow-offline-cluster): waiting, applied -/1, state" in result.stdout
    assert "ROLLOUT_TIMEOUT" in result.stderr and "0/2 agents done after 1s" in result.stderr


def test_an_unknown_stack_exits_1(ctl):
    result = ctl("rollout", "status", "no-such-stack", "--timeout", "1s")
    assert result.exit_code == 1
    assert "STACK_NOT_FOUND" in result.stderr


def test_apply_then_rollout_on_each_database(database_url: str, tmp_path: Path):
    """The whole CI flow, apply then wait, on SQLite and on PostgreSQL (LISTEN/NOTIFY delivery)."""
    with running_broker(database_url) as own, BrokkrClient(own.grpc_target, own.admin_key) as client:
        env = {"BROKKR_SERVER": own.grpc_target, "BROKKR_KEY": own.admin_key, "BROKKR_CONFIG": "/nonexistent"}
        file = tmp_path / "app.yaml"
        file.write_text(CONFIG.format("blue"))
        applied = CliRunner().invoke(cli, ["-o", "json", "apply", "-f", str(file), "--stack", "app"], env=env)
        assert applied.exit_code == 0, applied.output
        key = targeted_agent(client, json.loads(applied.stdout)["stack"]["id"], "db-agent")
        with ScriptedAgent(own.grpc_target, key):
            result = CliRunner().invoke(
                cli, ["rollout", "status", "app", "--timeout", "20s", "--interval", "0.2"], env=env
            )
        assert result.exit_code == 0, result.output
        assert "db-agent (db-agent-cluster): done, applied 1/1" in result.stdout
