"""How well the objects of a stack work, and so the stack: health from the objects' own status.

Health is separate from applying: an Ack says "applied", health says "working". The agent reads
each object of a stack back from the cluster, `assess`es it, and reports the `aggregate` when it
changes. The rules are Argo CD's (gitops-engine pkg/health), translated into Brokkr's five words:

* HEALTHY: working as intended (a paused Deployment or suspended Job is doing what was asked).
* PROGRESSING: not there yet but moving: rollouts, pending pods and claims, running Jobs,
  load balancers without an address, CRDs not yet Established.
* DEGRADED: working with reduced capacity or past a deadline: ProgressDeadlineExceeded,
  ReplicaFailure, conditions Ready/Available False.
* FAILING: not working: crash loops, image pull failures, OOM kills, failed pods and Jobs,
  lost claims, CRD names not accepted, a `Stalled` object, a desired object that is missing.
* UNKNOWN: the status does not say (an unknown pod phase; the runtime uses it when it cannot
  read the object).

Where Argo CD says Degraded, Brokkr says FAILING when nothing works and DEGRADED when something
does. One deliberate difference: Argo CD ignores the container errors of pods that do not
restart, because it runs such pods as sync hooks; Brokkr has no hooks, so an image pull failure
is FAILING whatever the restart policy.

A workload's pods are not objects of the stack, yet they are where CrashLoopBackOff shows. So
`assess` takes the pods the runtime found for a Deployment, StatefulSet, DaemonSet, ReplicaSet or
Job: if the workload is not HEALTHY and one of its pods is FAILING, so is the workload, with that
pod's reason.

A stack is as healthy as its worst object, in the order FAILING, DEGRADED, PROGRESSING, UNKNOWN,
HEALTHY. UNKNOWN ranks low because it carries no information: it must keep a stack from reading
HEALTHY, but must not hide a known failure or a rollout under way (Argo CD ranks it worst, which
lets one unreadable object mask a crash loop).

Every rule reads the object defensively: a field of the wrong type counts as absent, and no
object makes `assess` raise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from agent.reconcile.kinds import GroupKind
from brokkr_common.session.reports import Health, ResourceHealth, StackHealth
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef

#: Healths from best to worst.
SEVERITY: tuple[Health, ...] = (
    Health.HEALTHY,
    Health.UNKNOWN,
    Health.PROGRESSING,
    Health.DEGRADED,
    Health.FAILING,
)
_RANK = {health: rank for rank, health in enumerate(SEVERITY)}

#: health, reason, message
Verdict = tuple[Health, str, str]
Obj = Mapping[str, Any]

HEALTHY: Verdict = (Health.HEALTHY, "", "")


def assess(key: ResourceKey, obj: Obj | None, *, pods: Iterable[Obj] = ()) -> ResourceHealth:
    """The health of the object `key` as read from the cluster (`obj`; None if it does not exist).
    `pods` are the pods of a workload, to find out why it is not healthy."""
    health, reason, message = _verdict(key, obj, tuple(pods))
    return ResourceHealth(key, health, "" if health is Health.HEALTHY else reason, message)


def worst(healths: Iterable[Health]) -> Health:
    """The worst of `healths`; HEALTHY if there are none."""
    return max(healths, key=_RANK.__getitem__, default=Health.HEALTHY)


def aggregate(
    stack_id: str, deployment_object: DeploymentObjectRef | None, resources: Iterable[ResourceHealth]
) -> StackHealth:
    """The health of a stack: its worst object's, with every object's, sorted by key."""
    ordered = tuple(sorted(resources, key=lambda resource: resource.key))
    return StackHealth(stack_id, deployment_object, worst(r.health for r in ordered), ordered)


def _verdict(key: ResourceKey, obj: Obj | None, pods: tuple[Obj, ...]) -> Verdict:
    if obj is None:
        return (Health.FAILING, "Missing", "the object does not exist in the cluster")
    if _get(obj, "metadata", "deletionTimestamp"):
        return (Health.PROGRESSING, "Terminating", "pending deletion")
    rule = _RULES.get(GroupKind.of(key), _conditions_rule)
    verdict = rule(obj)
    if verdict[0] is Health.HEALTHY or GroupKind.of(key) not in _WORKLOADS:
        return verdict
    for pod in sorted(pods, key=lambda pod: str(_get(pod, "metadata", "name"))):
        health, reason, message = _pod(pod)
        if health is Health.FAILING:
            return (health, reason, f"pod {_str(pod, 'metadata', 'name')}: {message}")
    return verdict


# -- workloads -----------------------------------------------------------------------------------


def _deployment(obj: Obj) -> Verdict:
    if _get(obj, "spec", "paused") is True:
        return (Health.HEALTHY, "", "Deployment is paused")
    if _stale(obj):
        return _rolling_out("observed deployment generation less than desired generation")
    progressing = _condition(obj, "Progressing")
    if _str(progressing, "reason") == "ProgressDeadlineExceeded":
        return (Health.DEGRADED, "ProgressDeadlineExceeded", _str(progressing, "message"))
    desired, replicas = _int(obj, "spec", "replicas", default=1), _int(obj, "status", "replicas")
    updated, available = _int(obj, "status", "updatedReplicas"), _int(obj, "status", "availableReplicas")
    if updated < desired:
        return _rolling_out(f"{updated} out of {desired} new replicas have been updated")
    if replicas > updated:
        return _rolling_out(f"{replicas - updated} old replicas are pending termination")
    if available < updated:
        return _rolling_out(f"{available} of {updated} updated replicas are available")
    return HEALTHY


def _stateful_set(obj: Obj) -> Verdict:
    if _int(obj, "status", "observedGeneration") == 0 or _stale(obj):
        return _rolling_out("statefulset spec update not yet observed")
    desired, ready = _int(obj, "spec", "replicas", default=1), _int(obj, "status", "readyReplicas")
    if ready < desired:
        return _rolling_out(f"waiting for {desired - ready} pods to be ready")
    strategy = _str(obj, "spec", "updateStrategy", "type") or "RollingUpdate"
    if strategy == "OnDelete":
        return HEALTHY
    partition = _int(obj, "spec", "updateStrategy", "rollingUpdate", "partition")
    updated = _int(obj, "status", "updatedReplicas")
    if _get(obj, "spec", "updateStrategy", "rollingUpdate") is not None:
        if updated < desired - partition:
            return _rolling_out(f"{updated} out of {desired - partition} new pods have been updated")
        return HEALTHY
    if _str(obj, "status", "updateRevision") != _str(obj, "status", "currentRevision"):
        return _rolling_out(f"{updated} pods at revision {_str(obj, 'status', 'updateRevision')}")
    return HEALTHY


def _daemon_set(obj: Obj) -> Verdict:
    if _stale(obj):
        return _rolling_out("observed daemon set generation less than desired generation")
    if _str(obj, "spec", "updateStrategy", "type") == "OnDelete":
        return HEALTHY
    desired = _int(obj, "status", "desiredNumberScheduled")
    updated, available = _int(obj, "status", "updatedNumberScheduled"), _int(obj, "status", "numberAvailable")
    if updated < desired:
        return _rolling_out(f"{updated} out of {desired} new pods have been updated")
    if available < desired:
        return _rolling_out(f"{available} of {desired} updated pods are available")
    return HEALTHY


def _replica_set(obj: Obj) -> Verdict:
    if _stale(obj):
        return _rolling_out("observed replica set generation less than desired generation")
    failure = _condition(obj, "ReplicaFailure")
    if _str(failure, "status") == "True":
        return (Health.DEGRADED, _str(failure, "reason") or "ReplicaFailure", _str(failure, "message"))
    desired, available = _int(obj, "spec", "replicas", default=1), _int(obj, "status", "availableReplicas")
    if available < desired:
        return _rolling_out(f"{available} out of {desired} replicas are available")
    return HEALTHY


def _job(obj: Obj) -> Verdict:
    failed, complete = _condition(obj, "Failed"), _condition(obj, "Complete")
    if _str(failed, "status") == "True":
        return (Health.FAILING, _str(failed, "reason") or "JobFailed", _str(failed, "message"))
    if _str(complete, "status") == "True":
        return (Health.HEALTHY, "", _str(complete, "message"))
    if _str(_condition(obj, "Suspended"), "status") == "True":
        return (Health.HEALTHY, "", "Job is suspended")
    return (Health.PROGRESSING, "Running", f"{_int(obj, 'status', 'active')} active pods")


def _rolling_out(message: str) -> Verdict:
    return (Health.PROGRESSING, "RollingOut", f"Waiting for rollout to finish: {message}")


# -- pods ----------------------------------------------------------------------------------------


def _pod(obj: Obj) -> Verdict:
    phase = _str(obj, "status", "phase")
    if phase == "Succeeded":
        return (Health.HEALTHY, "", _str(obj, "status", "message"))
    if phase == "Failed":
        return _failed_pod(obj)
    statuses = _list(obj, "status", "initContainerStatuses") + _list(obj, "status", "containerStatuses")
    for status in statuses:
        if (failure := _waiting_failure(status)) is not None:
            return failure
    if phase == "Pending":
        return (Health.PROGRESSING, "Pending", _str(obj, "status", "message"))
    if phase != "Running":
        return (Health.UNKNOWN, phase or "Unknown", _str(obj, "status", "message"))
    if (_str(obj, "spec", "restartPolicy") or "Always") != "Always":
        return (Health.PROGRESSING, "Running", "the pod runs to completion")
    if _str(_condition(obj, "Ready"), "status") == "True":
        return HEALTHY
    for status in _list(obj, "status", "containerStatuses"):
        last = _get(status, "lastState", "terminated")
        if isinstance(last, Mapping):
            reason = _str(last, "reason") or "Restarted"
            return (Health.FAILING, reason, f"container {_str(status, 'name')!r} restarted: {reason}")
    return (Health.PROGRESSING, "NotReady", _str(obj, "status", "message"))


def _waiting_failure(status: Obj) -> Verdict | None:
    """FAILING if the container waits for a reason that will not go away by itself."""
    reason = _str(status, "state", "waiting", "reason")
    failing = (
        reason.startswith("Err") or reason.endswith(("Error", "BackOff")) or reason == "InvalidImageName"
    )
    if not failing:
        return None
    name, message = _str(status, "name"), _str(status, "state", "waiting", "message")
    if reason == "CrashLoopBackOff" and _str(status, "lastState", "terminated", "reason") == "OOMKilled":
        return (Health.FAILING, "OOMKilled", f"container {name!r} was OOMKilled and is in CrashLoopBackOff")
    return (Health.FAILING, reason, f"container {name!r}: {message}" if message else f"container {name!r}")


def _failed_pod(obj: Obj) -> Verdict:
    reason, message = _str(obj, "status", "reason"), _str(obj, "status", "message")
    statuses = _list(obj, "status", "initContainerStatuses") + _list(obj, "status", "containerStatuses")
    for status in statuses:
        terminated = _get(status, "state", "terminated")
        if isinstance(terminated, Mapping) and _int(terminated, "exitCode") != 0:
            reason = reason or _str(terminated, "reason")
            code = _int(terminated, "exitCode")
            message = (
                message or _str(terminated, "message") or f"container {_str(status, 'name')!r} exited {code}"
            )
            break
    return (Health.FAILING, reason or "PodFailed", message)


# -- other kinds ---------------------------------------------------------------------------------


def _claim(obj: Obj) -> Verdict:
    phase = _str(obj, "status", "phase")
    if phase == "Bound":
        return HEALTHY
    if phase == "Pending":
        return (Health.PROGRESSING, "Pending", "waiting for a volume")
    if phase == "Lost":
        return (Health.FAILING, "ClaimLost", "the bound volume no longer exists")
    return (Health.UNKNOWN, phase or "Unknown", "")


def _service(obj: Obj) -> Verdict:
    if _str(obj, "spec", "type") != "LoadBalancer" or _list(obj, "status", "loadBalancer", "ingress"):
        return HEALTHY
    return (Health.PROGRESSING, "LoadBalancerPending", "waiting for the load balancer's address")


def _crd(obj: Obj) -> Verdict:
    if not _list(obj, "status", "conditions"):
        return (Health.PROGRESSING, "Pending", "no status conditions yet")
    terminating, names, established = (
        _condition(obj, c) for c in ("Terminating", "NamesAccepted", "Established")
    )
    if _str(terminating, "status") == "True":
        return (Health.PROGRESSING, "Terminating", _str(terminating, "message"))
    if _str(names, "status") == "False":
        return (Health.FAILING, _str(names, "reason") or "NamesNotAccepted", _str(names, "message"))
    if _str(established, "status") != "True":
        return (
            Health.PROGRESSING,
            _str(established, "reason") or "NotEstablished",
            _str(established, "message"),
        )
    violations = _condition(obj, "NonStructuralSchema")
    if _str(violations, "status") == "True":
        return (Health.DEGRADED, "NonStructuralSchema", _str(violations, "message"))
    return HEALTHY


def _api_service(obj: Obj) -> Verdict:
    available = _condition(obj, "Available")
    if _str(available, "status") == "True":
        return HEALTHY
    if not available:
        return (Health.PROGRESSING, "Pending", "waiting to be processed")
    return (Health.PROGRESSING, _str(available, "reason") or "Unavailable", _str(available, "message"))


def _conditions_rule(obj: Obj) -> Verdict:
    """Any other kind: the kstatus-style conditions most controllers set, else HEALTHY."""
    stalled = _condition(obj, "Stalled")
    if _str(stalled, "status") == "True":
        return (Health.FAILING, _str(stalled, "reason") or "Stalled", _str(stalled, "message"))
    if isinstance(_get(obj, "status", "observedGeneration"), int) and _stale(obj):
        return (Health.PROGRESSING, "Reconciling", "the latest spec is not yet observed")
    ready = _condition(obj, "Ready") or _condition(obj, "Available")
    if _str(ready, "status") == "False":
        return (Health.DEGRADED, _str(ready, "reason") or f"Not{_str(ready, 'type')}", _str(ready, "message"))
    if _str(ready, "status") == "Unknown" or _str(_condition(obj, "Reconciling"), "status") == "True":
        reason = _str(ready, "reason") or "Reconciling"
        return (Health.PROGRESSING, reason, _str(ready, "message"))
    return HEALTHY


_RULES: dict[GroupKind, Callable[[Obj], Verdict]] = {
    GroupKind("apps", "Deployment"): _deployment,
    GroupKind("apps", "StatefulSet"): _stateful_set,
    GroupKind("apps", "DaemonSet"): _daemon_set,
    GroupKind("apps", "ReplicaSet"): _replica_set,
    GroupKind("batch", "Job"): _job,
    GroupKind("", "Pod"): _pod,
    GroupKind("", "PersistentVolumeClaim"): _claim,
    GroupKind("", "Service"): _service,
    GroupKind("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    GroupKind("apiregistration.k8s.io", "APIService"): _api_service,
}
_WORKLOADS = frozenset(kind for kind in _RULES if kind.group in ("apps", "batch"))


# -- reading objects that may hold anything ------------------------------------------------------


def _get(obj: object, *path: str) -> object:
    for name in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(name)
    return obj


def _str(obj: object, *path: str) -> str:
    value = _get(obj, *path)
    return value if isinstance(value, str) else ""


def _int(obj: object, *path: str, default: int = 0) -> int:
    value = _get(obj, *path)
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _list(obj: object, *path: str) -> list[Any]:
    value = _get(obj, *path)
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _condition(obj: Obj, kind: str) -> Obj:
    """The status condition of type `kind`, or an empty mapping."""
    return next((c for c in _list(obj, "status", "conditions") if c.get("type") == kind), {})


def _stale(obj: Obj) -> bool:
    """Whether the controller has not yet seen the latest spec."""
    return _int(obj, "metadata", "generation") > _int(obj, "status", "observedGeneration")
