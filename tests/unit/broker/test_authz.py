"""The role table covers every RPC the broker serves, and nothing else."""

import pytest

from broker.api import authz, registry
from broker.domain.model import ADMIN, Principal, Role
from brokkr_common.errors import PermissionDenied


def _served_methods() -> set[str]:
    return {
        f"/{service.full_name}/{method.name}"
        for file in registry.file_descriptors()
        for service in file.services_by_name.values()
        for method in service.methods
    }


def test_every_served_method_has_a_policy_and_every_policy_a_method():
    assert set(authz.POLICY) == _served_methods()


def test_a_method_missing_from_the_table_is_refused_even_for_the_admin():
    with pytest.raises(PermissionDenied):
        authz.authorize("/brokkr.v1.StackService/NotInTheTable", ADMIN)


def test_role_refusal_names_role_and_method():
    agent = Principal(Role.AGENT, "a1", "edge-1")
    with pytest.raises(PermissionDenied) as raised:
        authz.authorize("/brokkr.v1.StackService/CreateStack", agent)
    assert raised.value.reason == "ROLE_NOT_ALLOWED"
    assert raised.value.metadata == {"method": "/brokkr.v1.StackService/CreateStack", "role": "agent"}


def test_health_and_reflection_are_public():
    assert authz.is_public("/grpc.health.v1.Health/Check")
    assert authz.is_public("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not authz.is_public("/brokkr.v1.AuthService/WhoAmI")
