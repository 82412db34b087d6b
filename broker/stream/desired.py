"""Deployment objects as the session protocol's `DesiredStack`, built once per version.

A push of one new version to 10,000 agents must not build 10,000 copies of it: the cache hands
every session the same immutable `DesiredStack`, whose hashes are computed once, so the protocol's
update encoder can also serialize the update once (DESIGN.md, "Facts measured").
"""

from __future__ import annotations

from collections import OrderedDict

from broker.domain.model import DeploymentObject, Stack
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, DesiredResource, DesiredStack


class DesiredStacks:
    """A bounded cache of `DesiredStack` by deployment object id (deployment objects are immutable)."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._cache: OrderedDict[str, DesiredStack] = OrderedDict()

    def of(self, stack: Stack, deployment_object: DeploymentObject) -> DesiredStack | None:
        """What an agent should hold of `stack`; None when the version is a deletion marker."""
        if deployment_object.is_deletion_marker:
            return None
        cached = self._cache.get(deployment_object.id)
        if cached is not None and cached.name == stack.name:
            self._cache.move_to_end(deployment_object.id)
            return cached
        desired = DesiredStack(
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
        )
        self._cache[deployment_object.id] = desired
        if len(self._cache) > self._capacity:
            self._cache.popitem(last=False)
        return desired
