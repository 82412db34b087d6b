"""Stacks as the session hands them to the agent's runtime, and the manifests they are made of."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from agent.reconcile.kinds import key_of
from brokkr_common.session.agent_session import Apply
from brokkr_common.session.delta import Delta, apply_delta
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import UNKNOWN, DeploymentObjectRef, DesiredResource, HeldStack

STACK = "3f2b8a4e-6c1d-4e0f-9a7b-2d5c8e1f0a93"
PARENT_NAMESPACE = "brokkr-system"

Obj = dict[str, Any]

SCHEMALESS = {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def desired(obj: Obj) -> DesiredResource:
    """`obj` as the broker sends it: key, canonical JSON, and that JSON's SHA-256."""
    manifest = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    key = key_of(obj)
    assert key is not None
    return DesiredResource(key, hashlib.sha256(manifest.encode()).hexdigest(), manifest)


def ref(sequence: int) -> DeploymentObjectRef:
    return DeploymentObjectRef(
        f"do-{sequence}", sequence, hashlib.sha256(f"do-{sequence}".encode()).hexdigest()
    )


def update(
    sequence: int,
    *resources: DesiredResource,
    remove: Iterable[ResourceKey] = (),
    full_state: bool = False,
    stack_id: str = STACK,
    force_conflicts: bool = False,
) -> Apply:
    return Apply(
        f"nonce-{sequence}",
        stack_id,
        "shop",
        ref(sequence),
        resources,
        tuple(remove),
        full_state,
        force_conflicts,
    )


def holding(change: Apply, held: HeldStack = UNKNOWN) -> HeldStack:
    """What the agent holds once `change` is applied on top of `held`, as the session records it."""
    delta = Delta(tuple((r.key, r.content_hash) for r in change.apply), change.remove)
    hashes = apply_delta({} if change.full_state else held.resources, delta)
    return HeldStack(change.deployment_object, MappingProxyType(dict(hashes)))


def namespace(name: str) -> Obj:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def config_map(name: str, namespace: str = "shop", **data: str) -> Obj:
    """A ConfigMap holding `data`, by default one entry: an empty map is dropped when stored, so
    re-applying one changes managedFields' time once the clock has moved on, and so writes."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data or {"level": "info"},
    }


def deployment(name: str = "web", namespace: str = "shop", replicas: int = 2) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": "nginx:1.27"}]},
            },
        },
    }


def widget_crd(scope: str = "Namespaced") -> Obj:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": scope,
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


def widget(name: str = "gear", namespace: str = "shop", size: int = 3) -> Obj:
    """A Widget; cluster-scoped (of `widget_crd("Cluster")`) when `namespace` is empty."""
    metadata = {"name": name, "namespace": namespace} if namespace else {"name": name}
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": metadata, "spec": {"size": size}}
