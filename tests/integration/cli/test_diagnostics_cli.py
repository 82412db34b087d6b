"""`brokkrctl diagnostics` against a real broker: a request is shown PENDING, `--wait` exits 4 when
the agent never answers in time, bad options are refused, and `list`/`get` read requests back."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from brokkr_common.client import BrokkrClient
from brokkr_common.ctl.main import cli
from brokkr_common.pb.brokkr.v1 import agent_pb2, stack_pb2
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api
from tests.integration.harness import running_broker


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('diag') / 'brokkr.db'}"
    with running_broker(url, diagnostics={"timeout_seconds": 60}) as running:
        yield running


@pytest.fixture
def ctl(broker):
    def run(*args: str):
        env = {
            "BROKKR_SERVER": broker.grpc_target,
            "BROKKR_KEY": broker.admin_key,
            "BROKKR_CONFIG": "/nonexistent",
        }
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture(scope="module")
def agent_and_stack(broker) -> tuple[str, str]:
    admin = BrokkrClient(broker.grpc_target, broker.admin_key)
    agent = admin.call(
        admin.agents.CreateAgent,
        agent_api.CreateAgentRequest(
            agent=agent_pb2.Agent(name="edge", cluster_name="c", labels={"env": "prod"}, status=1)
        ),
    ).agent
    stack = admin.call(
        admin.stacks.CreateStack,
        stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="shop", labels={"env": "prod"})),
    ).stack
    admin.close()
    return agent.id, stack.id


def test_request_get_and_list(ctl, agent_and_stack):
    agent_id, stack_id = agent_and_stack
    created = ctl(
        "-o", "json", "diagnostics", "request", "--agent", agent_id, "--stack", stack_id, "--previous"
    )
    assert created.exit_code == 0, created.output
    body = json.loads(created.stdout)
    assert body["state"] == "DIAGNOSTICS_STATE_PENDING"
    assert body["options"]["includePreviousLogs"] is True
    got = ctl("-o", "json", "diagnostics", "get", body["id"])
    assert json.loads(got.stdout)["id"] == body["id"]
    listed = ctl("diagnostics", "list", "--agent", agent_id)
    assert listed.exit_code == 0 and body["id"] in listed.stdout and "PENDING" in listed.stdout


def test_wait_exits_4_when_the_agent_does_not_answer_in_time(ctl, agent_and_stack):
    agent_id, stack_id = agent_and_stack
    result = ctl(
        "diagnostics", "request", "--agent", agent_id, "--stack", stack_id, "--wait", "--wait-timeout", "0.3s"
    )
    assert result.exit_code == 4
    assert "DIAGNOSTICS_TIMEOUT" in result.stderr


def test_out_of_range_options_are_refused(ctl, agent_and_stack):
    agent_id, stack_id = agent_and_stack
    result = ctl("diagnostics", "request", "--agent", agent_id, "--stack", stack_id, "--tail-lines", "501")
    assert result.exit_code != 0
    assert "diagnostics.options.log_tail_lines" in result.stderr
