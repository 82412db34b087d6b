"""What applying a stack costs: a 100-object stack applied, then re-applied unchanged.

Measured against the kube double (started in this process) and, when BROKKR_TEST_KUBECONFIG names
a kubeconfig, against that cluster too. Two ways of applying, in the same run:

* brokkr:   `agent.kube.Cluster.apply`: dry run of the whole stack, the ApplySet record, waves
            applied kind by kind with up to 8 requests in flight, pruning.
* baseline: the same objects, one plain server-side apply after the other through the same client
            (`KubeClient` and its discovery), with no planning: no dry run, no record, no prune.

Per run: wall time, API calls by HTTP method (PATCH dry runs apart), requests that ask for a
change ("write requests"), and on the double the writes its store took. The re-apply is the
interesting row: Brokkr's must write nothing at all.

    .venv/bin/python -m bench.apply [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from agent.config import KubernetesSettings
from agent.kube import Cluster
from agent.kube.client import KubeClient, configuration
from agent.kube.discovery import Discovery
from agent.kube.retrying import RetryPolicy
from agent.reconcile.kinds import GroupKind, key_of
from brokkr_common.session.stacks import UNKNOWN
from tests.integration.agent_kube.stacks import desired, holding, namespace, update
from tests.kube_double.handle import KubeApi

OBJECTS = 100
_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class CountingApiClient(client.ApiClient):
    """The official client, counting every request it sends by method (dry runs apart)."""

    def __init__(self, configuration: client.Configuration) -> None:
        super().__init__(configuration)
        self.calls: Counter[str] = Counter()

    def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        self.calls[f"{method} (dry run)" if "dryRun=" in url else method] += 1
        return super().call_api(method, url, *args, **kwargs)


@dataclass
class Run:
    target: str
    method: str
    run: str
    wall_seconds: float
    calls: dict[str, int]
    write_requests: int
    stored_writes: int | None


@dataclass
class Target:
    """A cluster to measure against: a kubeconfig, and the double's store if it is the double."""

    name: str
    kubeconfig: Path
    stored_writes: Callable[[], int] | None = None


def manifests(ns: str) -> list[dict[str, Any]]:
    """100 objects of the kinds a typical application stack has, in namespace `ns`."""

    def make(api_version: str, kind: str, name: str, **fields: Any) -> dict[str, Any]:
        return {
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": ns},
            **fields,
        }

    rbac = "rbac.authorization.k8s.io/v1"
    reader = [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]
    objects = [namespace(ns)]
    objects += [make("v1", "ConfigMap", f"config-{i}", data={"i": str(i)}) for i in range(40)]
    objects += [make("v1", "Secret", f"secret-{i}", data={"k": _base64(str(i))}) for i in range(20)]
    objects += [make("v1", "ServiceAccount", f"account-{i}") for i in range(10)]
    objects += [make("v1", "Service", f"app-{i}", spec=_service_spec(f"app-{i}")) for i in range(10)]
    objects += [
        make("apps/v1", "Deployment", f"app-{i}", spec=_deployment_spec(f"app-{i}")) for i in range(10)
    ]
    objects += [make(rbac, "Role", f"role-{i}", rules=reader) for i in range(5)]
    objects += [
        make(
            rbac,
            "RoleBinding",
            f"binding-{i}",
            roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"role-{i}"},
            subjects=[{"kind": "ServiceAccount", "name": f"account-{i}", "namespace": ns}],
        )
        for i in range(4)
    ]
    assert len(objects) == OBJECTS
    return objects


def _base64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _service_spec(app: str) -> dict[str, Any]:
    return {"selector": {"app": app}, "ports": [{"port": 80}]}


def _deployment_spec(app: str) -> dict[str, Any]:
    """No replicas: on a real cluster the benchmark measures the API, not the scheduler."""
    container = {"name": app, "image": "nginx:1.27"}
    template = {"metadata": {"labels": {"app": app}}, "spec": {"containers": [container]}}
    return {"replicas": 0, "selector": {"matchLabels": {"app": app}}, "template": template}


def counting_client(settings: KubernetesSettings) -> tuple[KubeClient, CountingApiClient]:
    """A `KubeClient` configured as the agent's, over a counting official client."""
    api_client = CountingApiClient(configuration(settings))
    retry = RetryPolicy(retries=settings.max_apply_retries)
    return KubeClient(api_client, timeout=settings.request_timeout_seconds, retry=retry), api_client


async def measure(
    target: Target, method: str, run: str, counter: CountingApiClient, work: Callable[[], Awaitable[Any]]
) -> Run:
    counter.calls.clear()
    stored = target.stored_writes() if target.stored_writes else 0
    started = time.perf_counter()
    await work()
    wall = time.perf_counter() - started
    calls = dict(sorted(counter.calls.items()))
    writes = sum(n for what, n in calls.items() if what in _WRITES)
    after = target.stored_writes() - stored if target.stored_writes else None
    return Run(target.name, method, run, round(wall, 3), calls, writes, after)


async def bench_brokkr(target: Target, suffix: str) -> list[Run]:
    settings = KubernetesSettings(kubeconfig=target.kubeconfig)
    api, counter = counting_client(settings)
    parents = f"brokkr-bench-{suffix}-system"
    await api.apply(f"/api/v1/namespaces/{parents}", namespace(parents), field_manager="bench")
    cluster = Cluster(settings, parent_namespace=parents, api=api)
    objects = map(desired, manifests(f"brokkr-bench-{suffix}"))
    change = update(1, *objects, full_state=True, stack_id=str(uuid.uuid4()))
    try:
        first = await measure(target, "brokkr", "apply", counter, lambda: cluster.apply(change, UNKNOWN))
        again = await measure(
            target, "brokkr", "re-apply", counter, lambda: cluster.apply(change, holding(change))
        )
        await cluster.remove(change.stack_id, holding(change))
        await api.delete(f"/api/v1/namespaces/{parents}")
    finally:
        cluster.close()
    return [first, again]


async def bench_baseline(target: Target, suffix: str) -> list[Run]:
    api, counter = counting_client(KubernetesSettings(kubeconfig=target.kubeconfig))
    discovery = Discovery(api)
    objects = manifests(f"brokkr-bench-{suffix}-base")

    async def apply_all() -> None:
        for obj in objects:
            key = key_of(obj)
            assert key is not None
            resource = await discovery.find(GroupKind.of(key))
            assert resource is not None
            await api.apply(resource.object_path(key), obj, field_manager="bench-baseline")

    try:
        first = await measure(target, "baseline", "apply", counter, apply_all)
        again = await measure(target, "baseline", "re-apply", counter, apply_all)
        await api.delete(f"/api/v1/namespaces/{objects[0]['metadata']['name']}")
    finally:
        api.close()
    return [first, again]


@contextmanager
def double() -> Iterator[Target]:
    with tempfile.TemporaryDirectory() as directory, KubeApi(Path(directory)) as kube_api:
        yield Target("double", kube_api.kubeconfig_path, lambda: kube_api.write_count)


async def bench(target: Target) -> list[Run]:
    suffix = uuid.uuid4().hex[:6]
    return [*await bench_brokkr(target, suffix), *await bench_baseline(target, suffix)]


async def main_async() -> list[Run]:
    runs: list[Run] = []
    with double() as target:
        runs += await bench(target)
    real = os.environ.get("BROKKR_TEST_KUBECONFIG")
    if real:
        runs += await bench(Target("cluster", Path(real)))
    return runs


def table(runs: list[Run]) -> str:
    methods = sorted({what for run in runs for what in run.calls})
    header = ["target", "method", "run", "wall s", "calls", *methods, "write requests", "stored writes"]
    rows = [
        [
            run.target,
            run.method,
            run.run,
            f"{run.wall_seconds:.3f}",
            str(sum(run.calls.values())),
            *(str(run.calls.get(what, 0)) for what in methods),
            str(run.write_requests),
            "-" if run.stored_writes is None else str(run.stored_writes),
        ]
        for run in runs
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    return "\n".join([f"{OBJECTS}-object stack", *lines])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the runs as JSON instead of a table")
    as_json = parser.parse_args().json
    runs = asyncio.run(main_async())
    print(json.dumps([asdict(run) for run in runs], indent=2) if as_json else table(runs))


if __name__ == "__main__":
    main()
