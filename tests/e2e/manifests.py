"""The stacks the e2e tests submit, as a user would write them: multi-document YAML.

Every name is derived from the test's id, and the namespaces and CRDs carry the test label, so
tests never collide with each other, with earlier runs, or with whatever else lives in the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tests.e2e.cluster import TEST_LABEL

Obj = dict[str, Any]


def stack_yaml(*objects: Obj) -> str:
    return yaml.safe_dump_all(objects, sort_keys=False)


@dataclass(frozen=True)
class Names:
    """The names one test uses; `test_id` is short, lower-case and unique per test."""

    test_id: str

    @property
    def namespace(self) -> str:
        return f"e2e-{self.test_id}"

    @property
    def stack_prefix(self) -> str:
        return f"e2e-{self.test_id}-"

    def stack(self, name: str) -> str:
        """The name of the test's stack `name`."""
        return self.stack_prefix + name

    @property
    def group(self) -> str:
        """The API group of the test's own CRD, so two runs never share a kind."""
        return f"{self.test_id}.e2e.brokkr.io"

    @property
    def crd_name(self) -> str:
        return f"widgets.{self.group}"

    def namespace_object(self, name: str | None = None) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name or self.namespace, "labels": {TEST_LABEL: self.test_id}},
        }

    def config_map(self, name: str, **data: str) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": self.namespace},
            "data": data,
        }

    def widget_crd(self) -> Obj:
        schema = {
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}}
            },
        }
        return {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.crd_name, "labels": {TEST_LABEL: self.test_id}},
            "spec": {
                "group": self.group,
                "scope": "Namespaced",
                "names": {
                    "kind": "Widget",
                    "plural": "widgets",
                    "singular": "widget",
                    "listKind": "WidgetList",
                },
                "versions": [
                    {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": schema}}
                ],
            },
        }

    def widget(self, name: str, size: int) -> Obj:
        return {
            "apiVersion": f"{self.group}/v1",
            "kind": "Widget",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {"size": size},
        }

    def deployment_selecting_nothing_it_runs(self, name: str) -> Obj:
        """A Deployment the API server refuses (422 Invalid): its selector does not match the labels
        of its pod template, though its schema is fine."""
        container = {"name": name, "image": "registry.k8s.io/pause:3.10"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": {
                "replicas": 0,
                "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": "other"}}, "spec": {"containers": [container]}},
            },
        }
