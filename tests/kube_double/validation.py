"""The part of upstream validation the double enforces, and its unknown-field detection.

Validation failures are 422 `Invalid` with one cause per field, exactly as upstream words them.
Modelled rules, and nothing more:

* `metadata.name`: required (or `generateName`); a DNS-1123 label for Namespaces, a DNS-1035 label
  for Services, a path segment for RBAC kinds, a DNS-1123 subdomain for everything else.
* `metadata.labels`: keys are qualified names, values are label values.
* Deployment / StatefulSet / ReplicaSet: `spec.replicas >= 0`. Those and DaemonSet: `spec.selector`
  is required, non-empty, and matches `spec.template.metadata.labels`.
* CronJob: `spec.schedule` is required.
* Pod templates (workloads, Job, CronJob) and Pods: at least one container; each container has a
  unique DNS-1123-label `name` and an `image`.
* CustomResourceDefinition: see `crds.validate`.

Unknown fields are known only at the top level of built-in kinds and inside `metadata` (of every
kind); nested fields (`spec.replicaz`) are not checked, and custom resources are schemaless.
"""

from __future__ import annotations

import re
from typing import Any

from tests.kube_double import crds
from tests.kube_double.errors import JSON, FieldError
from tests.kube_double.kinds import OBJECT_META_FIELDS, ResourceType
from tests.kube_double.selectors import LabelSelector, Requirement, label_key_problem, label_value_problem

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
    "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_DNS_1035_MESSAGE = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
    "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
    "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_REPLICATED = frozenset({"Deployment", "StatefulSet", "ReplicaSet"})
_SELECTED = _REPLICATED | {"DaemonSet"}
#: Where each kind keeps its pod spec.
_POD_SPECS = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}


def dns_label_errors(field: str, value: str) -> list[FieldError]:
    errors = []
    if len(value) > 63:
        errors.append(FieldError.invalid(field, value, "must be no more than 63 characters"))
    if not _DNS_LABEL.match(value):
        errors.append(FieldError.invalid(field, value, _LABEL_MESSAGE))
    return errors


def _name_errors(resource_type: ResourceType, name: str) -> list[FieldError]:
    field = "metadata.name"
    if resource_type.kind == "Namespace":
        return dns_label_errors(field, name)
    if resource_type.builtin and resource_type.kind == "Service":
        errors = (
            [FieldError.invalid(field, name, "must be no more than 63 characters")] if len(name) > 63 else []
        )
        return errors + (
            [] if _DNS_1035.match(name) else [FieldError.invalid(field, name, _DNS_1035_MESSAGE)]
        )
    if resource_type.group == "rbac.authorization.k8s.io":
        bad = next((c for c in ("/", "%") if c in name), None)
        if name in (".", ".."):
            return [FieldError.invalid(field, name, f"may not be '{name}'")]
        return [FieldError.invalid(field, name, f"may not contain '{bad}'")] if bad else []
    errors = []
    if len(name) > 253:
        errors.append(FieldError.invalid(field, name, "must be no more than 253 characters"))
    if not _DNS_SUBDOMAIN.match(name):
        errors.append(FieldError.invalid(field, name, _SUBDOMAIN_MESSAGE))
    return errors


def _label_errors(labels: Any) -> list[FieldError]:
    if not isinstance(labels, dict):
        return []
    errors = []
    for key, value in labels.items():
        key_problem = label_key_problem(key)
        if key_problem is not None:
            errors.append(FieldError.invalid("metadata.labels", key, key_problem))
        value_problem = label_value_problem(value) if isinstance(value, str) else "must be a string"
        if value_problem is not None:
            errors.append(FieldError.invalid("metadata.labels", value, value_problem))
    return errors


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _selector(raw: JSON) -> LabelSelector:
    requirements = [Requirement(k, "=", (v,)) for k, v in (raw.get("matchLabels") or {}).items()]
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in raw.get("matchExpressions") or []:
        operator = operators.get(expression.get("operator", ""), "in")
        requirements.append(
            Requirement(expression.get("key", ""), operator, tuple(expression.get("values") or ()))
        )
    return LabelSelector(tuple(requirements))


def _workload_errors(kind: str, obj: JSON) -> list[FieldError]:
    errors = []
    replicas = _get(obj, "spec", "replicas")
    if kind in _REPLICATED and isinstance(replicas, int) and replicas < 0:
        errors.append(FieldError.invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
    if kind in _SELECTED:
        selector = _get(obj, "spec", "selector")
        labels = _get(obj, "spec", "template", "metadata", "labels") or {}
        if selector is None:
            errors.append(FieldError.required("spec.selector"))
        elif not selector.get("matchLabels") and not selector.get("matchExpressions"):
            errors.append(
                FieldError.invalid("spec.selector", selector, f"empty selector is invalid for {kind.lower()}")
            )
        elif not _selector(selector).matches(labels):
            errors.append(
                FieldError.invalid(
                    "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
                )
            )
    if kind == "CronJob" and not _get(obj, "spec", "schedule"):
        errors.append(FieldError.required("spec.schedule"))
    return errors


def _container_errors(kind: str, obj: JSON) -> list[FieldError]:
    pod_spec_path = _POD_SPECS.get(kind)
    if pod_spec_path is None:
        return []
    prefix = ".".join(pod_spec_path)
    containers = _get(obj, *pod_spec_path, "containers")
    if not containers:
        return [FieldError.required(f"{prefix}.containers")]
    errors: list[FieldError] = []
    seen: set[str] = set()
    for index, container in enumerate(containers):
        field = f"{prefix}.containers[{index}]"
        name = container.get("name") if isinstance(container, dict) else None
        if not name:
            errors.append(FieldError.required(f"{field}.name"))
        elif name in seen:
            errors.append(FieldError.duplicate(f"{field}.name", name))
        else:
            errors.extend(dns_label_errors(f"{field}.name", name))
        seen.add(name or "")
        if not isinstance(container, dict) or not container.get("image"):
            errors.append(FieldError.required(f"{field}.image"))
    return errors


def object_errors(resource_type: ResourceType, obj: JSON) -> list[FieldError]:
    """Everything wrong with `obj` (a complete object about to be stored), in upstream's words."""
    metadata = obj.get("metadata") or {}
    name = metadata.get("name")
    if not name:
        errors = [FieldError.required("metadata.name", "name or generateName is required")]
    else:
        errors = _name_errors(resource_type, name)
    errors += _label_errors(metadata.get("labels"))
    if resource_type.builtin:
        errors += _workload_errors(resource_type.kind, obj)
        errors += _container_errors(resource_type.kind, obj)
        if resource_type.kind == "CustomResourceDefinition":
            errors += crds.validate(obj)
    return errors


def unknown_fields(resource_type: ResourceType, obj: JSON) -> list[str]:
    """Dotted paths (`spec2`, `metadata.labelz`) of fields the kind does not declare."""
    unknown = []
    if resource_type.fields is not None:
        declared = resource_type.fields | {"apiVersion", "kind", "metadata"}
        unknown = [key for key in obj if key not in declared]
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        unknown += [f"metadata.{key}" for key in metadata if key not in OBJECT_META_FIELDS]
    return unknown
