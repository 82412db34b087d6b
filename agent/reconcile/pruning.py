"""Choosing what to delete: the members of a stack's ApplySet that the stack no longer holds.

Pruning follows the ApplySet convention. The runtime lists every group-kind in the scope (per
namespace in the scope for namespaced kinds, once for cluster-scoped ones) with the scope's
label selector, and hands everything it found to `PruneScope.select`, which returns what to
delete, in deletion order. `select` trusts nothing about the listing and deletes an object only if

* it carries this ApplySet's part-of label: objects without it belong to someone else, whatever
  their name;
* its group-kind, and its namespace if it has one, are in the scope, i.e. the parent records them;
* the stack no longer holds it (compared without the version, which does not name an object);
* for a Namespace: Brokkr created it, and it is not one of the cluster's own namespaces.

An object listed twice (through two versions of its kind) is deleted once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from agent.reconcile.applyset import PART_OF_LABEL
from agent.reconcile.kinds import NAMESPACE, GroupKind, Identity, identity, key_of, labels_of
from agent.reconcile.ordering import uninstall_position
from brokkr_common.session.resource_key import ResourceKey

#: Namespaces Brokkr never deletes, whatever a (possibly tampered) record says.
PROTECTED_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease"})


@dataclass(frozen=True)
class PruneScope:
    """Where to look for objects to prune, and which of those found to keep."""

    applyset_id: str
    group_kinds: frozenset[GroupKind]
    namespaces: frozenset[str]
    keep: frozenset[Identity]
    deletable_namespaces: frozenset[str]

    @property
    def label_selector(self) -> str:
        """The selector to list members with."""
        return f"{PART_OF_LABEL}={self.applyset_id}"

    def select(self, found: Iterable[Mapping[str, Any]]) -> tuple[ResourceKey, ...]:
        """The keys of the objects in `found` to delete, in deletion order."""
        chosen: dict[Identity, ResourceKey] = {}
        for obj in found:
            key = key_of(obj)
            if key is not None and self._prunable(key, obj):
                chosen.setdefault(identity(key), key)
        return tuple(
            sorted(chosen.values(), key=lambda key: uninstall_position(key, namespaced=bool(key.namespace)))
        )

    def _prunable(self, key: ResourceKey, obj: Mapping[str, Any]) -> bool:
        group_kind = GroupKind.of(key)
        if labels_of(obj).get(PART_OF_LABEL) != self.applyset_id or group_kind not in self.group_kinds:
            return False
        if identity(key) in self.keep or (key.namespace and key.namespace not in self.namespaces):
            return False
        if group_kind == NAMESPACE:
            return key.name in self.deletable_namespaces and key.name not in PROTECTED_NAMESPACES
        return True
