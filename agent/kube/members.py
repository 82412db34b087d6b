"""Listing the members of a stack's ApplySet: the live objects that carry its part-of label.

The ApplySet convention makes "what does this stack have in the cluster" a handful of label-selected
lists, one per recorded group-kind and namespace, instead of a read per object. Pruning deletes
from that listing what the stack no longer holds, applying compares each object's dry run with it
to skip writes that would change nothing, and health reads the stack's objects from it.

Only kinds the cluster still serves are listed: a kind whose CRD was deleted has no objects left.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agent.kube.client import KubeClient, Obj, gather_all
from agent.kube.discovery import Discovery
from agent.reconcile.errors import MISSING_KIND, ClusterError
from agent.reconcile.kinds import GroupKind


async def list_members(
    api: KubeClient, discovery: Discovery, where: Mapping[GroupKind, Collection[str]], label_selector: str
) -> list[Obj]:
    """Every object matching `label_selector` of each group-kind in `where`, in the namespaces
    `where` names for it (cluster-scoped kinds: once, cluster-wide). Items carry apiVersion and kind."""
    await discovery.know(where)
    paths = []
    for group_kind in sorted(where):
        resource = discovery.cached(group_kind)
        if resource is None:
            continue
        if resource.namespaced:
            paths += [resource.path(namespace) for namespace in sorted(where[group_kind]) if namespace]
        else:
            paths.append(resource.path())
    found = await gather_all(*(_list(api, path, label_selector) for path in paths))
    return [obj for objects in found for obj in objects]


async def _list(api: KubeClient, path: str, label_selector: str) -> list[Obj]:
    try:
        return await api.list(path, label_selector=label_selector)
    except ClusterError as error:
        if error.reason == MISSING_KIND:  # the kind went away since discovery: nothing left of it
            return []
        raise
