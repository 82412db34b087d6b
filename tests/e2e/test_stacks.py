"""A stack's life on a real cluster: applied, updated, pruned and removed by the real agent."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from brokkr_common.pb.brokkr.v1 import deployment_status_pb2
from tests.e2e.admin import APPLIED, REMOVED, Admin, CreatedAgent
from tests.e2e.agent_thread import AgentThread
from tests.e2e.cluster import Cluster, Obj, is_gone_or_going
from tests.e2e.manifests import Names, stack_yaml
from tests.e2e.polling import eventually

pytestmark = pytest.mark.e2e

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
Outcome = deployment_status_pb2.ResourceApplyOutcome


def outcomes(status: deployment_status_pb2.DeploymentStatus) -> dict[str, str]:
    """What the agent reported for each object of its last apply, by object name."""
    return {
        r.key.name: Outcome.Name(r.outcome).removeprefix("RESOURCE_APPLY_OUTCOME_")
        for r in status.resource_results
    }


def labels(obj: Obj | None) -> dict[str, str]:
    assert obj is not None, "the object is missing"
    return obj["metadata"].get("labels") or {}


def established(crd: Obj | None) -> bool:
    conditions = (crd or {}).get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def test_a_namespace_a_crd_and_its_custom_resource_are_applied_then_updated_and_pruned(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    first = admin.submit(
        stack_id,
        stack_yaml(
            names.namespace_object(),
            names.widget_crd(),
            names.widget("gear", size=3),
            names.config_map("settings", level="info"),
            names.config_map("extra", note="dropped in the next version"),
        ),
    )
    start_agent()

    status = admin.wait_for_state(agent.id, stack_id, APPLIED, first)
    assert outcomes(status) == {
        names.namespace: "CREATED",
        names.crd_name: "CREATED",
        "gear": "CREATED",
        "settings": "CREATED",
        "extra": "CREATED",
    }
    crd = cluster.crd(names.crd_name)
    assert established(crd)
    gear = cluster.custom_object(names.group, "widgets", names.namespace, "gear")
    assert gear is not None and gear["spec"] == {"size": 3}
    settings = cluster.config_map(names.namespace, "settings")
    assert settings is not None and settings["data"] == {"level": "info"}
    applyset = labels(cluster.parent(stack_id))[ID_LABEL]
    members = [
        cluster.namespace(names.namespace),
        crd,
        gear,
        settings,
        cluster.config_map(names.namespace, "extra"),
    ]
    assert [labels(member).get(PART_OF_LABEL) for member in members] == [applyset] * 5

    second = admin.submit(
        stack_id,
        stack_yaml(
            names.namespace_object(),
            names.widget_crd(),
            names.widget("gear", size=5),
            names.config_map("settings", level="debug"),
        ),
    )

    status = admin.wait_for_state(agent.id, stack_id, APPLIED, second)
    assert outcomes(status) == {"gear": "CONFIGURED", "settings": "CONFIGURED", "extra": "PRUNED"}
    assert cluster.custom_object(names.group, "widgets", names.namespace, "gear")["spec"] == {"size": 5}
    assert cluster.config_map(names.namespace, "settings")["data"] == {"level": "debug"}
    assert cluster.config_map(names.namespace, "extra") is None
    # The unchanged CRD was not written again.
    assert cluster.crd(names.crd_name)["metadata"]["resourceVersion"] == crd["metadata"]["resourceVersion"]


def test_removing_a_stack_deletes_everything_it_applied_and_its_record(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    first = admin.submit(
        stack_id,
        stack_yaml(
            names.namespace_object(),
            names.widget_crd(),
            names.widget("gear", size=3),
            names.config_map("settings", level="info"),
        ),
    )
    start_agent()
    admin.wait_for_state(agent.id, stack_id, APPLIED, first)
    assert cluster.parent(stack_id) is not None

    admin.delete_stack(stack_id)

    admin.wait_for_state(agent.id, stack_id, REMOVED)
    assert cluster.parent(stack_id) is None
    assert cluster.config_map(names.namespace, "settings") is None
    assert cluster.custom_object(names.group, "widgets", names.namespace, "gear") is None
    eventually(lambda: cluster.crd(names.crd_name), lambda crd: crd is None, "the CRD deleted")
    assert is_gone_or_going(cluster.namespace(names.namespace))


def test_a_namespace_that_existed_before_the_stack_is_kept_when_the_stack_is_removed(
    names: Names, admin: Admin, agent: CreatedAgent, start_agent: Callable[[], AgentThread], cluster: Cluster
):
    cluster.create_namespace(names.namespace, names.test_id)
    stack_id = admin.create_stack(names.stack("shop"), agent.id)
    first = admin.submit(
        stack_id, stack_yaml(names.namespace_object(), names.config_map("settings", level="info"))
    )
    start_agent()
    status = admin.wait_for_state(agent.id, stack_id, APPLIED, first)
    assert outcomes(status)[names.namespace] in {"CONFIGURED", "UNCHANGED"}

    admin.delete_stack(stack_id)

    admin.wait_for_state(agent.id, stack_id, REMOVED)
    assert cluster.config_map(names.namespace, "settings") is None
    assert cluster.parent(stack_id) is None
    namespace = cluster.namespace(names.namespace)
    assert namespace is not None and not namespace["metadata"].get("deletionTimestamp")
