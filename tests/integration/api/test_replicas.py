"""Two broker replicas over one PostgreSQL: any replica serves any call, and a key rotated through
one stops working on the other at once."""

from __future__ import annotations

import pytest

from brokkr_common.client import BrokkrClient
from brokkr_common.errors import Unauthenticated
from brokkr_common.pb.brokkr.v1 import (
    generator_pb2,
    stack_pb2,
)
from brokkr_common.pb.brokkr.v1 import (
    generator_service_pb2 as generator_api,
)
from brokkr_common.pb.brokkr.v1 import (
    stack_service_pb2 as stack_api,
)
from tests.integration.harness import running_broker


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_rotation_through_one_replica_is_effective_on_the_other(database_url):
    with running_broker(database_url) as first, running_broker(database_url) as second:
        # The second replica found the admin key the first created: one admin, one database.
        assert second.broker.bootstrap_admin_key is None
        with (
            BrokkrClient(first.grpc_target, first.admin_key) as admin_one,
            BrokkrClient(second.grpc_target, first.admin_key) as admin_two,
        ):
            created = admin_one.call(
                admin_one.generators.CreateGenerator,
                generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="ci")),
            )
            stack = admin_one.call(
                admin_one.stacks.CreateStack,
                stack_api.CreateStackRequest(stack=stack_pb2.Stack(name="shared")),
            )
            assert (
                admin_two.call(
                    admin_two.stacks.GetStack, stack_api.GetStackRequest(id=stack.stack.id)
                ).stack.name
                == "shared"
            )
            admin_one.call(
                admin_one.generators.RotateGeneratorKey,
                generator_api.RotateGeneratorKeyRequest(id=created.generator.id),
            )
        with BrokkrClient(second.grpc_target, created.key) as stale, pytest.raises(Unauthenticated):
            stale.call(stale.stacks.ListStacks, stack_api.ListStacksRequest())
