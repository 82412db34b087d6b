"""The API from Node.js: `tests/clients/node/client.mjs` (@grpc/grpc-js with the .proto files loaded at
run time) against a real broker.

It proves that a client in another language can do everything an integration needs from the protos
alone: authenticate, read rich errors, create a stack and a deployment object, read per-agent
status, and be an agent (hello, receive the stack update, ack it, report health), after which the
broker shows the deployment as applied and healthy.

`npm ci` runs once per lock file (see conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from brokkr_common.client import BrokkrClient
from brokkr_common.pb.brokkr.v1 import agent_pb2, agent_session_pb2, deployment_status_pb2
from brokkr_common.pb.brokkr.v1 import agent_service_pb2 as agent_api
from brokkr_common.pb.brokkr.v1 import deployment_status_service_pb2 as status_api
from tests.integration.harness import running_broker

NODE_DIR = Path(__file__).resolve().parents[3] / "tests" / "clients" / "node"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None, reason="needs Node.js and npm on PATH"
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('node') / 'brokkr.db'}") as running:
        yield running


def test_node_client_manages_a_stack_and_acks_as_an_agent(node_modules, broker):
    with BrokkrClient(broker.grpc_target, broker.admin_key) as admin:
        created = admin.call(
            admin.agents.CreateAgent,
            agent_api.CreateAgentRequest(
                agent=agent_pb2.Agent(
                    name="node-agent", cluster_name="node", status=agent_pb2.AGENT_STATUS_ACTIVE
                )
            ),
        )
    env = {
        **os.environ,
        "BROKKR_SERVER": broker.grpc_target,
        "BROKKR_ADMIN_KEY": broker.admin_key,
        "BROKKR_AGENT_ID": created.agent.id,
        "BROKKR_AGENT_KEY": created.key,
        "BROKKR_STACK": "from-node",
    }
    completed = subprocess.run(
        ["node", "client.mjs"], cwd=NODE_DIR, env=env, capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout)

    assert result["whoami"] == {"role": "ROLE_ADMIN", "principal_name": "admin"}
    invalid = result["invalid_stack_error"]
    assert (invalid["code"], invalid["reason"], invalid["field_violations"]) == (
        "INVALID_ARGUMENT",
        "INVALID_DNS_LABEL",
        ["stack.name"],
    )

    stack_id = result["stack"]["id"]
    assert result["stack"]["name"] == "from-node"
    deployment_object = result["deployment_object"]
    assert deployment_object["sequence_id"] == "1"
    assert len(deployment_object["checksum"]) == 64
    assert result["status_before"] == "DEPLOYMENT_STATE_PENDING"

    session = result["session"]
    assert session["messages"][0] == "welcome"
    assert session["welcome_agent_id"] == created.agent.id
    assert session["update"] == {
        "sequence_id": "1",
        "checksum": deployment_object["checksum"],
        "full_state": True,
        "apply": ["ConfigMap/demo/from-node"],
        "nonce_present": True,
    }
    assert result["status_after"] == {
        "state": "DEPLOYMENT_STATE_APPLIED",
        "applied_sequence_id": "1",
        "health": "HEALTH_STATUS_HEALTHY",
    }
    # what the Node.js agent reported is what the broker serves to every client
    with BrokkrClient(broker.grpc_target, broker.admin_key) as admin:
        statuses = admin.call(
            admin.deployment_statuses.ListDeploymentStatuses,
            status_api.ListDeploymentStatusesRequest(stack_id=stack_id),
        ).deployment_statuses
    assert [(s.agent_id, s.state, s.applied_deployment_object.id, s.health) for s in statuses] == [
        (
            created.agent.id,
            deployment_status_pb2.DEPLOYMENT_STATE_APPLIED,
            deployment_object["id"],
            agent_session_pb2.HEALTH_STATUS_HEALTHY,
        )
    ]
