"""Pruning: deleting the members of a stack's ApplySet that the stack no longer holds.

Which members to delete, and in which order, is `agent.reconcile.pruning.PruneScope.select`'s
decision, made on the label-selected listing of the recorded kinds (`members`); this module
carries it out. Deletion is in the background (dependents such as a Deployment's ReplicaSets go
with their owner, through the garbage collector), and an object that is already gone counts as
pruned: someone got there first, and the stack's state is what was asked for.
"""

from __future__ import annotations

from collections.abc import Sequence

from agent.kube.client import KubeClient
from agent.kube.discovery import Discovery
from agent.kube.objects import each_object, failed
from agent.reconcile.kinds import GroupKind
from brokkr_common.session.reports import ResourceOutcome, ResourceResult
from brokkr_common.session.resource_key import ResourceKey


async def prune(
    api: KubeClient, discovery: Discovery, keys: Sequence[ResourceKey]
) -> tuple[ResourceResult, ...]:
    """Delete the objects `keys`, in order, kind by kind; a ClusterError naming those that failed."""

    async def delete(key: ResourceKey) -> None:
        resource = await discovery.find(GroupKind.of(key))
        if resource is not None:  # else its kind, and so the object, is gone
            await api.delete(resource.object_path(key))

    _, failures = await each_object(keys, delete)
    if failures:
        raise failed(failures)
    return tuple(ResourceResult(key, ResourceOutcome.PRUNED) for key in keys)
