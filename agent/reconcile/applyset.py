"""What a stack holds in a cluster, recorded in the cluster itself as a Kubernetes ApplySet.

The ApplySet convention (KEP-3659, kubectl's `--applyset`) gives every set of applied objects a
*parent* object listing the group-kinds and namespaces of its members, and labels every member
with the set's id. Pruning then lists only those kinds in those namespaces, with a label selector,
so it never touches objects another agent or tool owns; and since the record lives in the cluster,
it survives agent restarts: `parse_parent` is what the agent reports in its Hello.

Brokkr's parent for a stack is a Secret named `brokkr-stack-<stack id>` in the agent's namespace
(`brokkr-system` by default). Why these choices:

* A Secret rather than a ConfigMap, because the parent records the SHA-256 of every object of the
  stack, Secrets included, and a low-entropy secret value can be recovered from its hash: the
  record must be as private as the objects. Both are parent kinds kubectl accepts.
* Named after the stack id, not the stack name: names change and are reused after deletion,
  and the ApplySet id is derived from the parent's name, so a rename would orphan every member.
* The per-object content hashes are in the Secret's data (`resources.json`), not in an
  annotation as kubectl-style metadata would suggest: all annotations of an object share 256 KiB,
  which holds about 2,500 entries, while a deployment object may hold 5,000 objects. Secret data
  may hold 1 MiB.

Besides the ApplySet's own label and annotations, the parent carries, under `brokkr.io/`: the
stack id and name, the deployment object last applied completely, and the namespaces Brokkr
created (it deletes no other namespace). The runtime applies the parent with server-side apply
and `force`, as kubectl does, so the agent's field manager owns every field listed here and
fields it leaves out are removed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, TypeVar

from agent.reconcile.errors import PermanentError
from agent.reconcile.kinds import GroupKind, labels_of
from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2
from brokkr_common.session.delta import Hashes
from brokkr_common.session.resource_key import ResourceKey, validate_content_hash
from brokkr_common.session.stacks import UNKNOWN, DeploymentObjectRef, HeldStack

DEFAULT_PARENT_NAMESPACE = "brokkr-system"
TOOL = "brokkr"
TOOLING = f"{TOOL}/v1"
PARENT = GroupKind("", "Secret")
PARENT_TYPE = "brokkr.io/applyset"
PARENT_NAME_PREFIX = "brokkr-stack-"

ID_LABEL = "applyset.kubernetes.io/id"
PART_OF_LABEL = "applyset.kubernetes.io/part-of"
TOOLING_ANNOTATION = "applyset.kubernetes.io/tooling"
GROUP_KINDS_ANNOTATION = "applyset.kubernetes.io/contains-group-kinds"
NAMESPACES_ANNOTATION = "applyset.kubernetes.io/additional-namespaces"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "brokkr-agent"
STACK_ID_ANNOTATION = "brokkr.io/stack-id"
STACK_NAME_ANNOTATION = "brokkr.io/stack-name"
DEPLOYMENT_OBJECT_ANNOTATION = "brokkr.io/deployment-object"
CREATED_NAMESPACES_ANNOTATION = "brokkr.io/created-namespaces"
RESOURCES_KEY = "resources.json"

#: Label selector of every stack's parent, for listing them at start-up.
PARENT_SELECTOR = f"{MANAGED_BY_LABEL}={MANAGED_BY},{ID_LABEL}"

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_MAX_STACK_ID = 64
_REF_FIELDS = frozenset({"id", "sequence_id", "checksum", "is_deletion_marker"})

T = TypeVar("T")


def applyset_id(name: str, namespace: str, kind: str, group: str) -> str:
    """The ApplySet id of the parent object `name` in `namespace` of `kind` in `group`:
    `applyset-<base64url(sha256(<name>.<namespace>.<kind>.<group>)), unpadded>-v1`."""
    digest = hashlib.sha256(f"{name}.{namespace}.{kind}.{group}".encode()).digest()
    return f"applyset-{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}-v1"


def parent_name(stack_id: str) -> str:
    """The name of the stack's parent Secret; PermanentError if the id cannot be part of a name
    (the broker's ids are UUIDs, which always can)."""
    name = PARENT_NAME_PREFIX + stack_id
    if not _DNS_SUBDOMAIN.fullmatch(name):
        raise PermanentError(
            f"stack id {stack_id!r} cannot name a Kubernetes object", reason="UNSUPPORTED_STACK_ID"
        )
    return name


def member_labels(applyset: str) -> dict[str, str]:
    """The labels that make an object a member of the ApplySet with id `applyset`."""
    return {PART_OF_LABEL: applyset}


@dataclass(frozen=True)
class RecordedState:
    """What the parent of one stack records.

    `deployment_object` is None while an apply or removal is under way or after one failed:
    then `resources` is empty and the agent holds the stack "unknown" (see `held`).
    `namespaces` are those the members may be in; the parent's own namespace always is, as the
    ApplySet specification says. `created_namespaces` are the namespaces Brokkr created and may
    delete once the stack no longer holds them.
    """

    stack_id: str
    parent_namespace: str = DEFAULT_PARENT_NAMESPACE
    deployment_object: DeploymentObjectRef | None = None
    resources: Hashes = field(default_factory=lambda: MappingProxyType({}))
    group_kinds: frozenset[GroupKind] = frozenset()
    namespaces: frozenset[str] = frozenset()
    created_namespaces: frozenset[str] = frozenset()
    stack_name: str = ""

    def __post_init__(self) -> None:
        if self.deployment_object is None and self.resources:
            raise ValueError("resources are recorded only with the deployment object applied")
        object.__setattr__(self, "resources", MappingProxyType(dict(self.resources)))
        object.__setattr__(self, "namespaces", self.namespaces | {self.parent_namespace})

    @property
    def parent_name(self) -> str:
        return parent_name(self.stack_id)

    @property
    def applyset_id(self) -> str:
        return applyset_id(self.parent_name, self.parent_namespace, PARENT.kind, PARENT.group)

    def held(self) -> HeldStack:
        """What to report in Hello for this stack."""
        if self.deployment_object is None:
            return UNKNOWN
        return HeldStack(self.deployment_object, self.resources)


def parent_manifest(state: RecordedState) -> dict[str, Any]:
    """The parent Secret recording `state`, to be applied with server-side apply and force."""
    annotations = {
        TOOLING_ANNOTATION: TOOLING,
        GROUP_KINDS_ANNOTATION: ",".join(sorted(str(gk) for gk in state.group_kinds)),
        NAMESPACES_ANNOTATION: ",".join(sorted(state.namespaces - {state.parent_namespace})),
        STACK_ID_ANNOTATION: state.stack_id,
        STACK_NAME_ANNOTATION: state.stack_name,
        CREATED_NAMESPACES_ANNOTATION: ",".join(sorted(state.created_namespaces)),
    }
    manifest: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": PARENT.kind,
        "type": PARENT_TYPE,
        "metadata": {
            "name": state.parent_name,
            "namespace": state.parent_namespace,
            "labels": {ID_LABEL: state.applyset_id, MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": annotations,
        },
    }
    if state.deployment_object is not None:
        annotations[DEPLOYMENT_OBJECT_ANNOTATION] = _compact(_ref_fields(state.deployment_object))
        hashes = {_encode_key(key): digest for key, digest in state.resources.items()}
        manifest["data"] = {RESOURCES_KEY: base64.b64encode(_compact(hashes).encode()).decode()}
    return manifest


def parse_parent(obj: Mapping[str, Any]) -> RecordedState | None:
    """What the parent `obj` records, or None if it is not a Brokkr parent consistent with its own
    name and id. Never raises: a damaged record yields less (an unknown deployment object, fewer
    kinds or namespaces), which makes the agent ask for a full state and delete less, never more."""
    identity = _identity(obj)
    if identity is None:
        return None
    stack_id, namespace = identity
    annotations = _annotations(obj)
    deployment_object = _parse_ref(annotations.get(DEPLOYMENT_OBJECT_ANNOTATION))
    resources = _parse_resources(obj.get("data")) if deployment_object is not None else None
    if resources is None:
        deployment_object, resources = None, {}
    return RecordedState(
        stack_id=stack_id,
        parent_namespace=namespace,
        deployment_object=deployment_object,
        resources=resources,
        group_kinds=_csv(annotations, GROUP_KINDS_ANNOTATION, _group_kind),
        namespaces=_csv(annotations, NAMESPACES_ANNOTATION, _namespace),
        created_namespaces=_csv(annotations, CREATED_NAMESPACES_ANNOTATION, _namespace),
        stack_name=_text(annotations.get(STACK_NAME_ANNOTATION)),
    )


def foreign_tooling(obj: Mapping[str, Any]) -> str | None:
    """The tooling annotation of `obj` if it marks an ApplySet parent of another tool, which Brokkr
    must leave alone (kubectl refuses likewise); None otherwise."""
    tooling = _text(_annotations(obj).get(TOOLING_ANNOTATION))
    return tooling if tooling and _tool(tooling) != TOOL else None


# -- reading -------------------------------------------------------------------------------------


def _identity(obj: Mapping[str, Any]) -> tuple[str, str] | None:
    """Stack id and namespace of a Brokkr parent whose name, id label and tooling agree."""
    metadata, annotations = obj.get("metadata"), _annotations(obj)
    is_secret = obj.get("apiVersion") == "v1" and obj.get("kind") == PARENT.kind
    if not (is_secret and isinstance(metadata, Mapping)):
        return None
    name, namespace = metadata.get("name"), metadata.get("namespace")
    stack_id = annotations.get(STACK_ID_ANNOTATION)
    if not (isinstance(name, str) and isinstance(namespace, str) and isinstance(stack_id, str)):
        return None
    consistent = (
        0 < len(stack_id) <= _MAX_STACK_ID
        and name == PARENT_NAME_PREFIX + stack_id
        and _DNS_SUBDOMAIN.fullmatch(name) is not None
        and labels_of(obj).get(ID_LABEL) == applyset_id(name, namespace, PARENT.kind, PARENT.group)
        and _tool(_text(annotations.get(TOOLING_ANNOTATION))) == TOOL
    )
    return (stack_id, namespace) if consistent else None


def _tool(tooling: str) -> str:
    """The tool of a tooling annotation `<tool>/<version>` (the tool may itself contain slashes)."""
    return tooling.rpartition("/")[0] if "/" in tooling else tooling


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    metadata = obj.get("metadata")
    annotations = metadata.get("annotations") if isinstance(metadata, Mapping) else None
    return annotations if isinstance(annotations, Mapping) else {}


def _parse_ref(text: object) -> DeploymentObjectRef | None:
    fields = _json(text)
    if not isinstance(fields, Mapping) or set(fields) != _REF_FIELDS:
        return None
    ref = DeploymentObjectRef(**fields)
    valid = (
        isinstance(ref.id, str)
        and 0 < len(ref.id) <= 64
        and ref.id.isascii()
        and ref.id.isprintable()
        and type(ref.sequence_id) is int
        and ref.sequence_id >= 1
        and isinstance(ref.checksum, str)
        and _is_hash(ref.checksum)
        and type(ref.is_deletion_marker) is bool
    )
    return ref if valid else None


def _parse_resources(data: object) -> dict[ResourceKey, str] | None:
    encoded = data.get(RESOURCES_KEY) if isinstance(data, Mapping) else None
    if not isinstance(encoded, str):
        return None
    try:
        entries = _json(base64.b64decode(encoded, validate=True).decode())
    except ValueError:  # not base64 (binascii.Error), not ASCII, or not UTF-8 inside
        return None
    if not isinstance(entries, Mapping):
        return None
    resources: dict[ResourceKey, str] = {}
    for text, digest in entries.items():
        key = _decode_key(text)
        if key is None or not (isinstance(digest, str) and _is_hash(digest)):
            return None
        resources[key] = digest
    return resources


def _csv(annotations: Mapping[str, Any], name: str, parse: Callable[[str], T | None]) -> frozenset[T]:
    """The valid entries of a comma-separated annotation; invalid ones are dropped."""
    entries = (parse(entry) for entry in _text(annotations.get(name)).split(",") if entry)
    return frozenset(entry for entry in entries if entry is not None)


def _group_kind(text: str) -> GroupKind | None:
    gk = GroupKind.parse(text)
    valid_group = not gk.group or _DNS_SUBDOMAIN.fullmatch(gk.group)
    return gk if _KIND.fullmatch(gk.kind) and valid_group else None


def _namespace(text: str) -> str | None:
    return text if _DNS_LABEL.fullmatch(text) else None


def _decode_key(text: str) -> ResourceKey | None:
    parts = text.split("/")
    if len(parts) != 5:
        return None
    group, version, kind, namespace, name = parts
    message = deployment_object_pb2.ResourceKey(
        group=group, version=version, kind=kind, namespace=namespace, name=name
    )
    try:
        return ResourceKey.from_proto(message, RESOURCES_KEY)
    except InvalidArgument:
        return None


def _is_hash(text: str) -> bool:
    try:
        validate_content_hash(text, DEPLOYMENT_OBJECT_ANNOTATION)
    except InvalidArgument:
        return False
    return True


def _json(text: object) -> object:
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


# -- writing -------------------------------------------------------------------------------------


def _encode_key(key: ResourceKey) -> str:
    """`group/version/kind/namespace/name`: no part of a valid key contains a slash."""
    return "/".join(key)


def _ref_fields(ref: DeploymentObjectRef) -> dict[str, Any]:
    return {
        "id": ref.id,
        "sequence_id": ref.sequence_id,
        "checksum": ref.checksum,
        "is_deletion_marker": ref.is_deletion_marker,
    }


def _compact(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))
