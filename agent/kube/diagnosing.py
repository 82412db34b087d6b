"""Collecting diagnostics of a stack: its pods' statuses, recent events and log tails.

An admin asks "why is this not working" without kubectl access; the answer must come from what the
agent may read, and stay small enough to travel over the session and sit in the broker's database.
So everything is bounded: at most `MAX_PODS` pods, `MAX_EVENTS` events, the requested tail of each
container's log (`tailLines` and `limitBytes` on the `log` subresource, so the API server cuts it,
not the agent after reading it all) and `MAX_REPORT_LOG_BYTES` of logs in all; whatever a bound
left out is said in the report (`truncated`, `log_truncated`, `warnings`).

Which pods: the stack's objects are its ApplySet members, listed by the part-of label in the
group-kinds and namespaces its parent records (plus the objects the session says it holds). Pods
that are members count themselves; workloads (Deployment, StatefulSet, DaemonSet, ReplicaSet, Job)
contribute the pods their label selector selects in their namespace. Events are read per object
with a field selector on `involvedObject`, newest first. An agent confined to one namespace reads
only there. Requests go through `KubeClient`, so none blocks the event loop; a part that cannot be
read becomes a warning, not a failed report.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from google.protobuf import timestamp_pb2

from agent.kube.assessing import PODS, WORKLOADS, selector_text
from agent.kube.client import KubeClient, Obj, gather_all
from agent.kube.discovery import Discovery
from agent.kube.members import list_members
from agent.reconcile.applyset import PART_OF_LABEL, RecordedState
from agent.reconcile.errors import ClusterError
from agent.reconcile.kinds import GroupKind, key_of
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2, diagnostics_pb2
from brokkr_common.session.resource_key import ResourceKey

MAX_PODS = 20
MAX_EVENTS = 50
#: Objects whose events are read at most (one request each).
MAX_EVENT_SUBJECTS = 60
MAX_REPORT_LOG_BYTES = 1024 * 1024
#: Events read per object at most.
EVENTS_PER_OBJECT = 500


@dataclass
class _Budget:
    """Log bytes the report may still take."""

    left: int
    exhausted: bool = False


@dataclass
class _Found:
    members: list[Obj] = field(default_factory=list)
    pods: list[Obj] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False


async def collect(
    api: KubeClient,
    discovery: Discovery,
    *,
    applyset_id: str,
    recorded: RecordedState | None,
    keys: Iterable[ResourceKey],
    options: diagnostics_pb2.DiagnosticsOptions,
    scope: str | None = None,
) -> diagnostics_pb2.DiagnosticsReport:
    """The diagnostics of the stack whose ApplySet is `applyset_id`, whose parent records
    `recorded` (None: no parent found) and of which the session says the agent holds `keys`."""
    found = _Found()
    where: dict[GroupKind, set[str]] = {}
    for key in keys:
        where.setdefault(GroupKind.of(key), set()).add(key.namespace)
    if recorded is not None:
        for group_kind in recorded.group_kinds:
            where.setdefault(group_kind, set()).update(recorded.namespaces)
    if not where:
        found.warnings.append("the agent has no record of objects of this stack in its cluster")
    try:
        found.members = await list_members(
            api, discovery, where, f"{PART_OF_LABEL}={applyset_id}", confined=scope
        )
    except ClusterError as error:
        found.warnings.append(f"listing the stack's objects: {error.message}")
    await _find_pods(api, found, scope)
    report = diagnostics_pb2.DiagnosticsReport(collect_time=_now())
    budget = _Budget(MAX_REPORT_LOG_BYTES)
    pods = await gather_all(*(_pod(api, pod, options, budget, found.warnings) for pod in found.pods))
    report.pods.extend(pods)
    events, events_truncated = await _events(api, [*found.members, *found.pods], scope, found.warnings)
    report.events.extend(events)
    report.truncated = found.truncated or events_truncated or budget.exhausted
    report.warnings.extend(found.warnings)
    return report


async def _find_pods(api: KubeClient, found: _Found, scope: str | None) -> None:
    pods: dict[tuple[str, str], Obj] = {}
    selections = []
    for obj in found.members:
        key = key_of(obj)
        if key is None:
            continue
        if (key.group, key.kind) == ("", "Pod"):
            pods[(key.namespace, key.name)] = obj
        elif GroupKind.of(key) in WORKLOADS and scope in (None, key.namespace):
            spec = obj.get("spec")
            selector = selector_text(spec.get("selector") if isinstance(spec, Mapping) else None)
            if selector:  # an empty selector would select every pod of the namespace
                selections.append((key, selector))
    listed = await gather_all(*(_list_pods(api, key.namespace, selector) for key, selector in selections))
    for (key, _), result in zip(selections, listed, strict=True):
        if isinstance(result, str):
            found.warnings.append(f"listing the pods of {key.kind} {key.namespace}/{key.name}: {result}")
            continue
        for pod in result:
            metadata = pod.get("metadata") or {}
            pods.setdefault((metadata.get("namespace", key.namespace), metadata.get("name", "")), pod)
    ordered = [pods[where] for where in sorted(pods)]
    found.truncated = len(ordered) > MAX_PODS
    found.pods = ordered[:MAX_PODS]


async def _list_pods(api: KubeClient, namespace: str, selector: str) -> list[Obj] | str:
    try:
        return await api.list(PODS.path(namespace), label_selector=selector)
    except ClusterError as error:
        return error.message


async def _pod(
    api: KubeClient,
    pod: Obj,
    options: diagnostics_pb2.DiagnosticsOptions,
    budget: _Budget,
    warnings: list[str],
) -> diagnostics_pb2.PodDiagnostics:
    metadata, spec, status = (_mapping(pod.get(part)) for part in ("metadata", "spec", "status"))
    namespace, name = str(metadata.get("namespace", "")), str(metadata.get("name", ""))
    owner = next(
        (
            f"{ref.get('kind', '')}/{ref.get('name', '')}"
            for ref in _list(metadata.get("ownerReferences"))
            if ref.get("controller")
        ),
        "",
    )
    message = diagnostics_pb2.PodDiagnostics(
        namespace=namespace,
        name=name,
        phase=str(status.get("phase", "")),
        reason=str(status.get("reason", "")),
        message=str(status.get("message", "")),
        owner=owner,
        conditions=[
            diagnostics_pb2.PodCondition(
                type=str(c.get("type", "")),
                status=str(c.get("status", "")),
                reason=str(c.get("reason", "")),
                message=str(c.get("message", "")),
            )
            for c in _list(status.get("conditions"))
        ],
    )
    statuses = {
        **{str(s.get("name")): (True, s) for s in _list(status.get("initContainerStatuses"))},
        **{str(s.get("name")): (False, s) for s in _list(status.get("containerStatuses"))},
    }
    declared = [(True, c) for c in _list(spec.get("initContainers"))] + [
        (False, c) for c in _list(spec.get("containers"))
    ]
    for init, container in declared:
        container_name = str(container.get("name", ""))
        container_status = statuses.get(container_name, (init, {}))[1]
        message.containers.append(
            await _container(api, namespace, name, container_name, init, container_status, options, budget)
        )
    return message


async def _container(
    api: KubeClient,
    namespace: str,
    pod: str,
    name: str,
    init: bool,
    status: Mapping[str, Any],
    options: diagnostics_pb2.DiagnosticsOptions,
    budget: _Budget,
) -> diagnostics_pb2.ContainerDiagnostics:
    states = _mapping(status.get("state"))
    state = next((kind for kind in ("running", "waiting", "terminated") if kind in states), "")
    current = _mapping(states.get(state)) if state else {}
    last = _mapping(_mapping(status.get("lastState")).get("terminated"))
    restarts = int(status.get("restartCount") or 0)
    message = diagnostics_pb2.ContainerDiagnostics(
        name=name,
        init=init,
        ready=bool(status.get("ready")),
        restart_count=restarts,
        state=state,
        reason=str(current.get("reason", "")),
        message=str(current.get("message", "")),
        last_termination_reason=str(last.get("reason", "")),
        last_exit_code=int(last.get("exitCode") or 0),
    )
    if state == "waiting" and restarts == 0:
        message.log_error = "the container has not started yet"
        return message
    tail, truncated, error = await _log(api, namespace, pod, name, options, budget, previous=False)
    message.log_tail, message.log_truncated, message.log_error = tail, truncated, error
    if options.include_previous_logs and restarts > 0:
        previous, previous_truncated, previous_error = await _log(
            api, namespace, pod, name, options, budget, previous=True
        )
        message.previous_log_tail = previous
        message.log_truncated = message.log_truncated or previous_truncated
        if previous_error and not message.log_error:
            message.log_error = f"previous instance: {previous_error}"
    return message


async def _log(
    api: KubeClient,
    namespace: str,
    pod: str,
    container: str,
    options: diagnostics_pb2.DiagnosticsOptions,
    budget: _Budget,
    *,
    previous: bool,
) -> tuple[str, bool, str]:
    """(tail, truncated, error) of one container instance's log."""
    limit = min(options.max_log_bytes, budget.left)
    if limit <= 0:
        budget.exhausted = True
        return "", True, "left out: the report's log size limit was reached"
    budget.left -= limit  # reserved before the request, so concurrent reads never exceed the budget
    query = [
        ("container", container),
        ("tailLines", str(options.log_tail_lines)),
        ("limitBytes", str(limit)),
    ]
    query += [("previous", "true")] if previous else []
    path = f"{PODS.path(namespace, pod)}/log"
    try:
        data = await api.read_text(path, query=query)
    except ClusterError as error:
        budget.left += limit
        return "", False, error.message
    budget.left += limit - len(data)
    cut = len(data) >= limit
    if cut and limit < options.max_log_bytes:
        budget.exhausted = True
    return data.decode("utf-8", errors="replace"), cut, ""


async def _events(
    api: KubeClient, subjects: list[Obj], scope: str | None, warnings: list[str]
) -> tuple[list[diagnostics_pb2.KubernetesEvent], bool]:
    keys = []
    for obj in subjects:
        key = key_of(obj)
        if key is not None and key.namespace and scope in (None, key.namespace) and key not in keys:
            keys.append(key)
    truncated = len(keys) > MAX_EVENT_SUBJECTS
    keys = keys[:MAX_EVENT_SUBJECTS]
    found = await gather_all(*(_events_of(api, key) for key in keys))
    events: dict[tuple[str, str], Obj] = {}
    failures = []
    for key, result in zip(keys, found, strict=True):
        if isinstance(result, str):
            failures.append(f"{key.kind} {key.namespace}/{key.name}: {result}")
            continue
        for event in result:
            metadata = _mapping(event.get("metadata"))
            events[(str(metadata.get("namespace", "")), str(metadata.get("name", "")))] = event
    if failures:
        warnings.append(f"reading events failed for {len(failures)} objects, e.g. {failures[0]}")
    ordered = sorted(events.values(), key=_event_time, reverse=True)
    return [_event(event) for event in ordered[:MAX_EVENTS]], truncated or len(ordered) > MAX_EVENTS


async def _events_of(api: KubeClient, key: ResourceKey) -> list[Obj] | str:
    """The events about one object, read with a field selector on `involvedObject`."""
    selector = f"involvedObject.kind={key.kind},involvedObject.name={key.name}"
    try:
        return await _list_events(api, key.namespace, selector)
    except ClusterError as error:
        return error.message


async def _list_events(api: KubeClient, namespace: str, selector: str) -> list[Obj]:
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/events"
    page = (
        await api.request("GET", path, query=[("fieldSelector", selector), ("limit", str(MAX_EVENTS))])
    ).body
    items = page.get("items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _event_time(event: Obj) -> str:
    """RFC 3339 times sort as text (all are UTC, "Z")."""
    series = _mapping(event.get("series"))
    return str(
        event.get("lastTimestamp")
        or series.get("lastObservedTime")
        or event.get("eventTime")
        or _mapping(event.get("metadata")).get("creationTimestamp")
        or ""
    )


def _event(event: Obj) -> diagnostics_pb2.KubernetesEvent:
    involved = _mapping(event.get("involvedObject"))
    group, _, version = str(involved.get("apiVersion", "")).rpartition("/")
    message = diagnostics_pb2.KubernetesEvent(
        type=str(event.get("type", "")),
        reason=str(event.get("reason", "")),
        message=str(event.get("message", "")),
        involved_object=deployment_object_pb2.ResourceKey(
            group=group,
            version=version,
            kind=str(involved.get("kind", "")),
            namespace=str(involved.get("namespace", "")),
            name=str(involved.get("name", "")),
        ),
        count=int(event.get("count") or _mapping(event.get("series")).get("count") or 1),
    )
    when = _event_time(event)
    if when:
        try:
            message.last_time.FromJsonString(when)
        except ValueError:
            message.ClearField("last_time")
    return message


def _now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(datetime.now(UTC))
    return stamp


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []
