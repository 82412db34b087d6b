"""Which stacks reach which agents, and the reasons the API shows for it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from broker.domain.model import Agent, AgentStatus, ConnectionState, Stack, TargetMatch
from broker.domain.targeting import match

NOW = datetime(2025, 1, 1, tzinfo=UTC)
GENERATOR = "7d3c8e8e-0000-4000-8000-000000000001"
OTHER_GENERATOR = "7d3c8e8e-0000-4000-8000-000000000002"


def agent(**changes: Any) -> Agent:
    fields: dict[str, Any] = {
        "id": "agent-1",
        "name": "edge",
        "cluster_name": "edge-1",
        "labels": {"env": "prod", "region": "eu"},
        "annotations": {"example.com/tier": "gold"},
        "status": AgentStatus.ACTIVE,
        "connection_state": ConnectionState.CONNECTED,
        "last_heartbeat_at": NOW,
        "kubernetes_reachable": True,
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Agent(**{**fields, **changes})


def stack(**changes: Any) -> Stack:
    fields: dict[str, Any] = {
        "id": "stack-1",
        "name": "web",
        "description": "",
        "generator_id": GENERATOR,
        "labels": {},
        "annotations": {},
        "created_at": NOW,
        "updated_at": NOW,
    }
    return Stack(**{**fields, **changes})


@pytest.mark.parametrize(
    ("the_agent", "the_stack", "explicit", "registered", "expected"),
    [
        (agent(), stack(), True, (), TargetMatch("agent-1", "stack-1", explicit=True)),
        (agent(), stack(), False, (GENERATOR,), None),
        (
            agent(),
            stack(labels={"env": "prod"}),
            False,
            (GENERATOR,),
            TargetMatch("agent-1", "stack-1", False, shared_labels=("env=prod",)),
        ),
        (agent(), stack(labels={"env": "prod"}), False, (OTHER_GENERATOR,), None),
        (agent(), stack(labels={"env": "prod"}), False, (), None),
        (
            agent(),
            stack(generator_id=None, labels={"env": "prod"}),
            False,
            (),
            TargetMatch("agent-1", "stack-1", False, shared_labels=("env=prod",)),
        ),
        (agent(), stack(labels={"env": "staging"}), False, (GENERATOR,), None),
        (agent(), stack(labels={"prod": "env"}), False, (GENERATOR,), None),
        (
            agent(),
            stack(annotations={"example.com/tier": "gold"}),
            False,
            (GENERATOR,),
            TargetMatch("agent-1", "stack-1", False, shared_annotations=("example.com/tier=gold",)),
        ),
        (agent(), stack(annotations={"example.com/tier": "silver"}), False, (GENERATOR,), None),
        (agent(), stack(annotations={"env": "prod"}), False, (GENERATOR,), None),
        (
            agent(),
            stack(
                labels={"region": "eu", "env": "prod", "team": "a"}, annotations={"example.com/tier": "gold"}
            ),
            True,
            (OTHER_GENERATOR, GENERATOR),
            TargetMatch("agent-1", "stack-1", True, ("env=prod", "region=eu"), ("example.com/tier=gold",)),
        ),
        (
            agent(),
            stack(labels={"env": "prod"}),
            True,
            (),
            TargetMatch("agent-1", "stack-1", explicit=True),
        ),
        (agent(status=AgentStatus.INACTIVE), stack(labels={"env": "prod"}), True, (GENERATOR,), None),
        (agent(deleted_at=NOW), stack(), True, (GENERATOR,), None),
        (agent(), stack(deleted_at=NOW, labels={"env": "prod"}), True, (GENERATOR,), None),
    ],
    ids=[
        "explicit",
        "nothing-shared",
        "shared-label-registered",
        "shared-label-other-generator",
        "shared-label-unregistered",
        "shared-label-admin-stack",
        "same-key-other-value",
        "key-and-value-swapped",
        "shared-annotation",
        "annotation-other-value",
        "label-is-not-annotation",
        "every-reason-sorted",
        "explicit-shared-not-counted-unregistered",
        "inactive-agent",
        "deleted-agent",
        "deleted-stack",
    ],
)
def test_match(
    the_agent: Agent,
    the_stack: Stack,
    explicit: bool,
    registered: tuple[str, ...],
    expected: TargetMatch | None,
) -> None:
    assert match(the_agent, the_stack, explicit=explicit, agent_generator_ids=registered) == expected
