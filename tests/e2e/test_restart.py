"""An agent restart resumes from what the cluster records, without applying the stack again."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.e2e.admin import APPLIED, CONNECTED, DISCONNECTED, Admin, CreatedAgent
from tests.e2e.agent_thread import AgentThread
from tests.e2e.cluster import Cluster
from tests.e2e.manifests import Names, stack_yaml

pytestmark = pytest.mark.e2e


def test_a_restarted_agent_resumes_without_applying_again(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    objects = [names.config_map(name, value="1") for name in ("a", "b", "c")]
    first = admin.submit(stack_id, stack_yaml(names.namespace_object(), *objects))
    running = start_agent()
    admin.wait_for_state(agent.id, stack_id, APPLIED, first)
    versions = {
        name: cluster.config_map(names.namespace, name)["metadata"]["resourceVersion"] for name in "abc"
    }
    updates = admin.updates_sent()

    running.stop()
    admin.wait_for_connection(agent.id, DISCONNECTED)
    start_agent()
    admin.wait_for_connection(agent.id, CONNECTED)
    second = admin.submit(
        stack_id, stack_yaml(names.namespace_object(), *objects[:2], names.config_map("c", value="2"))
    )

    status = admin.wait_for_state(agent.id, stack_id, APPLIED, second)
    # Only the change travelled and was applied: the restarted agent got no full resend of the
    # first version, and wrote nothing but "c".
    assert admin.updates_sent() == updates + 1
    assert [r.key.name for r in status.resource_results] == ["c"]
    after = {name: cluster.config_map(names.namespace, name)["metadata"]["resourceVersion"] for name in "abc"}
    assert after["a"] == versions["a"] and after["b"] == versions["b"]
    assert after["c"] != versions["c"]
