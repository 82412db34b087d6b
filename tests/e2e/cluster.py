"""The real cluster as the e2e tests see it: the official client, outside the agent.

The tests judge the agent by what a user would find in the cluster with kubectl, so they read it
with their own client, never through `agent.kube`. `Cluster` reads objects back (None when they
are gone), creates what a test needs to exist beforehand, and deletes what a test left behind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from tests.e2e.polling import eventually

Obj = dict[str, Any]

#: Where the agent keeps its ApplySet parent Secrets (its own namespace in a Helm install).
PARENT_NAMESPACE = "brokkr-system"
#: Label on every namespace and CRD an e2e test creates, valued with the test's id, for cleanup.
TEST_LABEL = "e2e.brokkr.io/test"
#: What the agent writes on its parents (see agent.reconcile.applyset, which the tests do not import).
PARENT_SELECTOR = "app.kubernetes.io/managed-by=brokkr-agent"
STACK_NAME_ANNOTATION = "brokkr.io/stack-name"


class Cluster:
    """The cluster at `kubeconfig`, through the official Kubernetes client."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.crds = client.ApiextensionsV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)

    def close(self) -> None:
        self.api_client.close()

    def version(self) -> str:
        return client.VersionApi(self.api_client).get_code().git_version

    # -- reading -------------------------------------------------------------------------------

    def namespace(self, name: str) -> Obj | None:
        return self._read(lambda: self.core.read_namespace(name))

    def config_map(self, namespace: str, name: str) -> Obj | None:
        return self._read(lambda: self.core.read_namespaced_config_map(name, namespace))

    def crd(self, name: str) -> Obj | None:
        return self._read(lambda: self.crds.read_custom_resource_definition(name))

    def custom_object(self, group: str, plural: str, namespace: str, name: str) -> Obj | None:
        return self._read(
            lambda: self.custom.get_namespaced_custom_object(group, "v1", namespace, plural, name)
        )

    def parent(self, stack_id: str, namespace: str = PARENT_NAMESPACE) -> Obj | None:
        """The stack's ApplySet parent Secret (in `namespace` for a namespace-scoped agent), or None."""
        name = f"brokkr-stack-{stack_id}"
        return self._read(lambda: self.core.read_namespaced_secret(name, namespace))

    def _read(self, read: Callable[[], Any]) -> Obj | None:
        """What `read` returns, as the JSON the API server sent; None on 404."""
        try:
            found = read()
        except ApiException as error:
            if error.status == 404:
                return None
            raise
        return found if isinstance(found, dict) else self.api_client.sanitize_for_serialization(found)

    # -- writing what a test needs beforehand --------------------------------------------------

    def create_namespace(self, name: str, test_id: str) -> None:
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {TEST_LABEL: test_id}},
        }
        self.core.create_namespace(body)

    def apply_config_map(self, namespace: str, name: str, data: dict[str, str], *, manager: str) -> None:
        """Server-side apply a ConfigMap as field manager `manager`, which then owns `data`."""
        body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}
        self.core.patch_namespaced_config_map(
            name, namespace, body, field_manager=manager, _content_type="application/apply-patch+yaml"
        )

    def ensure_namespace(self, name: str) -> bool:
        """Create namespace `name` unless it exists; whether it was created. One still being
        deleted (by an earlier run, say) is waited for first: nothing can be written into it."""
        found = eventually(lambda: self.namespace(name), _not_going, f"namespace {name} finalized")
        if found is not None:
            return False
        self.core.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        return True

    # -- cleaning up ---------------------------------------------------------------------------

    def delete_test_objects(self, test_id: str, *, stack_name_prefix: str) -> None:
        """Delete the namespaces and CRDs labelled with `test_id`, and the ApplySet parents of the
        stacks whose name starts with `stack_name_prefix`."""
        selector = f"{TEST_LABEL}={test_id}"
        for crd in self.crds.list_custom_resource_definition(label_selector=selector).items:
            _delete(self.crds.delete_custom_resource_definition, crd.metadata.name)
        for namespace in self.core.list_namespace(label_selector=selector).items:
            self.delete_namespace(namespace.metadata.name)
        for parent in self.core.list_namespaced_secret(
            PARENT_NAMESPACE, label_selector=PARENT_SELECTOR
        ).items:
            stack_name = (parent.metadata.annotations or {}).get(STACK_NAME_ANNOTATION, "")
            if stack_name.startswith(stack_name_prefix):
                _delete(self.core.delete_namespaced_secret, parent.metadata.name, PARENT_NAMESPACE)

    def delete_namespace(self, name: str) -> None:
        _delete(self.core.delete_namespace, name)


def is_gone_or_going(obj: Obj | None) -> bool:
    """Deleted, or being deleted: a namespace stays Terminating until the namespace controller has
    emptied it, which a bare API server without kube-controller-manager never does."""
    return obj is None or bool(obj["metadata"].get("deletionTimestamp"))


def _not_going(obj: Obj | None) -> bool:
    return obj is None or not obj["metadata"].get("deletionTimestamp")


def _delete(delete: Callable[..., Any], *names: str) -> None:
    """Call `delete` with an object's name (and namespace); already gone is fine."""
    try:
        delete(*names)
    except ApiException as error:
        if error.status != 404:
            raise
