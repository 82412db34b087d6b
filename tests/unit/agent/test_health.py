"""Health of objects as read back from a cluster, and of a stack as its worst object's."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.health import aggregate, assess, worst
from agent.reconcile.kinds import key_of
from brokkr_common.session.reports import Health, ResourceHealth, StackHealth
from brokkr_common.session.resource_key import ResourceKey
from tests.unit.agent.builders import ref

HEALTHY, PROGRESSING, DEGRADED, FAILING, UNKNOWN = (
    Health.HEALTHY,
    Health.PROGRESSING,
    Health.DEGRADED,
    Health.FAILING,
    Health.UNKNOWN,
)


def judge(text: str, pods: tuple[str, ...] = ()) -> ResourceHealth:
    obj = yaml.safe_load(text)
    key = key_of(obj)
    assert key is not None
    return assess(key, obj, pods=[yaml.safe_load(pod) for pod in pods])


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: %(generation)s}
spec:
  replicas: 3
  paused: %(paused)s
  selector: {matchLabels: {app: web}}
status:
  observedGeneration: 4
  replicas: %(replicas)s
  updatedReplicas: %(updated)s
  availableReplicas: %(available)s
  conditions:
  - {type: Available, status: "True", reason: MinimumReplicasAvailable}
  - {type: Progressing, status: "%(progressing)s", reason: %(progress_reason)s, message: "%(message)s"}
"""


def deployment(**fields: Any) -> str:
    values = {
        "generation": 4,
        "paused": "false",
        "replicas": 3,
        "updated": 3,
        "available": 3,
        "progressing": "True",
        "progress_reason": "NewReplicaSetAvailable",
        "message": "ReplicaSet web-7d9f has successfully progressed.",
    }
    return DEPLOYMENT % {**values, **fields}


STATEFUL_SET = """
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, generation: 2}
spec:
  replicas: 3
  updateStrategy: %(strategy)s
status:
  observedGeneration: %(observed)s
  replicas: 3
  readyReplicas: %(ready)s
  currentReplicas: 3
  updatedReplicas: %(updated)s
  currentRevision: db-5c9f
  updateRevision: %(revision)s
"""


def stateful_set(**fields: Any) -> str:
    values = {
        "strategy": "{type: RollingUpdate, rollingUpdate: {partition: 0}}",
        "observed": 2,
        "ready": 3,
        "updated": 3,
        "revision": "db-5c9f",
    }
    return STATEFUL_SET % {**values, **fields}


DAEMON_SET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: shop, generation: 3}
spec:
  updateStrategy: {type: %(strategy)s}
status:
  observedGeneration: %(observed)s
  desiredNumberScheduled: 5
  currentNumberScheduled: 5
  updatedNumberScheduled: %(updated)s
  numberAvailable: %(available)s
  numberReady: %(available)s
"""


def daemon_set(
    strategy: str = "RollingUpdate", observed: int = 3, updated: int = 5, available: int = 5
) -> str:
    return DAEMON_SET % {
        "strategy": strategy,
        "observed": observed,
        "updated": updated,
        "available": available,
    }


REPLICA_SET = """
apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: web-7d9f, namespace: shop, generation: 1}
spec: {replicas: 2}
status:
  observedGeneration: %(observed)s
  replicas: 2
  availableReplicas: %(available)s
  conditions: %(conditions)s
"""


def replica_set(observed: int = 1, available: int = 2, conditions: str = "[]") -> str:
    return REPLICA_SET % {"observed": observed, "available": available, "conditions": conditions}


QUOTA_EXCEEDED = (
    '[{type: ReplicaFailure, status: "True", reason: FailedCreate,'
    ' message: "pods \\"web-7d9f-x\\" is forbidden: exceeded quota: compute-resources"}]'
)

POD = """
apiVersion: v1
kind: Pod
metadata: {name: %(name)s, namespace: shop}
spec:
  restartPolicy: %(policy)s
  containers: [{name: app, image: "shop/web:1.4"}]
status:
  phase: %(phase)s
  %(extra)s
  conditions:
  - {type: Ready, status: "%(ready)s"}
  initContainerStatuses: %(init)s
  containerStatuses: %(containers)s
"""


def pod(
    phase: str = "Running",
    *,
    ready: str = "True",
    policy: str = "Always",
    containers: str = "[]",
    init: str = "[]",
    extra: str = "",
    name: str = "web-7d9f-abcde",
) -> str:
    values = {"phase": phase, "ready": ready, "policy": policy, "containers": containers, "init": init}
    return POD % {**values, "extra": extra, "name": name}


def waiting(reason: str, message: str = "", last: str = "{}") -> str:
    state = f'{{waiting: {{reason: {reason}, message: "{message}"}}}}'
    return f"[{{name: app, ready: false, restartCount: 4, state: {state}, lastState: {last}}}]"


OOM_LAST = "{terminated: {reason: OOMKilled, exitCode: 137}}"
RUNNING_AFTER_ERROR = (
    "[{name: app, ready: false, restartCount: 1, state: {running: {startedAt: '2025-01-07T10:00:00Z'}},"
    " lastState: {terminated: {reason: Error, exitCode: 1}}}]"
)
RUNNING_AFTER_OOM = RUNNING_AFTER_ERROR.replace("reason: Error", "reason: OOMKilled")
STARTING = (
    "[{name: app, ready: false, restartCount: 0, state: {running: {startedAt: '2025-01-07T10:00:00Z'}}}]"
)
FAILED_CONTAINER = (
    "[{name: app, ready: false,"
    " state: {terminated: {reason: Error, exitCode: 2, message: 'config missing'}}}]"
)

JOB = """
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop}
status:
  active: %(active)s
  conditions: %(conditions)s
"""


def job(conditions: str = "[]", active: int = 1) -> str:
    return JOB % {"conditions": conditions, "active": active}


def claim(phase: str) -> str:
    return f"""
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {{name: data, namespace: shop}}
spec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}
status: {{phase: {phase}}}
"""


def service(kind: str, ingress: str = "") -> str:
    status = (
        f"status: {{loadBalancer: {{ingress: [{ingress}]}}}}" if ingress else "status: {loadBalancer: {}}"
    )
    return f"""
apiVersion: v1
kind: Service
metadata: {{name: web, namespace: shop}}
spec: {{type: {kind}, ports: [{{port: 80}}]}}
{status}
"""


def crd(conditions: str) -> str:
    return f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {{name: carts.shop.example.com}}
spec: {{group: shop.example.com, scope: Namespaced, names: {{kind: Cart, plural: carts}}}}
status: {{conditions: {conditions}}}
"""


ESTABLISHED = (
    '[{type: NamesAccepted, status: "True", reason: NoConflicts},'
    ' {type: Established, status: "True", reason: InitialNamesAccepted}]'
)


def api_service(conditions: str) -> str:
    return f"""
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {{name: v1beta1.metrics.k8s.io}}
spec: {{group: metrics.k8s.io, version: v1beta1, service: {{name: metrics-server, namespace: kube-system}}}}
status: {{conditions: {conditions}}}
"""


def custom(conditions: str, generation: int = 2, observed: int = 2) -> str:
    return f"""
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {{name: shop-tls, namespace: shop, generation: {generation}}}
status: {{observedGeneration: {observed}, conditions: {conditions}}}
"""


PARTITIONED = "{type: RollingUpdate, rollingUpdate: {partition: 1}}"
CONFIG_MAP = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: shop}\ndata: {a: b}"
DELETED = CONFIG_MAP.replace("namespace: shop", "namespace: shop, deletionTimestamp: '2025-01-07T10:00:00Z'")
EVICTED = "reason: Evicted\n  message: 'The node was low on memory.'"
JOB_FAILED = (
    '[{type: Failed, status: "True", reason: BackoffLimitExceeded,'
    ' message: "Job has reached the specified backoff limit"}]'
)
NAMES_CONFLICT = (
    '[{type: NamesAccepted, status: "False", reason: MultipleNameConflict,'
    ' message: "plural is already in use"}, {type: Established, status: "False"}]'
)
INSTALLING = (
    '[{type: NamesAccepted, status: "True"}, {type: Established, status: "False", reason: Installing}]'
)


def case(what: str, text: str, health: Health, reason: str = "") -> Any:
    return pytest.param(text, health, reason, id=what)


CASES = [
    case("deployment rolled out", deployment(), HEALTHY),
    case("deployment paused", deployment(paused="true", updated=1), HEALTHY),
    case("deployment spec not observed", deployment(generation=5), PROGRESSING, "RollingOut"),
    case("deployment updating", deployment(updated=1), PROGRESSING, "RollingOut"),
    case("deployment old replicas left", deployment(replicas=4), PROGRESSING, "RollingOut"),
    case("deployment replicas unavailable", deployment(available=2), PROGRESSING, "RollingOut"),
    case(
        "deployment past its deadline",
        deployment(
            updated=1, progressing="False", progress_reason="ProgressDeadlineExceeded", message="slow"
        ),
        DEGRADED,
        "ProgressDeadlineExceeded",
    ),
    case("statefulset ready", stateful_set(), HEALTHY),
    case("statefulset never observed", stateful_set(observed=0), PROGRESSING, "RollingOut"),
    case("statefulset pods not ready", stateful_set(ready=1), PROGRESSING, "RollingOut"),
    case(
        "statefulset partition rolling",
        stateful_set(strategy=PARTITIONED, updated=1),
        PROGRESSING,
        "RollingOut",
    ),
    case("statefulset partition done", stateful_set(strategy=PARTITIONED, updated=2), HEALTHY),
    case("statefulset on delete", stateful_set(strategy="{type: OnDelete}", revision="db-6a1b"), HEALTHY),
    case(
        "statefulset revision pending",
        stateful_set(strategy="{type: RollingUpdate}", revision="db-6a1b"),
        PROGRESSING,
        "RollingOut",
    ),
    case("daemonset rolled out", daemon_set(), HEALTHY),
    case("daemonset spec not observed", daemon_set(observed=2), PROGRESSING, "RollingOut"),
    case("daemonset updating", daemon_set(updated=3), PROGRESSING, "RollingOut"),
    case("daemonset pods unavailable", daemon_set(available=4), PROGRESSING, "RollingOut"),
    case("daemonset on delete", daemon_set(strategy="OnDelete", updated=3), HEALTHY),
    case("replicaset available", replica_set(), HEALTHY),
    case("replicaset spec not observed", replica_set(observed=0), PROGRESSING, "RollingOut"),
    case("replicaset replicas unavailable", replica_set(available=1), PROGRESSING, "RollingOut"),
    case("replicaset failing", replica_set(available=1, conditions=QUOTA_EXCEEDED), DEGRADED, "FailedCreate"),
    case("pod ready", pod(), HEALTHY),
    case("pod pending", pod("Pending", ready="False"), PROGRESSING, "Pending"),
    case("pod starting", pod(ready="False", containers=STARTING), PROGRESSING, "NotReady"),
    case(
        "pod crash looping",
        pod(ready="False", containers=waiting("CrashLoopBackOff", "back-off 5m0s")),
        FAILING,
        "CrashLoopBackOff",
    ),
    case(
        "pod crash looping out of memory",
        pod(ready="False", containers=waiting("CrashLoopBackOff", last=OOM_LAST)),
        FAILING,
        "OOMKilled",
    ),
    case("pod restarted after oom", pod(ready="False", containers=RUNNING_AFTER_OOM), FAILING, "OOMKilled"),
    case("pod restarted after error", pod(ready="False", containers=RUNNING_AFTER_ERROR), FAILING, "Error"),
    case(
        "pod recovered after oom",
        pod(containers=RUNNING_AFTER_OOM.replace("ready: false", "ready: true")),
        HEALTHY,
    ),
    case(
        "pod image pull back-off",
        pod("Pending", ready="False", containers=waiting("ImagePullBackOff")),
        FAILING,
        "ImagePullBackOff",
    ),
    case(
        "pod image pull error",
        pod("Pending", ready="False", containers=waiting("ErrImagePull")),
        FAILING,
        "ErrImagePull",
    ),
    case(
        "pod config error",
        pod(
            "Pending",
            ready="False",
            containers=waiting("CreateContainerConfigError", 'secret \\"db\\" not found'),
        ),
        FAILING,
        "CreateContainerConfigError",
    ),
    case(
        "pod invalid image",
        pod("Pending", ready="False", containers=waiting("InvalidImageName")),
        FAILING,
        "InvalidImageName",
    ),
    case(
        "pod creating container",
        pod("Pending", ready="False", containers=waiting("ContainerCreating")),
        PROGRESSING,
        "Pending",
    ),
    case(
        "pod init container pull failure",
        pod("Pending", ready="False", init=waiting("ImagePullBackOff")),
        FAILING,
        "ImagePullBackOff",
    ),
    case(
        "pod never restarted, image missing",
        pod("Pending", ready="False", policy="Never", containers=waiting("ErrImagePull")),
        FAILING,
        "ErrImagePull",
    ),
    case("pod running to completion", pod(ready="False", policy="OnFailure"), PROGRESSING, "Running"),
    case("pod never restarted, running", pod(ready="False", policy="Never"), PROGRESSING, "Running"),
    case("pod succeeded", pod("Succeeded", ready="False", policy="Never"), HEALTHY),
    case("pod evicted", pod("Failed", ready="False", extra=EVICTED), FAILING, "Evicted"),
    case(
        "pod failed container",
        pod("Failed", ready="False", policy="Never", containers=FAILED_CONTAINER),
        FAILING,
        "Error",
    ),
    case("pod failed, no detail", pod("Failed", ready="False", policy="Never"), FAILING, "PodFailed"),
    case("pod phase unknown", pod("Unknown", ready="Unknown"), UNKNOWN, "Unknown"),
    case("job running", job(), PROGRESSING, "Running"),
    case("job complete", job('[{type: Complete, status: "True"}]', active=0), HEALTHY),
    case("job failed", job(JOB_FAILED, active=0), FAILING, "BackoffLimitExceeded"),
    case(
        "job suspended", job('[{type: Suspended, status: "True", reason: JobSuspended}]', active=0), HEALTHY
    ),
    case("claim bound", claim("Bound"), HEALTHY),
    case("claim pending", claim("Pending"), PROGRESSING, "Pending"),
    case("claim lost", claim("Lost"), FAILING, "ClaimLost"),
    case("cluster ip service", service("ClusterIP"), HEALTHY),
    case("load balancer with address", service("LoadBalancer", "{ip: 203.0.113.10}"), HEALTHY),
    case("load balancer waiting", service("LoadBalancer"), PROGRESSING, "LoadBalancerPending"),
    case("crd established", crd(ESTABLISHED), HEALTHY),
    case("crd without conditions", crd("[]"), PROGRESSING, "Pending"),
    case("crd installing", crd(INSTALLING), PROGRESSING, "Installing"),
    case("crd names conflict", crd(NAMES_CONFLICT), FAILING, "MultipleNameConflict"),
    case(
        "crd terminating",
        crd(ESTABLISHED[:-1] + ', {type: Terminating, status: "True"}]'),
        PROGRESSING,
        "Terminating",
    ),
    case(
        "crd non-structural",
        crd(ESTABLISHED[:-1] + ', {type: NonStructuralSchema, status: "True"}]'),
        DEGRADED,
        "NonStructuralSchema",
    ),
    case("apiservice available", api_service('[{type: Available, status: "True", reason: Passed}]'), HEALTHY),
    case(
        "apiservice missing endpoints",
        api_service('[{type: Available, status: "False", reason: MissingEndpoints}]'),
        PROGRESSING,
        "MissingEndpoints",
    ),
    case("apiservice unprocessed", api_service("[]"), PROGRESSING, "Pending"),
    case("custom ready", custom('[{type: Ready, status: "True", reason: Ready}]'), HEALTHY),
    case(
        "custom not ready",
        custom('[{type: Ready, status: "False", reason: Failed, message: "ACME order failed"}]'),
        DEGRADED,
        "Failed",
    ),
    case(
        "custom ready unknown",
        custom('[{type: Ready, status: "Unknown", reason: Issuing}]'),
        PROGRESSING,
        "Issuing",
    ),
    case(
        "custom not observed",
        custom('[{type: Ready, status: "True"}]', generation=3),
        PROGRESSING,
        "Reconciling",
    ),
    case(
        "custom reconciling",
        custom('[{type: Ready, status: "True"}, {type: Reconciling, status: "True"}]'),
        PROGRESSING,
        "Reconciling",
    ),
    case(
        "custom stalled",
        custom('[{type: Stalled, status: "True", reason: InvalidSpec}]'),
        FAILING,
        "InvalidSpec",
    ),
    case("custom available false", custom('[{type: Available, status: "False"}]'), DEGRADED, "NotAvailable"),
    case("custom without conditions", custom("[]"), HEALTHY),
    case("config map", CONFIG_MAP, HEALTHY),
    case("being deleted", DELETED, PROGRESSING, "Terminating"),
]


@pytest.mark.parametrize(("text", "health", "reason"), CASES)
def test_health_of_each_kind(text: str, health: Health, reason: str) -> None:
    result = judge(text)
    assert (result.health, result.reason) == (health, reason)


def test_the_key_reported_is_the_one_asked_about() -> None:
    key = ResourceKey("apps", "v1", "Deployment", "shop", "web")
    assert assess(key, yaml.safe_load(deployment())).key == key


def test_messages_say_what_is_wrong() -> None:
    assert judge(deployment(updated=1)).message == (
        "Waiting for rollout to finish: 1 out of 3 new replicas have been updated"
    )
    assert judge(pod(ready="False", containers=waiting("CrashLoopBackOff", "back-off 5m0s"))).message == (
        "container 'app': back-off 5m0s"
    )
    assert (
        judge(pod("Failed", ready="False", policy="Never", containers=FAILED_CONTAINER)).message
        == "config missing"
    )


def test_a_missing_object_is_failing() -> None:
    health = assess(ResourceKey("", "v1", "ConfigMap", "shop", "c"), None)
    assert (health.health, health.reason) == (FAILING, "Missing")


def test_a_workload_that_is_not_healthy_takes_the_reason_of_its_failing_pod() -> None:
    crashing = pod(
        ready="False", containers=waiting("CrashLoopBackOff", last=OOM_LAST), name="web-7d9f-zzzzz"
    )
    fine = pod(name="web-7d9f-aaaaa")
    result = judge(deployment(available=2), pods=(fine, crashing))
    assert (result.health, result.reason) == (FAILING, "OOMKilled")
    assert result.message.startswith("pod web-7d9f-zzzzz: container 'app' was OOMKilled")
    stuck = judge(job(), pods=(pod("Pending", ready="False", containers=waiting("ImagePullBackOff")),))
    assert (stuck.health, stuck.reason) == (FAILING, "ImagePullBackOff")


def test_a_healthy_workload_is_not_spoilt_by_one_bad_pod() -> None:
    crashing = pod(ready="False", containers=waiting("CrashLoopBackOff"))
    assert judge(deployment(), pods=(crashing,)).health == HEALTHY
    assert judge(deployment(available=2), pods=(pod(),)).health == PROGRESSING


FIELDS = [
    "status",
    "spec",
    "metadata",
    "conditions",
    "type",
    "reason",
    "phase",
    "containerStatuses",
    "state",
    "waiting",
    "lastState",
    "terminated",
    "replicas",
    "generation",
    "observedGeneration",
    "updateStrategy",
]
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(FIELDS), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(
        [
            ("apps", "Deployment"),
            ("apps", "StatefulSet"),
            ("apps", "DaemonSet"),
            ("apps", "ReplicaSet"),
            ("batch", "Job"),
            ("", "Pod"),
            ("", "PersistentVolumeClaim"),
            ("", "Service"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("apiregistration.k8s.io", "APIService"),
            ("example.com", "Widget"),
        ]
    ),
    st.dictionaries(st.sampled_from(["status", "spec", "metadata"]), JSON, max_size=3),
    st.lists(st.dictionaries(st.sampled_from(["status", "spec", "metadata"]), JSON, max_size=3), max_size=2),
)
def test_no_object_makes_assessing_it_raise(
    kind: tuple[str, str], obj: dict[str, Any], pods: list[Any]
) -> None:
    key = ResourceKey(kind[0], "v1", kind[1], "shop", "x")
    result = assess(key, obj, pods=pods)
    assert result.health in Health
    assert result.health != HEALTHY or result.reason == ""


# -- a stack -------------------------------------------------------------------------------------


def health(name: str, status: Health, reason: str = "") -> ResourceHealth:
    return ResourceHealth(ResourceKey("", "v1", "ConfigMap", "shop", name), status, reason)


@pytest.mark.parametrize(
    ("healths", "expected"),
    [
        ([], HEALTHY),
        ([HEALTHY, HEALTHY], HEALTHY),
        ([HEALTHY, UNKNOWN], UNKNOWN),
        ([UNKNOWN, PROGRESSING, HEALTHY], PROGRESSING),
        ([PROGRESSING, DEGRADED, UNKNOWN], DEGRADED),
        ([DEGRADED, FAILING, PROGRESSING, UNKNOWN, HEALTHY], FAILING),
    ],
)
def test_a_stack_is_as_healthy_as_its_worst_object(healths: list[Health], expected: Health) -> None:
    assert worst(healths) == expected


def test_the_stack_report_lists_every_object_sorted_with_the_worst_health() -> None:
    report = aggregate("stack-1", ref(3), [health("b", HEALTHY), health("a", FAILING, "CrashLoopBackOff")])
    assert report == StackHealth(
        "stack-1", ref(3), FAILING, (health("a", FAILING, "CrashLoopBackOff"), health("b", HEALTHY))
    )
