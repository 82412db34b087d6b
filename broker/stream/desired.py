"""Deployment objects as the session protocol's `DesiredStack`, built once per version.

A push of one new version to 10,000 agents must not build 10,000 copies of it, nor read it from the
database 10,000 times: deployment objects are immutable, so this cache hands every session the same
`DesiredStack` (whose hashes are computed once, so the protocol's update encoder can also serialize
the update once; DESIGN.md, "Facts measured"). The hub asks which versions it lacks (`missing`),
loads just those, and `add`s them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from datetime import datetime

from broker.domain.model import DeploymentObject, Stack
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import (
    DeploymentObjectRef,
    DesiredResource,
    DesiredStack,
    asks_force_conflicts,
)


class DesiredStacks:
    """A bounded cache of `DesiredStack` by deployment object id."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[str, DesiredStack] = OrderedDict()
        self._created_at: dict[str, datetime] = {}

    @property
    def created_at(self) -> Mapping[str, datetime]:
        """When each cached deployment object was committed (for the commit-to-ack histogram)."""
        return self._created_at

    def missing(self, stacks: Iterable[Stack]) -> list[str]:
        """The ids of the stacks' newest deployment objects that must be loaded before `get`."""
        return [
            stack.desired.id
            for stack in stacks
            if stack.desired is not None
            and not stack.desired.is_deletion_marker
            and self._cached(stack) is None
        ]

    def get(self, stack: Stack) -> DesiredStack | None:
        """What an agent should hold of `stack`: None when it has no version or its newest one is a
        deletion marker. KeyError when that version is neither cached nor a deletion marker."""
        if stack.desired is None or stack.desired.is_deletion_marker:
            return None
        cached = self._cached(stack)
        if cached is None:
            raise KeyError(stack.desired.id)
        self._cache.move_to_end(stack.desired.id)
        return cached

    def add(self, stack: Stack, deployment_object: DeploymentObject) -> None:
        """Remember `deployment_object`, the version `stack` (as named now) refers to."""
        if deployment_object.is_deletion_marker:
            return
        self._cache[deployment_object.id] = DesiredStack(
            stack_id=stack.id,
            name=stack.name,
            deployment_object=DeploymentObjectRef(
                id=deployment_object.id,
                sequence_id=deployment_object.sequence_id,
                checksum=deployment_object.checksum,
            ),
            resources=tuple(
                DesiredResource(
                    key=ResourceKey(r.key.group, r.key.version, r.key.kind, r.key.namespace, r.key.name),
                    content_hash=r.content_hash,
                    manifest=r.manifest_json,
                )
                for r in deployment_object.resources
            ),
            force_conflicts=asks_force_conflicts(stack.annotations),
        )
        self._created_at[deployment_object.id] = deployment_object.created_at
        while len(self._cache) > self._capacity:
            evicted, _ = self._cache.popitem(last=False)
            self._created_at.pop(evicted, None)

    def _cached(self, stack: Stack) -> DesiredStack | None:
        assert stack.desired is not None
        cached = self._cache.get(stack.desired.id)
        # A stack renamed, or asking for force differently, keeps its versions; both travel in
        # every update, so rebuild.
        if cached is None or cached.name != stack.name:
            return None
        return cached if cached.force_conflicts == asks_force_conflicts(stack.annotations) else None
