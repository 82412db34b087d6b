"""What agents report about their deployments, and what the broker keeps of it per agent x stack.

The session layer turns protocol messages into these reports; the services store the newest of
them as one `DeploymentRecord` per agent x stack; the API answers "which version runs where" by
comparing each record with what the agent should hold now (`deployment_state`), without asking
agents.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from broker.domain.model import DeploymentObjectRef


class DeploymentState(enum.StrEnum):
    PENDING = "PENDING"
    """Shown only, never recorded: the agent does not hold what it should yet, and did not fail it."""
    APPLIED = "APPLIED"
    """The agent acknowledged the deployment object (or the removal)."""
    FAILED = "FAILED"
    """The agent nacked it; the version is parked until a newer one or an explicit retry."""
    REMOVED = "REMOVED"
    """The agent acknowledged removing everything of the stack."""


class HealthState(enum.StrEnum):
    HEALTHY = "HEALTHY"
    PROGRESSING = "PROGRESSING"
    DEGRADED = "DEGRADED"
    FAILING = "FAILING"
    UNKNOWN = "UNKNOWN"


@dataclass(frozen=True)
class ResourceOutcome:
    """One object's result in an ack or nack; `key` is `group/version/kind/namespace/name`."""

    key: str
    outcome: str  # CREATED / CONFIGURED / UNCHANGED / PRUNED / FAILED
    message: str = ""


@dataclass(frozen=True)
class ApplyReport:
    """An ack (`succeeded`) or nack of one stack on one agent. `deployment_object_id` is None for
    a removal of the stack."""

    agent_id: str
    stack_id: str
    deployment_object_id: str | None
    succeeded: bool
    at: datetime
    error_code: str = ""  # the google.rpc code name of a nack, e.g. INVALID_ARGUMENT
    error_message: str = ""
    resources: tuple[ResourceOutcome, ...] = ()


@dataclass(frozen=True)
class ResourceHealthReport:
    key: str
    health: HealthState
    reason: str = ""
    message: str = ""


@dataclass(frozen=True)
class HealthReport:
    agent_id: str
    stack_id: str
    deployment_object_id: str | None
    health: HealthState
    at: datetime
    resources: tuple[ResourceHealthReport, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    agent_id: str
    at: datetime
    kubernetes_reachable: bool
    kubernetes_api_latency_ms: int


@dataclass(frozen=True)
class Hello:
    """What an agent said when its session `session_id` began: its version, and what it holds
    (stack id -> deployment object id, None when it cannot tell which)."""

    agent_id: str
    session_id: str
    agent_version: str
    held: Mapping[str, str | None]
    at: datetime


@dataclass(frozen=True)
class SessionOpened:
    """An agent's session began on a replica (recorded CONNECTED unless a newer one was)."""

    agent_id: str
    session_id: str
    replica: str
    peer: str
    at: datetime


@dataclass(frozen=True)
class SessionClosed:
    """An agent's session ended (recorded DISCONNECTED if it still was the agent's current one)."""

    agent_id: str
    session_id: str


Report = ApplyReport | HealthReport | Heartbeat | Hello | SessionOpened | SessionClosed
#: Reports about sessions: never dropped when the recorder is full (there is one of each per
#: connect, and an agent restates them only when it connects again).
SESSION_RECORDS = (SessionOpened, SessionClosed, Hello)


@dataclass(frozen=True)
class DeploymentRecord:
    """What the broker last heard from one agent about one stack.

    `outcome` is that of the last ack or nack (None before the first): APPLIED with `applied` set,
    or with `applied` None when the agent said it holds something of the stack but cannot tell
    which version; FAILED with the nacked version in `failed` (None: a removal failed); REMOVED.
    """

    agent_id: str
    stack_id: str
    outcome: DeploymentState | None
    applied: DeploymentObjectRef | None
    failed: DeploymentObjectRef | None
    error_code: str
    error_message: str
    resources: tuple[ResourceOutcome, ...]
    health: HealthState | None
    health_resources: tuple[ResourceHealthReport, ...]
    updated_at: datetime


@dataclass(frozen=True)
class DeploymentStatus:
    """Per agent x stack: what the broker wants there, what it last heard, and how they compare.

    `desired` is the stack's newest deployment object while the stack reaches the agent, None when
    the agent should hold nothing of it.
    """

    agent_id: str
    stack_id: str
    desired: DeploymentObjectRef | None
    state: DeploymentState | None
    recorded: DeploymentRecord | None


def deployment_state(
    desired: DeploymentObjectRef | None, recorded: DeploymentRecord | None
) -> DeploymentState | None:
    """How what the agent last reported compares with what it should hold (`desired`).

    None when there is nothing to tell: the agent should hold nothing and never reported anything.
    """
    if recorded is None:
        return None if desired is None else DeploymentState.PENDING
    failed = recorded.failed if recorded.outcome is DeploymentState.FAILED else None
    if desired is not None:
        if recorded.applied is not None and recorded.applied.id == desired.id:
            return DeploymentState.APPLIED
        if failed is not None and failed.id == desired.id:
            return DeploymentState.FAILED
        return DeploymentState.PENDING
    if recorded.outcome is DeploymentState.FAILED and failed is None:
        return DeploymentState.FAILED  # the removal failed
    if recorded.outcome is DeploymentState.REMOVED:
        return DeploymentState.REMOVED
    return DeploymentState.PENDING  # the agent may still hold something of the stack: a removal is due
