"""Stacks the cluster refuses: nacked with the object named, and nothing of them written.

Both failures here show in the agent's dry run, which comes before any write: the objects of the
stack that would have worked are not created either, and no ApplySet record is written.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from brokkr_common.pb.brokkr.v1 import deployment_status_pb2
from tests.e2e.admin import FAILED, Admin, CreatedAgent
from tests.e2e.agent_thread import AgentThread
from tests.e2e.cluster import Cluster
from tests.e2e.manifests import Names, stack_yaml

pytestmark = pytest.mark.e2e

FAILED_OUTCOME = deployment_status_pb2.RESOURCE_APPLY_OUTCOME_FAILED


def failed_objects(status: deployment_status_pb2.DeploymentStatus) -> dict[str, str]:
    """The message of each object the agent reported FAILED, by object name."""
    return {r.key.name: r.message for r in status.resource_results if r.outcome == FAILED_OUTCOME}


def test_a_field_owned_by_another_field_manager_is_not_taken_but_nacked(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    cluster.create_namespace(names.namespace, names.test_id)
    cluster.apply_config_map(names.namespace, "settings", {"level": "theirs"}, manager="someone-else")
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    first = admin.submit(
        stack_id,
        stack_yaml(names.config_map("settings", level="ours"), names.config_map("other", note="fine")),
    )
    start_agent()

    status = admin.wait_for_state(agent.id, stack_id, FAILED, first)
    assert "settings" in status.last_error.message
    failed = failed_objects(status)
    assert list(failed) == ["settings"]
    assert "conflict" in failed["settings"].lower() and "someone-else" in failed["settings"]
    assert cluster.config_map(names.namespace, "settings")["data"] == {"level": "theirs"}
    assert cluster.config_map(names.namespace, "other") is None
    assert cluster.parent(stack_id) is None


def test_an_invalid_object_is_nacked_with_its_name_and_nothing_is_written(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    cluster.create_namespace(names.namespace, names.test_id)
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    first = admin.submit(
        stack_id,
        stack_yaml(
            names.config_map("settings", level="info"), names.deployment_selecting_nothing_it_runs("broken")
        ),
    )
    start_agent()

    status = admin.wait_for_state(agent.id, stack_id, FAILED, first)
    assert "broken" in status.last_error.message
    failed = failed_objects(status)
    assert list(failed) == ["broken"]
    assert "`selector` does not match template `labels`" in failed["broken"]
    assert cluster.config_map(names.namespace, "settings") is None
    assert cluster.parent(stack_id) is None
