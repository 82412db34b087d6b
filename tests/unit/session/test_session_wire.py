"""Resource keys, refs and reports as they cross the wire: what is accepted, what is refused."""

from __future__ import annotations

import pytest

from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2
from brokkr_common.session.reports import (
    Health,
    ResourceError,
    ResourceHealth,
    ResourceOutcome,
    ResourceResult,
    StackHealth,
)
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef
from tests.unit.session.builders import A1, DEPLOYMENT

VALID_KEYS = [
    ResourceKey("", "v1", "ConfigMap", "default", "settings"),
    ResourceKey("apps", "v1", "Deployment", "web", "frontend"),
    ResourceKey("rbac.authorization.k8s.io", "v1", "ClusterRole", "", "system:controller:brokkr"),
    ResourceKey("monitoring.coreos.com", "v1alpha1", "ServiceMonitor", "obs", "api.metrics"),
    ResourceKey("", "v1", "Namespace", "", "n" * 253),
]

INVALID_KEYS = [
    ResourceKey("", "v1", "ConfigMap", "default", ""),
    ResourceKey("", "v1", "ConfigMap", "default", ".."),
    ResourceKey("", "v1", "ConfigMap", "default", "100%"),
    ResourceKey("", "v1", "ConfigMap", "default", "tab\there"),
    ResourceKey("", "v1", "ConfigMap", "default", "n" * 254),
    ResourceKey("Apps", "v1", "Deployment", "default", "web"),
    ResourceKey("apps", "V1", "Deployment", "default", "web"),
    ResourceKey("apps", "v1\n", "Deployment", "default", "web"),
    ResourceKey("apps", "v1", "", "default", "web"),
    ResourceKey("apps", "v1", "Deployment", "n" * 64, "web"),
]


@pytest.mark.parametrize("key", VALID_KEYS, ids=str)
def test_real_kubernetes_keys_cross_the_wire_unchanged(key: ResourceKey) -> None:
    assert ResourceKey.from_proto(key.to_proto(), "key") == key


@pytest.mark.parametrize("key", INVALID_KEYS, ids=repr)
def test_malformed_keys_are_refused_naming_the_field(key: ResourceKey) -> None:
    with pytest.raises(InvalidArgument) as raised:
        ResourceKey.from_proto(key.to_proto(), "ack.results[3].key")

    assert raised.value.reason == "MALFORMED_RESOURCE_KEY"
    assert [violation.field for violation in raised.value.field_violations] == ["ack.results[3].key"]


def test_keys_read_like_kubectl_paths() -> None:
    assert str(VALID_KEYS[0]) == "core/v1/ConfigMap/default/settings"
    assert str(VALID_KEYS[2]) == "rbac.authorization.k8s.io/v1/ClusterRole/system:controller:brokkr"


def test_deployment_object_refs_round_trip() -> None:
    ref = DeploymentObjectRef("do-1", 3, A1.deployment_object.checksum, is_deletion_marker=True)

    assert DeploymentObjectRef.from_proto(ref.to_proto(), "ref") == ref


def test_reports_round_trip() -> None:
    result = ResourceResult(DEPLOYMENT.key, ResourceOutcome.CONFIGURED, "replicas 2 -> 3")
    error = ResourceError(DEPLOYMENT.key, "CONFLICT", "field manager kubectl owns .spec.replicas", True)
    health = StackHealth(
        "stack-a",
        A1.deployment_object,
        Health.DEGRADED,
        (ResourceHealth(DEPLOYMENT.key, Health.DEGRADED, "ProgressDeadlineExceeded", "1/2 ready"),),
    )

    assert ResourceResult.from_proto(result.to_proto(), "r") == result
    assert ResourceError.from_proto(error.to_proto(), "e") == error
    assert StackHealth.from_proto(health.to_proto(), "h") == health


def test_enum_values_from_a_newer_peer_read_as_dont_know() -> None:
    key = DEPLOYMENT.key.to_proto()
    future_outcome = pb.ResourceResult(key=key, outcome=99)
    future_health = pb.ResourceHealth(key=key, health=99)
    unset_health = pb.ResourceHealth(key=key)

    assert ResourceResult.from_proto(future_outcome, "r").outcome is ResourceOutcome.UNSPECIFIED
    assert ResourceHealth.from_proto(future_health, "h").health is Health.UNKNOWN
    assert ResourceHealth.from_proto(unset_health, "h").health is Health.UNKNOWN


def test_health_with_a_malformed_key_is_refused_naming_the_field() -> None:
    message = pb.StackHealth(
        stack_id="stack-a", resources=[pb.ResourceHealth(key=deployment_object_pb2.ResourceKey(kind="Pod"))]
    )

    with pytest.raises(InvalidArgument) as raised:
        StackHealth.from_proto(message, "health_report.stacks[0]")

    assert [v.field for v in raised.value.field_violations] == ["health_report.stacks[0].resources[0].key"]
