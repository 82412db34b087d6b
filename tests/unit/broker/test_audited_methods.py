"""Which calls the API edge audits: decided by each method's REST verb, checked against the names."""

from __future__ import annotations

from broker.api import authz, registry
from broker.api.audit_logs import audited_methods
from broker.api.interceptor import resource_names, service_noun
from brokkr_common.pb.brokkr.v1 import stack_pb2, target_service_pb2
from brokkr_common.pb.brokkr.v1 import stack_service_pb2 as stack_api

READ_VERBS = ("Get", "List", "Watch", "WhoAmI")


def test_every_method_that_changes_state_is_audited_and_no_read_is():
    audited = audited_methods(registry.file_descriptors())
    served = set(authz.POLICY) - {"/brokkr.v1.AgentSessionService/Connect"}

    reads = {method for method in served if method.rsplit("/", 1)[-1].startswith(READ_VERBS)}
    assert audited == served - reads
    assert "/brokkr.v1.StackService/DeleteStack" in audited
    assert "/brokkr.v1.AuthService/RotateAdminKey" in audited


def test_resources_are_named_from_ids_in_the_request_and_the_created_resource():
    noun = service_noun("/brokkr.v1.DeploymentObjectService/CreateDeploymentObject")
    update = stack_api.UpdateStackRequest(stack=stack_pb2.Stack(id="s1", generator_id="g1"))
    target = target_service_pb2.CreateTargetRequest(agent_id="a1", stack_id="s1")
    created = stack_api.CreateStackResponse(stack=stack_pb2.Stack(id="s9"))

    assert noun == "deployment_objects"
    assert resource_names(stack_api.DeleteStackRequest(id="s1"), "stacks") == ["stacks/s1"]
    assert resource_names(update, "stacks") == ["stacks/s1"]
    assert resource_names(target, "targets") == ["agents/a1", "stacks/s1"]
    assert resource_names(stack_api.CreateStackRequest(request_id="r"), "stacks") == []
    assert resource_names(created, "stacks", top_level_id=False) == ["stacks/s9"]
