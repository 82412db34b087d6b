"""Listing the members of a stack's ApplySet: the live objects that carry its part-of label.

The ApplySet convention makes "what does this stack have in the cluster" a handful of label-selected
lists, one per recorded group-kind and namespace, instead of a read per object. Pruning deletes
from that listing what the stack no longer holds, applying compares each object's dry run with it
to skip writes that would change nothing, and health reads the stack's objects from it.

Only kinds the cluster still serves are listed: a kind whose CRD was deleted has no objects left.
An agent confined to one namespace lists only there: cluster-scoped kinds and other namespaces
are skipped, whatever a (possibly older, cluster-wide) record says, so it never lists cluster-wide.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from agent.kube.client import KubeClient, Obj, gather_all
from agent.kube.discovery import Discovery
from agent.reconcile.errors import MISSING_KIND, ClusterError
from agent.reconcile.kinds import GroupKind


async def list_members(
    api: KubeClient,
    discovery: Discovery,
    where: Mapping[GroupKind, Collection[str]],
    label_selector: str,
    *,
    confined: str | None = None,
) -> list[Obj]:
    """Every object matching `label_selector` of each group-kind in `where`, in the namespaces
    `where` names for it (cluster-scoped kinds: once, cluster-wide). Items carry apiVersion and kind.
    With `confined`, only namespaced kinds, in that namespace."""
    await discovery.know(where)
    paths = []
    for group_kind in sorted(where):
        resource = discovery.cached(group_kind)
        if resource is None:
            continue
        if resource.namespaced:
            namespaces = sorted(n for n in where[group_kind] if n and confined in (None, n))
            paths += [resource.path(namespace) for namespace in namespaces]
        elif confined is None:
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
