"""Planning one change of a stack on a cluster: what to apply in which order, what to prune, and
what to record. Pure: the runtime (`agent.kube`) reads the cluster, plans, and carries it out.

Applying a `StackUpdate` (`plan_apply`):

1. Apply `parent_before` (server-side apply, force). It records the union of the kinds and
   namespaces held before and after, and no deployment object, so an apply interrupted at any
   point leaks nothing and reads as "unknown" after a restart (the broker then sends a full state).
2. Dry-run every step of `dry_run` on the server. A permanent failure nacks the update with the
   object named before anything changed. Objects that cannot be dry-run yet are left out: those
   in namespaces and of kinds that this very plan creates.
3. Apply the waves in order; after each, wait until the CRDs in its `establish` are Established.
4. Prune: list `prune.group_kinds` in `prune.namespaces` with `prune.label_selector`, delete
   `prune.select(found)` in that order.
5. Apply `parent_after`, which records the deployment object and every object's content hash,
   then ack.

Removing a stack (`plan_removal`) is the same with nothing desired: record "unknown", prune
everything the record names, delete the parent.

What the planner adds to each manifest is the ApplySet member label and nothing else. Server-side
apply makes the agent's field manager own whatever it sends, so every added field is one more
thing it owns and fights over; the content hashes live in the parent, not on the objects.

An agent confined to one namespace (`ClusterFacts.scope`, for namespaced RBAC) plans only
objects in that namespace: a namespaced object without a namespace is placed in it (the key the
broker sent still names it in the record and the ack, so a restart's Hello matches what the broker
sent); an object in another namespace, and every cluster-scoped object (Namespaces, CRDs,
ClusterRoles ...), is refused with OUTSIDE_NAMESPACE_SCOPE naming it, before anything is written.

A Namespace is created by Brokkr only if it is an object of the stack; an object in a namespace
that neither exists nor is in the stack fails its dry run with MISSING_NAMESPACE, naming it. A
namespace counts as created by Brokkr only if it did not exist when the stack first applied it,
and only those are ever pruned, and never while the stack still holds objects in them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agent.reconcile.applyset import (
    DEFAULT_PARENT_NAMESPACE,
    PARENT,
    PARENT_NAME_PREFIX,
    PART_OF_LABEL,
    RecordedState,
    foreign_tooling,
    member_labels,
    parent_manifest,
    parse_parent,
)
from agent.reconcile.errors import INVALID_MANIFEST, MISSING_KIND, OUTSIDE_NAMESPACE_SCOPE, PermanentError
from agent.reconcile.kinds import (
    CRD,
    NAMESPACE,
    DefinedKind,
    Discovery,
    GroupKind,
    KindScopes,
    defined_kind,
    identity,
    key_of,
)
from agent.reconcile.ordering import Wave, install_position, wave_of
from agent.reconcile.pruning import PROTECTED_NAMESPACES, PruneScope
from brokkr_common.session.agent_session import Apply
from brokkr_common.session.delta import Delta, apply_delta
from brokkr_common.session.reports import ResourceError
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DesiredResource, HeldStack


@dataclass(frozen=True)
class ClusterFacts:
    """What the runtime read from the cluster just before planning."""

    #: Whether a kind is namespaced, from discovery; None for kinds the cluster does not serve.
    discovery: Discovery
    #: The namespaces that exist (at least all those the stack's objects name).
    namespaces: frozenset[str]
    #: Where the agent keeps the stacks' ApplySet parents.
    parent_namespace: str = DEFAULT_PARENT_NAMESPACE
    #: The one namespace the agent may touch (namespaced RBAC); None: the whole cluster.
    scope: str | None = None


@dataclass(frozen=True)
class Step:
    """Apply one object: `manifest` is what to send, the stack's object plus the member label."""

    key: ResourceKey
    content_hash: str
    manifest: dict[str, Any]


@dataclass(frozen=True)
class ApplyWave:
    """Objects to apply in order, then the names of the CRDs to wait for until Established."""

    wave: Wave
    steps: tuple[Step, ...]
    establish: tuple[str, ...] = ()


@dataclass(frozen=True)
class ApplyPlan:
    """How to bring a stack to a new deployment object; see the module docstring for the steps."""

    parent_before: dict[str, Any]
    dry_run: tuple[Step, ...]
    waves: tuple[ApplyWave, ...]
    prune: PruneScope
    parent_after: dict[str, Any]
    #: The key the broker sent for each object the plan placed in the agent's namespace, by the
    #: key it is applied under; results are reported under the broker's key.
    placed: Mapping[ResourceKey, ResourceKey] = field(default_factory=dict)


@dataclass(frozen=True)
class RemovalPlan:
    """How to remove a stack: record "unknown", prune, delete the parent (if it is Brokkr's)."""

    parent_before: dict[str, Any] | None
    prune: PruneScope
    parent_name: str
    parent_namespace: str
    delete_parent: bool


def plan_apply(
    update: Apply, held: HeldStack, parent: Mapping[str, Any] | None, cluster: ClusterFacts
) -> ApplyPlan:
    """Plan `update` (from the session) on a cluster where the agent holds `held` of the stack
    (the session's view, which the update's delta is relative to) and `parent` is the stack's
    live ApplySet parent (None if there is none). PermanentError, before anything is changed, for
    manifests that cannot be applied: not matching their key, of kinds the cluster does not serve,
    namespaced without a namespace, outside the agent's namespace scope, or claiming another
    ApplySet."""
    _refuse_foreign(update.stack_id, parent, cluster.parent_namespace)
    before = _recorded(update.stack_id, parent, cluster.parent_namespace)
    objects = _labelled_manifests(update.apply, before)
    crds = _defined_kinds(objects)
    scopes = KindScopes(cluster.discovery, crds.values())
    namespaced = _scopes(objects, scopes, cluster.scope)
    placement = {key: place(key, scopes, cluster.scope) for key in objects}
    objects, namespaced = _placed(objects, placement, cluster), _rekeyed(namespaced, placement)
    delta = Delta(tuple((r.key, r.content_hash) for r in update.apply), tuple(update.remove))
    # The record keeps the broker's keys (a restart's Hello must match them); the cluster, the
    # placed ones.
    hashes = apply_delta({} if update.full_state else held.resources, delta)
    in_cluster = [place(key, scopes, cluster.scope) for key in hashes]
    creating = _namespace_names(objects) - cluster.namespaces
    after = RecordedState(
        update.stack_id,
        before.parent_namespace,
        update.deployment_object,
        hashes,
        group_kinds=frozenset(GroupKind.of(key) for key in hashes),
        namespaces=frozenset(key.namespace for key in in_cluster if key.namespace),
        created_namespaces=(before.created_namespaces | creating) & _namespace_names(hashes),
        stack_name=update.stack_name,
    )
    superset = _superset(before, after, update.remove, before.created_namespaces | creating)
    steps = sorted(
        (Step(placement[r.key], r.content_hash, objects[placement[r.key]]) for r in update.apply),
        key=lambda step: install_position(step.key, namespaced=namespaced[step.key]),
    )
    pending = {key for key in objects if key.namespace in creating or GroupKind.of(key) in crds}
    # Without a known holding, a delta says nothing about the objects it leaves out: keep them all.
    knows_held = update.full_state or not held.is_unknown
    return ApplyPlan(
        parent_before=parent_manifest(superset),
        dry_run=tuple(step for step in steps if step.key not in pending),
        waves=_waves(steps, namespaced, crds),
        prune=_prune_scope(superset, keep=in_cluster) if knows_held else _prune_nothing(superset),
        parent_after=parent_manifest(after),
        placed=_as_sent(placement, (*held.resources, *update.remove), scopes, cluster.scope),
    )


def _as_sent(
    placement: Mapping[ResourceKey, ResourceKey],
    others: Iterable[ResourceKey],
    scopes: KindScopes,
    scope: str | None,
) -> dict[ResourceKey, ResourceKey]:
    """The key as sent of every object placed in the agent's namespace (those to apply, and those
    held or to remove, which pruning may report), by the key it has in the cluster."""
    sent = {place(key, scopes, scope): key for key in others}
    sent |= {placed: key for key, placed in placement.items()}
    return {placed: key for placed, key in sent.items() if placed != key}


def place(key: ResourceKey, scopes: KindScopes, scope: str | None) -> ResourceKey:
    """Where the object `key` is in the cluster: in the agent's namespace `scope` if its kind is
    namespaced and the key names no namespace; else where the key says."""
    if scope is None or key.namespace or not scopes.namespaced(GroupKind.of(key)):
        return key
    return key._replace(namespace=scope)


def plan_removal(
    stack_id: str,
    held: HeldStack,
    parent: Mapping[str, Any] | None,
    *,
    parent_namespace: str = DEFAULT_PARENT_NAMESPACE,
) -> RemovalPlan:
    """Plan removing the stack `stack_id`: prune every member the parent records (and every kind
    and namespace of the objects the session says it holds), then delete the parent. A parent of
    another tool is left alone, and so are its members, which carry the same ApplySet id."""
    foreign = parent is not None and foreign_tooling(parent) is not None
    recorded = _recorded(stack_id, None if foreign else parent, parent_namespace)
    superset = _superset(recorded, recorded, held.resources.keys(), recorded.created_namespaces)
    exists = parent is not None and not foreign
    return RemovalPlan(
        parent_before=parent_manifest(superset) if exists else None,
        prune=_prune_nothing(superset) if foreign else _prune_scope(superset, keep=()),
        parent_name=superset.parent_name,
        parent_namespace=parent_namespace,
        delete_parent=exists,
    )


# -- reading the update --------------------------------------------------------------------------


def _refuse_foreign(stack_id: str, parent: Mapping[str, Any] | None, parent_namespace: str) -> None:
    """PermanentError if `parent` is the ApplySet parent of another tool."""
    if parent is not None and (tooling := foreign_tooling(parent)) is not None:
        raise PermanentError(
            f"{parent_namespace}/{PARENT_NAME_PREFIX}{stack_id} is an ApplySet parent of {tooling!r}, "
            "which Brokkr leaves alone",
            reason="PARENT_CONFLICT",
        )


def _recorded(stack_id: str, parent: Mapping[str, Any] | None, parent_namespace: str) -> RecordedState:
    """What the live parent records; an empty record if there is none or it is damaged."""
    recorded = parse_parent(parent) if parent is not None else None
    if recorded is None or recorded.stack_id != stack_id or recorded.parent_namespace != parent_namespace:
        return RecordedState(stack_id, parent_namespace)
    return recorded


def _labelled_manifests(
    resources: Sequence[DesiredResource], recorded: RecordedState
) -> dict[ResourceKey, dict[str, Any]]:
    """Each object's manifest with the member label; PermanentError naming every bad one."""
    manifests: dict[ResourceKey, dict[str, Any]] = {}
    problems: list[ResourceError] = []
    for resource in resources:
        manifest, problem = _labelled(resource, recorded)
        if problem:
            problems.append(ResourceError(resource.key, INVALID_MANIFEST, problem))
        else:
            manifests[resource.key] = manifest
    if problems:
        raise PermanentError.for_objects(problems)
    return manifests


def _labelled(resource: DesiredResource, recorded: RecordedState) -> tuple[dict[str, Any], str]:
    """The manifest with the member label, or what is wrong with it."""
    try:
        manifest = json.loads(resource.manifest)
    except ValueError:
        return {}, "the manifest is not JSON"
    if not isinstance(manifest, dict):
        return {}, "the manifest is not a JSON object"
    actual = key_of(manifest)
    if actual != resource.key:
        return {}, f"the manifest is {actual or 'not a Kubernetes object'}, not the object its key names"
    if _is_reserved(resource.key, recorded.parent_namespace):
        return {}, f"Secrets named {PARENT_NAME_PREFIX}* in this namespace are Brokkr's records"
    metadata = manifest["metadata"]
    labels = metadata.get("labels") or {}
    if not isinstance(labels, dict):
        return {}, "metadata.labels is not a map"
    if labels.get(PART_OF_LABEL, recorded.applyset_id) != recorded.applyset_id:
        return {}, f"label {PART_OF_LABEL} is set by Brokkr and must not be in the manifest"
    labelled = {**labels, **member_labels(recorded.applyset_id)}
    return {**manifest, "metadata": {**metadata, "labels": labelled}}, ""


def _is_reserved(key: ResourceKey, parent_namespace: str) -> bool:
    """Whether `key` could name the parent of a stack, which no stack may overwrite."""
    in_parent_namespace = GroupKind.of(key) == PARENT and key.namespace == parent_namespace
    return in_parent_namespace and key.name.startswith(PARENT_NAME_PREFIX)


def _defined_kinds(objects: Mapping[ResourceKey, Mapping[str, Any]]) -> dict[GroupKind, DefinedKind]:
    """The kinds the CRDs among `objects` define."""
    kinds = (defined_kind(manifest) for key, manifest in objects.items() if GroupKind.of(key) == CRD)
    return {kind.group_kind: kind for kind in kinds if kind is not None}


def _scopes(
    objects: Mapping[ResourceKey, Any], scopes: KindScopes, confined: str | None = None
) -> dict[ResourceKey, bool]:
    """Whether each object's kind is namespaced; PermanentError naming every object whose kind is
    unknown, whose namespace does not fit its kind, or that is outside the namespace the agent is
    `confined` to (None: the whole cluster)."""
    namespaced: dict[ResourceKey, bool] = {}
    problems: list[ResourceError] = []
    for key in sorted(objects):
        group_kind = GroupKind.of(key)
        scope = scopes.namespaced(group_kind)
        if scope is None:
            message = f"the cluster does not serve {group_kind}, and no CRD in the stack defines it"
            problems.append(ResourceError(key, MISSING_KIND, message))
        elif confined is not None and (outside := _outside(key, group_kind, scope, confined)):
            problems.append(ResourceError(key, OUTSIDE_NAMESPACE_SCOPE, outside))
        elif scope and not key.namespace and confined is None:
            problems.append(
                ResourceError(
                    key, "NAMESPACE_REQUIRED", f"{group_kind} is namespaced: set metadata.namespace"
                )
            )
        elif not scope and key.namespace:
            message = f"{group_kind} is cluster-scoped: metadata.namespace must be empty"
            problems.append(ResourceError(key, INVALID_MANIFEST, message))
        else:
            namespaced[key] = scope
    if problems:
        raise PermanentError.for_objects(problems)
    return namespaced


def _outside(key: ResourceKey, group_kind: GroupKind, namespaced: bool, confined: str) -> str:
    """Why the agent confined to namespace `confined` may not apply `key`; "" if it may."""
    if not namespaced:
        return (
            f"{group_kind} is cluster-scoped, and this agent is confined to namespace {confined!r}"
            " (kubernetes.namespace): apply it with a cluster-wide agent"
        )
    if key.namespace and key.namespace != confined:
        return f"namespace {key.namespace!r} is outside this agent's namespace {confined!r}"
    return ""


def _placed(
    objects: Mapping[ResourceKey, dict[str, Any]],
    placement: Mapping[ResourceKey, ResourceKey],
    cluster: ClusterFacts,
) -> dict[ResourceKey, dict[str, Any]]:
    """`objects` by placed key, each manifest naming its namespace; PermanentError for an object
    placed where it would overwrite a stack's record."""
    placed: dict[ResourceKey, dict[str, Any]] = {}
    problems: list[ResourceError] = []
    for key, manifest in objects.items():
        where = placement[key]
        if where != key and _is_reserved(where, cluster.parent_namespace):
            message = f"Secrets named {PARENT_NAME_PREFIX}* in this namespace are Brokkr's records"
            problems.append(ResourceError(key, INVALID_MANIFEST, message))
        elif where in placed or (where != key and where in objects):
            message = f"is the same object as {where} once placed in namespace {where.namespace!r}"
            problems.append(ResourceError(key, INVALID_MANIFEST, message))
        elif where != key:
            placed[where] = {**manifest, "metadata": {**manifest["metadata"], "namespace": where.namespace}}
        else:
            placed[key] = manifest
    if problems:
        raise PermanentError.for_objects(problems)
    return placed


def _rekeyed(
    by_key: Mapping[ResourceKey, bool], placement: Mapping[ResourceKey, ResourceKey]
) -> dict[ResourceKey, bool]:
    return {placement[key]: value for key, value in by_key.items()}


# -- building the plan ---------------------------------------------------------------------------


def _superset(
    before: RecordedState, after: RecordedState, removed: Iterable[ResourceKey], created: frozenset[str]
) -> RecordedState:
    """The record while a change is under way: no deployment object, and every kind and namespace
    that holds or may still hold a member, so an interrupted change leaks nothing."""
    removed = tuple(removed)
    return RecordedState(
        before.stack_id,
        before.parent_namespace,
        group_kinds=before.group_kinds | after.group_kinds | {GroupKind.of(key) for key in removed},
        namespaces=before.namespaces | after.namespaces | {key.namespace for key in removed if key.namespace},
        created_namespaces=created,
        stack_name=after.stack_name or before.stack_name,
    )


def _waves(
    steps: Sequence[Step], namespaced: Mapping[ResourceKey, bool], crds: Mapping[GroupKind, DefinedKind]
) -> tuple[ApplyWave, ...]:
    """`steps` (in apply order) cut into waves; the first waits for the CRDs later waves use."""
    by_wave: dict[Wave, list[Step]] = {}
    for step in steps:
        by_wave.setdefault(wave_of(step.key, namespaced=namespaced[step.key]), []).append(step)
    used_later = {
        GroupKind.of(step.key)
        for wave, found in by_wave.items()
        if wave != Wave.DEFINITIONS
        for step in found
    }
    establish = tuple(sorted(crds[kind].crd_name for kind in used_later if kind in crds))
    return tuple(
        ApplyWave(wave, tuple(found), establish if wave == Wave.DEFINITIONS else ())
        for wave, found in sorted(by_wave.items())
    )


def _prune_scope(superset: RecordedState, *, keep: Iterable[ResourceKey]) -> PruneScope:
    """Prune the members in `superset`'s kinds and namespaces that are not in `keep`."""
    keep = tuple(keep)
    in_use = _namespace_names(keep) | {key.namespace for key in keep} | {superset.parent_namespace}
    return PruneScope(
        applyset_id=superset.applyset_id,
        group_kinds=superset.group_kinds,
        namespaces=superset.namespaces,
        keep=frozenset(identity(key) for key in keep),
        deletable_namespaces=superset.created_namespaces - in_use - PROTECTED_NAMESPACES,
    )


def _namespace_names(keys: Iterable[ResourceKey]) -> frozenset[str]:
    """The names of the Namespaces among `keys`."""
    return frozenset(key.name for key in keys if GroupKind.of(key) == NAMESPACE)


def _prune_nothing(superset: RecordedState) -> PruneScope:
    """A scope that lists nothing: the session does not know what the stack should hold."""
    return PruneScope(superset.applyset_id, frozenset(), frozenset(), frozenset(), frozenset())
