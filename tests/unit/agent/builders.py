"""Objects, updates and a cluster's discovery for the agent's planning tests."""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import yaml

from agent.reconcile.applyset import PART_OF_LABEL
from agent.reconcile.kinds import key_of
from agent.reconcile.plan import ClusterFacts
from brokkr_common.session.agent_session import Apply
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, DesiredResource

STACK = "3f2b8a4e-6c1d-4e0f-9a7b-2d5c8e1f0a93"

#: Whether each built-in kind the tests use is namespaced, as a cluster's discovery says.
BUILT_IN_KINDS: dict[tuple[str, str], bool] = {
    ("", "Namespace"): False,
    ("", "ConfigMap"): True,
    ("", "Secret"): True,
    ("", "Service"): True,
    ("", "ServiceAccount"): True,
    ("", "PersistentVolumeClaim"): True,
    ("", "Pod"): True,
    ("apps", "Deployment"): True,
    ("apps", "StatefulSet"): True,
    ("apps", "DaemonSet"): True,
    ("batch", "Job"): True,
    ("batch", "CronJob"): True,
    ("networking.k8s.io", "Ingress"): True,
    ("networking.k8s.io", "NetworkPolicy"): True,
    ("policy", "PodDisruptionBudget"): True,
    ("rbac.authorization.k8s.io", "Role"): True,
    ("rbac.authorization.k8s.io", "RoleBinding"): True,
    ("rbac.authorization.k8s.io", "ClusterRole"): False,
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"): False,
    ("scheduling.k8s.io", "PriorityClass"): False,
    ("storage.k8s.io", "StorageClass"): False,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): False,
    ("apiregistration.k8s.io", "APIService"): False,
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"): False,
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"): False,
}


def discovery(group: str, kind: str) -> bool | None:
    return BUILT_IN_KINDS.get((group, kind))


def cluster(*namespaces: str, parent_namespace: str = "brokkr-system") -> ClusterFacts:
    """A cluster serving the built-in kinds, with `namespaces` (plus the usual ones) existing."""
    existing = frozenset({"default", "kube-system", parent_namespace, *namespaces})
    return ClusterFacts(discovery, existing, parent_namespace)


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def desired(yaml_text: str) -> DesiredResource:
    """The object in `yaml_text` as the broker sends it: key, canonical JSON, its SHA-256."""
    obj = yaml.safe_load(yaml_text)
    manifest = canonical(obj)
    key = key_of(obj)
    assert key is not None
    return DesiredResource(key, hashlib.sha256(manifest.encode()).hexdigest(), manifest)


def ref(sequence: int) -> DeploymentObjectRef:
    return DeploymentObjectRef(
        f"do-{sequence}", sequence, hashlib.sha256(f"do-{sequence}".encode()).hexdigest()
    )


def update(
    sequence: int,
    *apply: DesiredResource,
    remove: tuple[ResourceKey, ...] = (),
    full_state: bool = False,
    stack_id: str = STACK,
) -> Apply:
    return Apply(f"nonce-{sequence}", stack_id, "shop", ref(sequence), apply, remove, full_state)


def live(resource: DesiredResource | dict[str, Any], applyset: str | None = None) -> dict[str, Any]:
    """The object as a cluster lists it: with server-set metadata, and labelled into `applyset`."""
    obj = json.loads(resource.manifest) if isinstance(resource, DesiredResource) else copy.deepcopy(resource)
    metadata = obj.setdefault("metadata", {})
    metadata.update(uid="6a1f0c1e-0000-4000-8000-000000000001", resourceVersion="4711", generation=1)
    if applyset is not None:
        metadata["labels"] = {**metadata.get("labels", {}), PART_OF_LABEL: applyset}
    return obj


NAMESPACE = desired("""
apiVersion: v1
kind: Namespace
metadata: {name: shop}
""")
CONFIG = desired("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {level: info}
""")
CONFIG_DEBUG = desired("""
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
data: {level: debug}
""")
DEPLOYMENT = desired("""
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: "nginx:1.27"}]
""")
SERVICE = desired("""
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{port: 80}]
""")
CLUSTER_ROLE = desired("""
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: shop-reader}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
""")
CRD = desired("""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: carts.shop.example.com}
spec:
  group: shop.example.com
  scope: Namespaced
  names: {kind: Cart, plural: carts, singular: cart, listKind: CartList}
  versions:
  - name: v1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
""")
CART = desired("""
apiVersion: shop.example.com/v1
kind: Cart
metadata: {name: default-cart, namespace: shop}
spec: {items: 3}
""")
