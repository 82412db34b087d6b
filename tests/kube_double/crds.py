"""What a CustomResourceDefinition means to the double: the resource types it serves once Established.

Upstream serves a CRD's kinds only after its `Established` condition is True; the agent waits for
that before applying custom resources, so the double models the condition and lets a test hold it
back. Custom resources are schemaless here: their fields are neither validated nor pruned against
`openAPIV3Schema`, and all their lists are atomic for server-side apply (what upstream does for a
schema without list-type markers).
"""

from __future__ import annotations

import re
from typing import Any

from tests.kube_double.errors import JSON, FieldError
from tests.kube_double.kinds import ResourceType

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_STABILITY = {None: 2, "beta": 1, "alpha": 0}


def _version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key for Kubernetes version priority: v2 > v1 > v1beta2 > v1beta1 > v1alpha1 > anything else."""
    match = _KUBE_VERSION.match(version)
    if match is None:
        return (-1, 0, 0, version)
    major, stability, minor = match.groups()
    return (_STABILITY[stability], int(major), int(minor or 0), "")


def resource_types(crd: JSON) -> list[ResourceType]:
    """The resource types a CRD serves: one per served version."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec.get("versions", []):
        if not version.get("served", False):
            continue
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                kind=names["kind"],
                plural=names["plural"],
                namespaced=spec.get("scope") == "Namespaced",
                singular=names.get("singular", ""),
                short_names=tuple(names.get("shortNames", ())),
                categories=tuple(names.get("categories", ())),
                has_status="status" in (version.get("subresources") or {}),
                has_generation=True,
                fields=None,
            )
        )
    return types


def preferred_version(crd: JSON) -> str:
    served = [v["name"] for v in crd["spec"].get("versions", []) if v.get("served", False)]
    return max(served, key=_version_priority) if served else ""


def validate(crd: JSON) -> list[FieldError]:
    """The CRD rules the double checks: names present, metadata.name = plural.group, one storage version."""
    spec: dict[str, Any] = crd.get("spec") or {}
    names: dict[str, Any] = spec.get("names") or {}
    errors = []
    for field in ("group", "scope"):
        if not spec.get(field):
            errors.append(FieldError.required(f"spec.{field}"))
    if spec.get("scope") and spec["scope"] not in ("Namespaced", "Cluster"):
        errors.append(FieldError.not_supported("spec.scope", spec["scope"], ["Cluster", "Namespaced"]))
    for field in ("plural", "kind"):
        if not names.get(field):
            errors.append(FieldError.required(f"spec.names.{field}"))
    name = crd.get("metadata", {}).get("name", "")
    if names.get("plural") and spec.get("group") and name != f"{names['plural']}.{spec['group']}":
        errors.append(FieldError.invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    versions = spec.get("versions") or []
    if not versions:
        errors.append(
            FieldError.required("spec.versions", "must have exactly one version marked as storage version")
        )
    elif sum(1 for v in versions if v.get("storage")) != 1:
        errors.append(
            FieldError.invalid(
                "spec.versions", versions, "must have exactly one version marked as storage version"
            )
        )
    return errors


def status(crd: JSON, established: bool, now: str) -> JSON:
    """The status the apiextensions controllers would write: names accepted, and Established if it is."""
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", f"{names['kind']}List")
    conditions = [
        {
            "type": "NamesAccepted",
            "status": "True",
            "lastTransitionTime": now,
            "reason": "NoConflicts",
            "message": "no conflicts found",
        },
        {
            "type": "Established",
            "status": "True" if established else "False",
            "lastTransitionTime": now,
            "reason": "InitialNamesAccepted" if established else "Installing",
            "message": "the initial names have been accepted"
            if established
            else "the CRD is being installed",
        },
    ]
    storage = [v["name"] for v in crd["spec"].get("versions", []) if v.get("storage")]
    return {"conditions": conditions, "acceptedNames": names, "storedVersions": storage}
