"""The things users see, as plain immutable data.

Services return these; the API edge converts them to protobuf, the database layer maps rows onto
them. Times are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class Role(enum.StrEnum):
    ADMIN = "admin"
    GENERATOR = "generator"
    AGENT = "agent"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the admin, one generator or one agent. `id` is None for the admin."""

    role: Role
    id: str | None
    name: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


ADMIN = Principal(Role.ADMIN, None, "admin")


class AgentStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    INACTIVE = "INACTIVE"


class ConnectionState(enum.StrEnum):
    NEVER_CONNECTED = "NEVER_CONNECTED"
    CONNECTED = "CONNECTED"
    DISCONNECTED = "DISCONNECTED"


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    cluster_name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    status: AgentStatus
    connection_state: ConnectionState
    last_heartbeat_at: datetime | None
    kubernetes_reachable: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class Generator:
    id: str
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class DeploymentObjectRef:
    id: str
    sequence_id: int
    checksum: str
    is_deletion_marker: bool


@dataclass(frozen=True)
class Stack:
    id: str
    name: str
    description: str
    generator_id: str | None
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None
    desired: DeploymentObjectRef | None = None


@dataclass(frozen=True, order=True)
class ResourceKey:
    """group/version/kind/namespace/name of one Kubernetes object; group is "" for core."""

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        group = self.group or "core"
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{group}/{self.version}/{self.kind}/{where}{self.name}"


@dataclass(frozen=True)
class Resource:
    """One parsed object of a deployment object: its key, canonical JSON and that JSON's SHA-256."""

    key: ResourceKey
    content_hash: str
    manifest_json: str = field(repr=False)


@dataclass(frozen=True)
class Provenance:
    template_id: str
    template_version: int
    parameters: Mapping[str, Any]


@dataclass(frozen=True)
class DeploymentObject:
    id: str
    stack_id: str
    sequence_id: int
    yaml_content: str
    checksum: str
    is_deletion_marker: bool
    created_at: datetime
    resources: tuple[Resource, ...] = ()
    provenance: Provenance | None = None

    @property
    def ref(self) -> DeploymentObjectRef:
        return DeploymentObjectRef(self.id, self.sequence_id, self.checksum, self.is_deletion_marker)


@dataclass(frozen=True)
class Target:
    agent_id: str
    stack_id: str
    created_at: datetime


@dataclass(frozen=True)
class Registration:
    agent_id: str
    generator_id: str
    created_at: datetime


@dataclass(frozen=True)
class TargetMatch:
    """Why a stack reaches an agent. At least one of the three reasons holds."""

    agent_id: str
    stack_id: str
    explicit: bool
    shared_labels: tuple[str, ...] = ()
    shared_annotations: tuple[str, ...] = ()


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: the items and an opaque token for the next page ("" on the last)."""

    items: tuple[T, ...]
    next_page_token: str = ""


@dataclass(frozen=True)
class CreatedWithKey(Generic[T]):
    """A created agent or generator and its key, shown once (None on an idempotent repeat)."""

    resource: T
    key: str | None
