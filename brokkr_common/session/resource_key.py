"""Resource keys and content hashes as they cross the wire.

Both ends index what an agent holds by resource key, so the key must be a cheap hashable value
rather than a protobuf message (which is mutable and unhashable). Everything that arrives from the
other end is validated here before it is used as a dictionary key: a malformed key would otherwise
become a phantom object that is "held" forever, and an oversized one could bloat the broker's
memory for every session.
"""

from __future__ import annotations

import functools
import re
from typing import NamedTuple

from brokkr_common.errors import InvalidArgument
from brokkr_common.pb.brokkr.v1 import deployment_object_pb2

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_KIND = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_CONTENT_HASH = re.compile(r"[0-9a-f]{64}")
_MAX_SUBDOMAIN = 253


class ResourceKey(NamedTuple):
    """group/version/kind/namespace/name of one Kubernetes object; group is "" for the core group.

    Ordered field by field, which is the order of every key list on the wire.
    """

    group: str
    version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.group or 'core'}/{self.version}/{self.kind}/{where}{self.name}"

    @classmethod
    def from_proto(cls, message: deployment_object_pb2.ResourceKey, field: str) -> ResourceKey:
        """The validated key of `message`; `field` is its path in the request, for the error."""
        key = cls(message.group, message.version, message.kind, message.namespace, message.name)
        problem = _problem(key)
        if problem:
            raise InvalidArgument.for_field(field, problem, reason="MALFORMED_RESOURCE_KEY")
        return key

    def to_proto(self) -> deployment_object_pb2.ResourceKey:
        return deployment_object_pb2.ResourceKey(
            group=self.group, version=self.version, kind=self.kind, namespace=self.namespace, name=self.name
        )


@functools.lru_cache(maxsize=65536)
def _problem(key: ResourceKey) -> str:
    """What is wrong with `key` in Kubernetes' own terms, or "" if nothing is.

    Remembered: a push to thousands of agents brings back the same keys in every ack."""
    if key.group and not (len(key.group) <= _MAX_SUBDOMAIN and _DNS_SUBDOMAIN.fullmatch(key.group)):
        return f"group {key.group[:80]!r} is not a DNS subdomain of at most 253 characters"
    if not _DNS_LABEL.fullmatch(key.version):
        return f"version {key.version[:80]!r} is not a DNS label of at most 63 characters"
    if not _KIND.fullmatch(key.kind):
        return f"kind {key.kind[:80]!r} is not an identifier of at most 63 characters"
    if key.namespace and not _DNS_LABEL.fullmatch(key.namespace):
        return f"namespace {key.namespace[:80]!r} is not a DNS label of at most 63 characters"
    return _name_problem(key.name)


def _name_problem(name: str) -> str:
    # Kubernetes accepts more than DNS names for some kinds (RBAC names contain ':'), but every
    # name is a URL path segment: no '/', no '%', not '.' or '..'.
    if not 0 < len(name) <= _MAX_SUBDOMAIN:
        return "name must have 1 to 253 characters"
    if name in (".", "..") or "/" in name or "%" in name or not name.isprintable() or " " in name:
        return f"name {name[:80]!r} is not a valid object name"
    return ""


def validate_content_hash(value: str, field: str) -> str:
    """`value` if it is a SHA-256 as 64 lower-case hex digits, else INVALID_ARGUMENT."""
    if not _CONTENT_HASH.fullmatch(value):
        raise InvalidArgument.for_field(
            field, "must be a SHA-256 as 64 lower-case hex digits", reason="MALFORMED_CONTENT_HASH"
        )
    return value
