"""Stacks, versions and wire messages for the session tests, named so the tables read as prose."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from types import MappingProxyType

from google.rpc import code_pb2, status_pb2

from brokkr_common.errors import BrokkrError
from brokkr_common.pb.brokkr.v1 import agent_session_pb2 as pb
from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, DesiredResource, DesiredStack, HeldStack

SESSION = "session-1"
T0 = 1_700_000_000.0
STACK_A = "stack-a"
STACK_B = "stack-b"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def resource(
    kind: str, name: str, *, group: str = "", version: str = "v1", **spec: object
) -> DesiredResource:
    api_version = f"{group}/{version}" if group else version
    body = {"apiVersion": api_version, "kind": kind, "metadata": {"name": name, "namespace": "default"}}
    manifest = json.dumps({**body, "spec": spec}, sort_keys=True, separators=(",", ":"))
    return DesiredResource(ResourceKey(group, version, kind, "default", name), sha256(manifest), manifest)


def version(stack_id: str, sequence: int, *resources: DesiredResource) -> DesiredStack:
    ref = DeploymentObjectRef(f"{stack_id}-v{sequence}", sequence, sha256(f"{stack_id}/{sequence}"))
    return DesiredStack(stack_id, stack_id.upper(), ref, resources)


CONFIG = resource("ConfigMap", "settings", level="info")
CONFIG_CHANGED = resource("ConfigMap", "settings", level="debug")
SERVICE = resource("Service", "web", port=80)
DEPLOYMENT = resource("Deployment", "web", group="apps", replicas=2)

A1 = version(STACK_A, 1, CONFIG, SERVICE)
A2 = version(STACK_A, 2, CONFIG_CHANGED, SERVICE, DEPLOYMENT)  # changes CONFIG, adds DEPLOYMENT
A3 = version(STACK_A, 3, CONFIG_CHANGED, DEPLOYMENT)  # then drops SERVICE
B1 = version(STACK_B, 1, resource("Secret", "token", value="x"))


def holding(desired: DesiredStack) -> HeldStack:
    """What an agent holds after applying `desired`."""
    return HeldStack(desired.deployment_object, MappingProxyType(dict(desired.hashes)))


def holding_objects(ref: DeploymentObjectRef | None, resources: Iterable[DesiredResource]) -> HeldStack:
    return HeldStack(ref, MappingProxyType({r.key: r.content_hash for r in resources}))


def nonce(counter: int) -> str:
    return f"{SESSION}/{counter}"


# -- agent -> broker ---------------------------------------------------------------------------


def hello(held: dict[str, HeldStack] | None = None, **fields: object) -> service_pb.ConnectRequest:
    stacks = [stack.to_proto(stack_id) for stack_id, stack in (held or {}).items()]
    return service_pb.ConnectRequest(hello=pb.Hello(agent_version="1.0.0", stacks=stacks, **fields))


def ack(
    counter: int | str,
    stack_id: str,
    desired: DesiredStack | None = None,
    results: Sequence[pb.ResourceResult] = (),
) -> service_pb.ConnectRequest:
    message = pb.Ack(
        nonce=nonce(counter) if isinstance(counter, int) else counter,
        stack_id=stack_id,
        deployment_object=desired.deployment_object.to_proto() if desired else None,
        results=results,
    )
    return service_pb.ConnectRequest(ack=message)


FAILED = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="Deployment web: spec.replicas: invalid")


def nack(counter: int, stack_id: str, status: status_pb2.Status = FAILED) -> service_pb.ConnectRequest:
    return service_pb.ConnectRequest(nack=pb.Nack(nonce=nonce(counter), stack_id=stack_id, status=status))


def heartbeat(sequence: int) -> service_pb.ConnectRequest:
    return service_pb.ConnectRequest(
        heartbeat=pb.Heartbeat(kubernetes_reachable=True, kubernetes_api_latency_ms=12, sequence=sequence)
    )


# -- comparing actions -------------------------------------------------------------------------


def comparable(actions: Iterable[object]) -> list[object]:
    """Actions with errors (which compare by identity) replaced by their type, reason and fields."""
    return [_comparable(action) for action in actions]


def _comparable(action: object) -> object:
    error = getattr(action, "error", None)
    if isinstance(error, BrokkrError):
        fields = tuple(violation.field for violation in error.field_violations)
        return (type(action).__name__, type(error).__name__, error.reason, fields)
    return action
