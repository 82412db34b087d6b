"""Clusters for the tutorials: kube doubles, plus the one controller the tutorials need.

The kube double runs no controllers, so a Deployment an agent applies would stay progressing for
ever and `brokkrctl rollout status` would never finish. `RolloutController` plays the Deployment
controller's part: once a Deployment's spec is stored, it reports every replica updated, ready and
available for that generation, as a real cluster does a little later.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

from tests.kube_double.handle import KubeApi


class RolloutController:
    def __init__(self, clusters: list[KubeApi]) -> None:
        self._clusters = clusters
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-controller", daemon=True)

    def __enter__(self) -> RolloutController:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for cluster in self._clusters:
                for deployment in cluster.list_objects("apps/v1", "Deployment"):
                    self._roll_out(cluster, deployment)

    @staticmethod
    def _roll_out(cluster: KubeApi, deployment: dict) -> None:
        metadata = deployment["metadata"]
        generation = metadata.get("generation", 1)
        if (deployment.get("status") or {}).get("observedGeneration") == generation:
            return
        replicas = deployment.get("spec", {}).get("replicas", 1)
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        # The agent may delete it meanwhile (a pruned or deleted stack): nothing to report then.
        with contextlib.suppress(LookupError):
            cluster.set_status("apps/v1", "Deployment", metadata.get("namespace"), metadata["name"], status)


@contextlib.contextmanager
def clusters(directory: Path, *names: str) -> Iterator[dict[str, KubeApi]]:
    """One running kube double per name, each with its own kubeconfig, and the rollout controller."""
    with contextlib.ExitStack() as stack:
        running: dict[str, KubeApi] = {}
        for name in names:
            folder = directory / f"cluster-{name}"
            folder.mkdir()
            running[name] = stack.enter_context(KubeApi(folder))
        stack.enter_context(RolloutController(list(running.values())))
        yield running
        for name, api in running.items():
            failures = "\n".join(api.internal_errors)
            assert not api.internal_errors, f"the kube double {name} failed:\n{failures}"
