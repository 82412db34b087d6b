"""A routed request and what it says: its options, its body, and the checks upstream makes on them
before it touches storage.

Options are checked the way upstream validates `CreateOptions`, `UpdateOptions`, `PatchOptions` and
`DeleteOptions` (422 Invalid naming the option). Bodies must be of the URL's apiVersion and kind,
and name and namespace must agree with the URL (400). Unknown top-level and metadata fields follow
`fieldValidation`: `Strict` refuses them (400), `Warn` (the default since 1.23) drops them with a
`Warning` header, `Ignore` drops them silently.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from tests.kube_double import validation
from tests.kube_double.errors import (
    JSON,
    ApiError,
    FieldError,
    bad_request,
    options_invalid,
    untyped_server_error,
)
from tests.kube_double.kinds import ResourceType
from tests.kube_double.ownership import Scope
from tests.kube_double.patches import PatchError, json_patch, merge_patch
from tests.kube_double.routing import Target
from tests.kube_double.storage import ObjectKey

APPLY_PATCH = "application/apply-patch+yaml"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH, APPLY_PATCH)
_FIELD_VALIDATION = ("Ignore", "Strict", "Warn")
_PROPAGATION = ("Foreground", "Background", "Orphan")


@dataclass(frozen=True)
class Call:
    """A routed API request."""

    verb: str
    target: Target
    query: Mapping[str, list[str]]
    body: bytes = b""
    content_type: str = ""
    user_agent: str = ""

    def param(self, name: str) -> str:
        return self.query.get(name, [""])[0]

    @property
    def resource_type(self) -> ResourceType:
        return self.target.resource_type

    @property
    def scope(self) -> Scope:
        """The part of the object this call may write: all of it, its main part, or its status."""
        return Scope(self.resource_type.has_status, self.target.subresource)

    @property
    def patch_type(self) -> str:
        return self.content_type.split(";")[0].strip()

    @property
    def manager(self) -> str:
        """`fieldManager`, or else what upstream infers from the User-Agent (its part up to the first '/')."""
        return self.param("fieldManager") or self.user_agent.split("/")[0] or "unknown"

    def key(self, name: str | None = None) -> ObjectKey:
        resource_type = self.resource_type
        namespace = self.target.namespace or ""
        return ObjectKey(resource_type.group, resource_type.plural, namespace, name or self.target.name)


def write_options(call: Call, options_kind: str) -> bool:
    """Check `dryRun` and `fieldValidation`; True for a dry run."""
    errors = []
    dry_run = call.query.get("dryRun", [])
    if any(value != "All" for value in dry_run):
        errors.append(FieldError.not_supported("dryRun", dry_run[0], ["All"]))
    directive = call.param("fieldValidation")
    if directive and directive not in _FIELD_VALIDATION:
        errors.append(FieldError.not_supported("fieldValidation", directive, _FIELD_VALIDATION))
    if errors:
        raise options_invalid(options_kind, errors)
    return bool(dry_run)


def patch_options(call: Call) -> bool:
    """Check `PatchOptions` (apply needs a field manager, only apply may force); True for a dry run."""
    is_apply = call.patch_type == APPLY_PATCH
    errors = []
    if is_apply and not call.param("fieldManager"):
        errors.append(FieldError.required("fieldManager", "is required for apply patch"))
    if not is_apply and "force" in call.query:
        errors.append(FieldError.forbidden("force", "may not be specified for non-apply patch"))
    if errors:
        raise options_invalid("PatchOptions", errors)
    return write_options(call, "PatchOptions")


def delete_options(call: Call) -> bool:
    """Check `DeleteOptions` from the query and the body; True for a dry run."""
    try:
        body = json.loads(call.body) if call.body.strip() else {}
    except ValueError as error:
        raise bad_request(f"error decoding DeleteOptions: {error}") from error
    body = body if isinstance(body, dict) else {}
    policy = call.param("propagationPolicy") or body.get("propagationPolicy")
    dry_run = call.query.get("dryRun", []) or list(body.get("dryRun") or [])
    errors = []
    if policy and policy not in _PROPAGATION:
        errors.append(FieldError.not_supported("propagationPolicy", policy, [*_PROPAGATION, "nil"]))
    if any(value != "All" for value in dry_run):
        errors.append(FieldError.not_supported("dryRun", dry_run[0], ["All"]))
    if errors:
        raise options_invalid("DeleteOptions", errors)
    return bool(dry_run)


def check_identity(call: Call, obj: JSON) -> None:
    """The object's apiVersion, kind, namespace and name agree with the URL (else 400)."""
    resource_type, target = call.resource_type, call.target
    if obj.get("apiVersion") != resource_type.api_version:
        raise bad_request(
            f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API "
            f"version ({resource_type.api_version})"
        )
    if obj.get("kind") != resource_type.kind:
        raise bad_request(
            f'{obj.get("kind")} in version "{resource_type.version}" cannot be handled as a '
            f"{resource_type.kind}: the kind in the data does not match the kind of the resource"
        )
    metadata = obj.get("metadata") or {}
    if resource_type.namespaced and metadata.get("namespace") not in (None, "", target.namespace):
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    if target.name and metadata.get("name") not in (None, "", target.name):
        raise bad_request(
            f"the name of the object ({metadata['name']}) does not match the name on the URL ({target.name})"
        )


def drop_unknown(call: Call, obj: JSON) -> tuple[JSON, list[str]]:
    """`obj` without unknown fields, and the warnings to send; raises under `fieldValidation=Strict`."""
    unknown = validation.unknown_fields(call.resource_type, obj)
    if not unknown:
        return obj, []
    described = [f'unknown field "{path}"' for path in unknown]
    directive = call.param("fieldValidation") or "Warn"
    if directive == "Strict":
        kind, version = call.resource_type.kind, call.resource_type.version
        raise bad_request(
            f'{kind} in version "{version}" cannot be handled as a {kind}: strict decoding error: '
            + ", ".join(described)
        )
    kept = copy.deepcopy(obj)
    for path in unknown:
        parent, _, leaf = path.rpartition(".")
        (kept[parent] if parent else kept).pop(leaf, None)
    return kept, described if directive == "Warn" else []


def object_body(call: Call) -> tuple[JSON, list[str]]:
    """The body of a create or update: a whole object of the URL's kind, unknown fields handled."""
    try:
        body = json.loads(call.body or b"null")
    except ValueError as error:
        raise bad_request(f"couldn't get version/kind; json parse error: {error}") from error
    if not isinstance(body, dict) or not body.get("kind"):
        raise bad_request(f"Object 'Kind' is missing in '{call.body.decode(errors='replace')}'")
    check_identity(call, body)
    return drop_unknown(call, body)


def patched(call: Call, live: JSON) -> JSON:
    """`live` with the call's merge patch (also used for strategic merge) or JSON patch applied."""
    try:
        patch = json.loads(call.body or b"null")
    except ValueError as error:
        raise bad_request(f"error decoding patch: {error}") from error
    try:
        result = json_patch(live, patch) if call.patch_type == JSON_PATCH else merge_patch(live, patch)
    except PatchError as error:
        raise ApiError(422, "Invalid", str(error), {}) from error
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    result.get("metadata", {}).pop("managedFields", None)
    return result


def apply_configuration(call: Call) -> JSON:
    """The apply body (YAML or JSON), checked the way upstream's field manager checks it."""
    resource_type = call.resource_type
    try:
        config: Any = yaml.safe_load(call.body or b"")
    except yaml.YAMLError as error:
        raise bad_request(f"error decoding YAML: {error}") from error
    if not isinstance(config, dict):
        raise bad_request("error decoding YAML: the apply configuration must be an object")
    if config.get("apiVersion") != resource_type.api_version:
        specified = config.get("apiVersion") or ""
        raise bad_request(
            "Incorrect version specified in apply patch. "
            f"Specified patch version: {specified}, expected: {resource_type.api_version}"
        )
    if config.get("kind") != resource_type.kind:
        raise bad_request(
            f"the kind of the apply configuration ({config.get('kind')}) is not {resource_type.kind}"
        )
    metadata = config.get("metadata") or {}
    if metadata.get("managedFields") is not None:
        raise bad_request("metadata.managedFields must be nil")
    check_identity(call, {**config, "apiVersion": resource_type.api_version, "kind": resource_type.kind})
    return config


def typed_patch_error(call: Call, detail: str) -> ApiError:
    """Upstream's plain-error 500 for an apply configuration its schema cannot read."""
    resource_type, target = call.resource_type, call.target
    gvk = f"{resource_type.group}/{resource_type.version}, Kind={resource_type.kind}"
    where = f"{target.namespace or ''}/{target.name}; {gvk}"
    return untyped_server_error(f"failed to create typed patch object ({where}): {detail}")


def page(call: Call, total: int) -> tuple[int, int, str | None]:
    """(start, stop, next continue token) of the page `limit` and `continue` ask for."""
    token = call.param("continue")
    try:
        start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
    except ValueError as error:
        raise bad_request(f"invalid continue token: {error}") from error
    limit = int(call.param("limit") or 0)
    if limit <= 0 or start + limit >= total:
        return start, total, None
    return start, start + limit, base64.urlsafe_b64encode(str(start + limit).encode()).decode()
