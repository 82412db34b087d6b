"""What an agent reports about the objects it applies: apply outcomes, failures and health.

Plain immutable data, so the broker's services can record reports without knowing protobuf and
the agent's runtime can produce them without knowing the wire. The conversions validate resource
keys, because reports are written to the database per object.

Enum values a newer peer may add are read as the "don't know" value (`UNSPECIFIED` outcome,
`UNKNOWN` health) instead of failing the stream: an old broker keeps working with a new agent.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, validate_id

M = TypeVar("M")
T = TypeVar("T")


class ResourceOutcome(enum.StrEnum):
    """What an apply did to one object."""

    UNSPECIFIED = "UNSPECIFIED"
    CREATED = "CREATED"
    CONFIGURED = "CONFIGURED"
    UNCHANGED = "UNCHANGED"
    PRUNED = "PRUNED"


class Health(enum.StrEnum):
    """Health of an object or a stack, in the Argo CD / OCM vocabulary."""

    HEALTHY = "HEALTHY"
    PROGRESSING = "PROGRESSING"
    DEGRADED = "DEGRADED"
    FAILING = "FAILING"
    UNKNOWN = "UNKNOWN"


_OUTCOMES = {outcome: pb.ResourceOutcome.Value(f"RESOURCE_OUTCOME_{outcome}") for outcome in ResourceOutcome}
_OUTCOMES_BY_NUMBER = {number: outcome for outcome, number in _OUTCOMES.items()}
_HEALTHS = {health: pb.HealthStatus.Value(f"HEALTH_STATUS_{health}") for health in Health}
_HEALTHS_BY_NUMBER = {number: health for health, number in _HEALTHS.items()}


@dataclass(frozen=True)
class ResourceResult:
    """What an apply did to one object, with optional detail."""

    key: ResourceKey
    outcome: ResourceOutcome
    message: str = ""

    @classmethod
    def from_proto(cls, message: pb.ResourceResult, field: str) -> ResourceResult:
        return cls(
            ResourceKey.from_proto(message.key, f"{field}.key"),
            _OUTCOMES_BY_NUMBER.get(message.outcome, ResourceOutcome.UNSPECIFIED),
            message.message,
        )

    def to_proto(self) -> pb.ResourceResult:
        return pb.ResourceResult(
            key=self.key.to_proto(), outcome=_OUTCOMES[self.outcome], message=self.message
        )


@dataclass(frozen=True)
class ResourceError:
    """Why one object could not be applied or pruned; `temporary` if the agent gave up retrying."""

    key: ResourceKey
    reason: str
    message: str
    temporary: bool = False

    @classmethod
    def from_proto(cls, message: pb.ResourceError, field: str) -> ResourceError:
        key = ResourceKey.from_proto(message.key, f"{field}.key")
        return cls(key, message.reason, message.message, message.temporary)

    def to_proto(self) -> pb.ResourceError:
        return pb.ResourceError(
            key=self.key.to_proto(), reason=self.reason, message=self.message, temporary=self.temporary
        )


@dataclass(frozen=True)
class ResourceHealth:
    """The health of one object, with a Kubernetes-style reason such as "CrashLoopBackOff"."""

    key: ResourceKey
    health: Health
    reason: str = ""
    message: str = ""

    @classmethod
    def from_proto(cls, message: pb.ResourceHealth, field: str) -> ResourceHealth:
        key = ResourceKey.from_proto(message.key, f"{field}.key")
        return cls(key, _health(message.health), message.reason, message.message)

    def to_proto(self) -> pb.ResourceHealth:
        return pb.ResourceHealth(
            key=self.key.to_proto(), health=_HEALTHS[self.health], reason=self.reason, message=self.message
        )


@dataclass(frozen=True)
class StackHealth:
    """The health of one stack on the agent's cluster: the worst of its objects'."""

    stack_id: str
    deployment_object: DeploymentObjectRef | None
    health: Health
    resources: tuple[ResourceHealth, ...] = ()

    @classmethod
    def from_proto(cls, message: pb.StackHealth, field: str) -> StackHealth:
        return cls(
            validate_id(message.stack_id, f"{field}.stack_id"),
            DeploymentObjectRef.from_proto(message.deployment_object, f"{field}.deployment_object")
            if message.HasField("deployment_object")
            else None,
            _health(message.health),
            parse_all(ResourceHealth.from_proto, message.resources, f"{field}.resources"),
        )

    def to_proto(self) -> pb.StackHealth:
        return pb.StackHealth(
            stack_id=self.stack_id,
            deployment_object=self.deployment_object.to_proto() if self.deployment_object else None,
            health=_HEALTHS[self.health],
            resources=[resource.to_proto() for resource in self.resources],
        )


def _health(number: int) -> Health:
    return _HEALTHS_BY_NUMBER.get(number, Health.UNKNOWN)


def parse_all(parse: Callable[[M, str], T], messages: Iterable[M], field: str) -> tuple[T, ...]:
    """`parse` applied to each of `messages`, with the index in each error's field path."""
    return tuple(parse(message, f"{field}[{index}]") for index, message in enumerate(messages))
