"""Render Brokkr's Helm charts with real Helm, offline, and look into what comes out.

Helm here is the Helm Go library itself, loaded by `helm-python-sdk`; no helm binary and no
cluster. `render` returns the Kubernetes objects a `helm install` would send, plus NOTES.txt.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

CHARTS = Path(__file__).resolve().parents[3] / "charts"
BROKER = CHARTS / "brokkr-broker"
AGENT = CHARTS / "brokkr-agent"

NAMESPACE = "brokkr"
RELEASE = "brokkr"

Values = dict[str, Any]
KubeObject = dict[str, Any]


@functools.cache
def chart(path: Path) -> helm.Chart:
    """The chart at `path`, loaded once per test session."""
    return helm.Chart.load(path)


@dataclass(frozen=True)
class Release:
    """What one `helm install` of a chart would create."""

    objects: list[KubeObject]
    notes: str

    def all(self, kind: str) -> list[KubeObject]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> KubeObject:
        found = self.all(kind)
        assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
        return found[0]

    def has(self, kind: str) -> bool:
        return bool(self.all(kind))

    def container(self, kind: str = "Deployment") -> dict[str, Any]:
        containers = self.one(kind)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1
        return containers[0]

    def env(self, kind: str = "Deployment") -> dict[str, dict[str, Any]]:
        """The container's environment by variable name; names must be unique."""
        entries = self.container(kind)["env"]
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"duplicate environment variables: {names}"
        return {e["name"]: e for e in entries}

    def volume_for(self, mount_path: str) -> dict[str, Any]:
        """The pod volume mounted at `mount_path` in the container."""
        mounts = {m["mountPath"]: m for m in self.container()["volumeMounts"]}
        volumes = {v["name"]: v for v in self.one("Deployment")["spec"]["template"]["spec"]["volumes"]}
        return volumes[mounts[mount_path]["name"]]


def render(
    chart_path: Path, values: Values | None = None, *, release: str = RELEASE, namespace: str = NAMESPACE
) -> Release:
    """Render `chart_path` as `helm install <release> <chart> -n <namespace>` would, with `values`."""
    manifests = chart(chart_path).render(values or {}, name=release, namespace=namespace, is_install=True)
    objects: list[KubeObject] = []
    notes = ""
    for template, text in sorted(manifests.items()):
        if template.endswith("NOTES.txt"):
            notes = text
            continue
        objects.extend(document for document in yaml.load_all(text, Loader=yaml.CSafeLoader) if document)
    return Release(objects=objects, notes=notes)


def validate(chart_path: Path, values: Values) -> None:
    """Check `values` against the chart's values.schema.json, as `helm install` does first."""
    chart(chart_path).validate_schema(values)


def env_value(release: Release, name: str) -> str:
    entry = release.env()[name]
    assert "value" in entry, f"{name} is not a plain value: {entry}"
    return entry["value"]


def secret_ref(release: Release, name: str) -> tuple[str, str]:
    """(Secret name, key) an environment variable is read from."""
    ref = release.env()[name]["valueFrom"]["secretKeyRef"]
    return ref["name"], ref["key"]
