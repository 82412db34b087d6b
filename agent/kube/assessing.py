"""Reading a stack's objects back from the cluster to tell how well they work.

The rules are `agent.health`'s, which needs each object as the cluster has it and, for a workload
that is not healthy, the workload's pods, since that is where CrashLoopBackOff or OOMKilled shows.
This module fetches those cheaply: the stack's objects come from label-selected lists of its
ApplySet members (one request per kind and namespace, not one per object); an object missing
from them is read on its own (it may have lost its label), and is FAILING `Missing` if it does
not exist. Pods are listed, with the workload's own selector, only for workloads that are not
healthy. An object that cannot be read is UNKNOWN, with the reason it could not be.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from agent.health import aggregate, assess
from agent.kube.client import KubeClient, Obj, gather_all
from agent.kube.discovery import Discovery, Resource
from agent.kube.members import list_members
from agent.reconcile.applyset import PART_OF_LABEL
from agent.reconcile.errors import MISSING_KIND, OUTSIDE_NAMESPACE_SCOPE, ClusterError
from agent.reconcile.kinds import GroupKind, Identity, identity, key_of
from brokkr_common.session.reports import Health, ResourceHealth, StackHealth
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef

PODS = Resource("", "v1", "Pod", "pods", namespaced=True)

#: Kinds whose pods say why they are not healthy.
WORKLOADS = frozenset(
    {
        GroupKind("apps", "Deployment"),
        GroupKind("apps", "StatefulSet"),
        GroupKind("apps", "DaemonSet"),
        GroupKind("apps", "ReplicaSet"),
        GroupKind("batch", "Job"),
    }
)
_OPERATORS = {"In": "in", "NotIn": "notin"}


async def read_health(
    api: KubeClient,
    discovery: Discovery,
    *,
    applyset_id: str,
    stack_id: str,
    deployment_object: DeploymentObjectRef | None,
    keys: Iterable[ResourceKey],
    scope: str | None = None,
) -> StackHealth:
    """The health of the stack whose ApplySet is `applyset_id` and whose objects are `keys`;
    with `scope`, reading only in that namespace."""
    keys = tuple(keys)
    where: dict[GroupKind, set[str]] = {}
    for key in keys:
        where.setdefault(GroupKind.of(key), set()).add(key.namespace)
    try:
        members = await list_members(api, discovery, where, f"{PART_OF_LABEL}={applyset_id}", confined=scope)
    except ClusterError:  # then each object is read on its own, and says why it cannot be
        members = []
    live: dict[Identity, Obj] = {identity(key): obj for obj in members if (key := key_of(obj)) is not None}
    healths = await gather_all(
        *(
            _health(api, discovery, key, live.get(identity(key)))
            if scope in (None, key.namespace)
            else _outside(key, scope)
            for key in keys
        )
    )
    return aggregate(stack_id, deployment_object, healths)


async def _health(
    api: KubeClient, discovery: Discovery, key: ResourceKey, listed: Obj | None
) -> ResourceHealth:
    try:
        obj = listed if listed is not None else await _read(api, discovery, key)
        health = assess(key, obj)
        if obj is None or health.health is Health.HEALTHY or GroupKind.of(key) not in WORKLOADS:
            return health
        return assess(key, obj, pods=await _pods(api, key.namespace, obj))
    except ClusterError as error:
        return ResourceHealth(key, Health.UNKNOWN, error.reason, error.message)


async def _outside(key: ResourceKey, scope: str) -> ResourceHealth:
    """An object an agent confined to `scope` may not read (held from before it was confined)."""
    message = f"outside the namespace {scope!r} this agent is confined to"
    return ResourceHealth(key, Health.UNKNOWN, OUTSIDE_NAMESPACE_SCOPE, message)


async def _read(api: KubeClient, discovery: Discovery, key: ResourceKey) -> Obj | None:
    """The object `key`, or None if it (or its kind) does not exist."""
    resource = await discovery.find(GroupKind.of(key))
    if resource is None:
        return None
    try:
        return (await api.request("GET", resource.object_path(key))).body
    except ClusterError as error:
        if error.reason in ("NOT_FOUND", MISSING_KIND):
            return None
        raise


async def _pods(api: KubeClient, namespace: str, workload: Mapping[str, Any]) -> list[Obj]:
    spec = workload.get("spec")
    selector = selector_text(spec.get("selector") if isinstance(spec, Mapping) else None)
    if not selector:  # an empty selector would select every pod of the namespace
        return []
    return await api.list(PODS.path(namespace), label_selector=selector)


def selector_text(selector: object) -> str:
    """A `LabelSelector` object as the `labelSelector` query parameter; "" if it selects nothing
    expressible (absent, empty, or malformed)."""
    if not isinstance(selector, Mapping):
        return ""
    labels, expressions = selector.get("matchLabels") or {}, selector.get("matchExpressions") or []
    if not isinstance(labels, Mapping) or not isinstance(expressions, list):
        return ""
    parts = [f"{name}={value}" for name, value in sorted(labels.items())]
    for expression in expressions:
        part = _requirement(expression)
        if not part:
            return ""
        parts.append(part)
    return ",".join(parts)


def _requirement(expression: object) -> str:
    if not isinstance(expression, Mapping) or not isinstance(expression.get("key"), str):
        return ""
    key, operator, values = expression["key"], expression.get("operator"), expression.get("values") or []
    if operator in _OPERATORS and isinstance(values, list) and values:
        return f"{key} {_OPERATORS[operator]} ({','.join(str(value) for value in values)})"
    if operator == "Exists":
        return key
    if operator == "DoesNotExist":
        return f"!{key}"
    return ""
