"""A stack as the session protocol sees it: desired by the broker, held by the agent.

The broker hands a session `DesiredStack`s (one deployment object with its manifests); the agent
reports `HeldStack`s (a deployment object and content hashes, never manifests). The session
machines compare the two; `delta` says what differs.

A `DesiredStack` is built once per deployment object and shared by every session that sends it,
so its hash index is computed once and is read-only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType

from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import agent_session_pb2, deployment_object_pb2, stack_pb2
from brokkr_common.session.delta import Hashes
from brokkr_common.session.resource_key import ResourceKey, validate_content_hash

_MAX_ID_LENGTH = 64

#: The stack annotation that asks agents to take fields other field managers own (server-side
#: apply with force) instead of nacking the conflict. Only the exact value "true" asks.
FORCE_CONFLICTS_ANNOTATION = "brokkr.io/force-conflicts"


def asks_force_conflicts(annotations: Mapping[str, str]) -> bool:
    """Whether a stack with `annotations` asks for forced applies (`FORCE_CONFLICTS_ANNOTATION`)."""
    return annotations.get(FORCE_CONFLICTS_ANNOTATION) == "true"


@dataclass(frozen=True)
class DeploymentObjectRef:
    """One version of a stack: the deployment object's id, sequence number and checksum."""

    id: str
    sequence_id: int
    checksum: str
    is_deletion_marker: bool = False

    @classmethod
    def from_proto(cls, message: stack_pb2.DeploymentObjectRef, field: str) -> DeploymentObjectRef:
        """The validated ref in `message`; `field` is its path in the request, for the error."""
        validate_id(message.id, f"{field}.id")
        if message.sequence_id < 1:
            raise InvalidArgument.for_field(f"{field}.sequence_id", "must be at least 1")
        validate_content_hash(message.checksum, f"{field}.checksum")
        return cls(message.id, message.sequence_id, message.checksum, message.is_deletion_marker)

    def to_proto(self) -> stack_pb2.DeploymentObjectRef:
        return stack_pb2.DeploymentObjectRef(
            id=self.id,
            sequence_id=self.sequence_id,
            checksum=self.checksum,
            is_deletion_marker=self.is_deletion_marker,
        )


@dataclass(frozen=True)
class DesiredResource:
    """One object to apply: its key, its canonical JSON and that JSON's SHA-256."""

    key: ResourceKey
    content_hash: str
    manifest: str = field(repr=False)


@dataclass(frozen=True)
class DesiredStack:
    """What the broker wants an agent to hold of a stack: one deployment object's objects."""

    stack_id: str
    name: str
    deployment_object: DeploymentObjectRef
    resources: tuple[DesiredResource, ...]
    #: The stack asks the agent to force field-manager conflicts (`asks_force_conflicts`).
    force_conflicts: bool = False

    @cached_property
    def hashes(self) -> Hashes:
        """Content hash by key, computed once and shared by every session sending this version."""
        return MappingProxyType({resource.key: resource.content_hash for resource in self.resources})

    @cached_property
    def by_key(self) -> Mapping[ResourceKey, DesiredResource]:
        return MappingProxyType({resource.key: resource for resource in self.resources})


@dataclass(frozen=True)
class HeldStack:
    """What an agent holds of a stack: the deployment object it last applied completely (if any)
    and the content hash of every object it holds.

    Holding neither means "something, but the agent cannot tell what" (see `UNKNOWN`).
    """

    deployment_object: DeploymentObjectRef | None
    resources: Hashes

    @property
    def is_unknown(self) -> bool:
        return self.deployment_object is None and not self.resources

    def holds(self, desired: DesiredStack) -> bool:
        """Whether this is exactly `desired`: same deployment object, same objects."""
        return self.deployment_object == desired.deployment_object and (
            self.resources is desired.hashes or self.resources == desired.hashes
        )

    def to_proto(self, stack_id: str) -> agent_session_pb2.HeldStack:
        return agent_session_pb2.HeldStack(
            stack_id=stack_id,
            deployment_object=self.deployment_object.to_proto() if self.deployment_object else None,
            resources=[
                deployment_object_pb2.Resource(key=key.to_proto(), content_hash=digest)
                for key, digest in sorted(self.resources.items())
            ],
        )


#: A stack the agent holds something of, but cannot say what: the next update is a full state.
UNKNOWN = HeldStack(None, MappingProxyType({}))


def parse_held_stacks(messages: Iterable[agent_session_pb2.HeldStack], field: str) -> dict[str, HeldStack]:
    """The validated held stacks of a Hello by stack id; `field` is the list's path."""
    held: dict[str, HeldStack] = {}
    for index, message in enumerate(messages):
        path = f"{field}[{index}]"
        stack_id = validate_id(message.stack_id, f"{path}.stack_id")
        if stack_id in held:
            raise InvalidArgument.for_field(f"{path}.stack_id", f"stack {stack_id!r} is listed twice")
        ref = (
            DeploymentObjectRef.from_proto(message.deployment_object, f"{path}.deployment_object")
            if message.HasField("deployment_object")
            else None
        )
        held[stack_id] = HeldStack(ref, _parse_hashes(message.resources, f"{path}.resources"))
    return held


def _parse_hashes(messages: Iterable[deployment_object_pb2.Resource], field: str) -> Hashes:
    hashes: dict[ResourceKey, str] = {}
    for index, message in enumerate(messages):
        key = ResourceKey.from_proto(message.key, f"{field}[{index}].key")
        if key in hashes:
            raise InvalidArgument.for_field(f"{field}[{index}].key", f"{key} is listed twice")
        hashes[key] = validate_content_hash(message.content_hash, f"{field}[{index}].content_hash")
    return MappingProxyType(hashes)


def validate_id(value: str, field: str) -> str:
    """`value` if it can be a Brokkr id (stack, deployment object): 1 to 64 printable ASCII."""
    if not (0 < len(value) <= _MAX_ID_LENGTH and value.isascii() and value.isprintable()):
        raise InvalidArgument.for_field(field, "must be 1 to 64 printable ASCII characters")
    return value
