"""A stack that asks to force field-manager conflicts, and an agent confined to one namespace."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from agent.config import load_settings
from brokkr_common.session.stacks import FORCE_CONFLICTS_ANNOTATION
from tests.e2e.admin import APPLIED, FAILED, Admin, CreatedAgent
from tests.e2e.agent_thread import AgentThread
from tests.e2e.cluster import Cluster
from tests.e2e.manifests import Names, stack_yaml
from tests.e2e.test_failures import failed_objects

pytestmark = pytest.mark.e2e


def agent_field_manager() -> str:
    return load_settings(broker={"address": "unused:1", "key": "unused"}).kubernetes.field_manager


def test_a_stack_asking_for_force_takes_the_field_another_manager_owns(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    cluster.create_namespace(names.namespace, names.test_id)
    cluster.apply_config_map(names.namespace, "settings", {"level": "theirs"}, manager="someone-else")
    stack_id = admin.create_stack(names.stack("shop"), agent.id, {FORCE_CONFLICTS_ANNOTATION: "true"})
    first = admin.submit(stack_id, stack_yaml(names.config_map("settings", level="ours")))
    start_agent()

    admin.wait_for_state(agent.id, stack_id, APPLIED, first)
    settings = cluster.config_map(names.namespace, "settings")
    assert settings is not None and settings["data"] == {"level": "ours"}
    owners = {
        entry["manager"]: entry.get("fieldsV1", {}).get("f:data", {})
        for entry in settings["metadata"]["managedFields"]
    }
    assert "f:level" in owners[agent_field_manager()]
    assert "f:level" not in owners.get("someone-else", {})


def test_an_agent_confined_to_a_namespace_refuses_what_lies_outside_and_applies_the_rest(
    names: Names,
    admin: Admin,
    agent: CreatedAgent,
    start_agent: Callable[..., AgentThread],
    cluster: Cluster,
):
    cluster.create_namespace(names.namespace, names.test_id)
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    outside = names.namespace_object(f"{names.namespace}-other")
    first = admin.submit(stack_id, stack_yaml(names.config_map("settings", level="info"), outside))
    start_agent(names.namespace)

    status = admin.wait_for_state(agent.id, stack_id, FAILED, first)
    assert list(failed_objects(status)) == [outside["metadata"]["name"]]
    assert "OUTSIDE_NAMESPACE_SCOPE" in failed_objects(status)[outside["metadata"]["name"]]
    assert cluster.config_map(names.namespace, "settings") is None
    assert cluster.namespace(outside["metadata"]["name"]) is None

    second = admin.submit(stack_id, stack_yaml(names.config_map("settings", level="info")))
    admin.wait_for_state(agent.id, stack_id, APPLIED, second)
    assert cluster.config_map(names.namespace, "settings") is not None
    assert cluster.parent(stack_id, names.namespace) is not None
