"""How a stack asks for forced applies: its annotation, carried by the StackUpdate to the agent's Apply."""

from __future__ import annotations

import dataclasses

import pytest

from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session.agent_session import AgentSession, Apply
from brokkr_common.session.delta import compute_delta
from brokkr_common.session.stacks import FORCE_CONFLICTS_ANNOTATION, asks_force_conflicts
from brokkr_common.session.updates import PlannedUpdate, UpdateEncoder
from tests.unit.session.builders import A1, T0
from tests.unit.session.test_agent_session import WELCOME


@pytest.mark.parametrize(
    ("annotations", "asks"),
    [
        ({FORCE_CONFLICTS_ANNOTATION: "true"}, True),
        ({FORCE_CONFLICTS_ANNOTATION: "True"}, False),
        ({FORCE_CONFLICTS_ANNOTATION: "yes"}, False),
        ({FORCE_CONFLICTS_ANNOTATION: ""}, False),
        ({"other": "true"}, False),
        ({}, False),
    ],
)
def test_only_the_annotation_set_to_true_asks_for_force(annotations: dict[str, str], asks: bool) -> None:
    assert asks_force_conflicts(annotations) is asks


@pytest.mark.parametrize("force", [True, False])
def test_the_stack_update_carries_the_stacks_force_to_the_agents_apply(force: bool) -> None:
    desired = dataclasses.replace(A1, force_conflicts=force)
    update = PlannedUpdate(desired, compute_delta({}, desired.hashes), full_state=True)
    session = AgentSession(agent_version="1.0.0", held={}, now=T0)
    session.receive(WELCOME, T0)

    actions = session.receive(
        service_pb.ConnectResponse(stack_update=update.to_proto(), nonce="session-1/1"), T0
    )

    [work] = [action for action in actions if isinstance(action, Apply)]
    assert work.force_conflicts is force
    assert work.stack_id == A1.stack_id


def test_the_encoder_does_not_share_bytes_between_a_forced_and_an_unforced_version() -> None:
    encoder = UpdateEncoder()
    plain = PlannedUpdate(A1, compute_delta({}, A1.hashes), full_state=True)
    forced = dataclasses.replace(plain, desired=dataclasses.replace(A1, force_conflicts=True))

    first, second = service_pb.ConnectResponse(), service_pb.ConnectResponse()
    first.ParseFromString(encoder.encode(plain, "n-1"))
    second.ParseFromString(encoder.encode(forced, "n-2"))

    assert (first.stack_update.force_conflicts, second.stack_update.force_conflicts) == (False, True)
