"""Stack updates, encoded once and sent to many agents.

When a stack changes, the broker pushes the same new version to every agent targeted by it, and
nearly all of them hold the same previous version, so they need the same delta. Building and
serializing a protobuf message from Python data costs about a third of a gRPC send, so the
broker session does not build messages for updates: it emits a `PlannedUpdate` (the desired
version, the delta, the full-state flag), and the stream loop turns it into bytes with one shared
`UpdateEncoder`, which encodes each distinct plan once.

The per-agent part is the nonce. It is a field of the `ConnectResponse` envelope, not of the
`StackUpdate`, so the encoder appends it to the shared bytes: a protobuf encoding followed by the
encoding of more fields parses as the merged message. The common path per agent is then one dict
lookup and a ~100-byte concatenation. The stream loop must therefore write bytes, registering
Connect with an identity response serializer and serializing the other (small, per-agent)
messages itself.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

from brokkr_common.pb.brokkr.v1 import agent_session_pb2, agent_session_service_pb2
from brokkr_common.session.delta import Delta
from brokkr_common.session.stacks import DesiredStack


@dataclass(frozen=True)
class PlannedUpdate:
    """A StackUpdate decided for one agent, before it gets its nonce.

    `full_state` is set when the broker does not know what the agent holds; `delta` is then
    the whole version (nothing to remove) and the agent prunes anything else of the stack.
    """

    desired: DesiredStack
    delta: Delta
    full_state: bool

    @property
    def cache_key(self) -> Hashable:
        """Equal for plans that encode to the same bytes (deployment objects are immutable)."""
        desired = self.desired
        return (
            desired.stack_id,
            desired.name,
            desired.deployment_object,
            self.delta,
            self.full_state,
            desired.force_conflicts,
        )

    def to_proto(self) -> agent_session_pb2.StackUpdate:
        manifests = self.desired.by_key
        return agent_session_pb2.StackUpdate(
            stack_id=self.desired.stack_id,
            stack_name=self.desired.name,
            deployment_object=self.desired.deployment_object.to_proto(),
            apply=[
                agent_session_pb2.ResourceManifest(
                    key=key.to_proto(), content_hash=digest, manifest=manifests[key].manifest
                )
                for key, digest in self.delta.to_apply
            ],
            remove=[key.to_proto() for key in self.delta.to_remove],
            full_state=self.full_state,
            force_conflicts=self.desired.force_conflicts,
        )


def encode_body(update: PlannedUpdate) -> bytes:
    """The encoded `ConnectResponse` carrying `update`, without a nonce."""
    return agent_session_service_pb2.ConnectResponse(stack_update=update.to_proto()).SerializeToString()


def with_nonce(body: bytes, nonce: str) -> bytes:
    """`body` (an encoded `ConnectResponse` without nonce) with `ConnectResponse.nonce` set."""
    return body + agent_session_service_pb2.ConnectResponse(nonce=nonce).SerializeToString()


class UpdateEncoder:
    """Encodes each distinct `PlannedUpdate` once; one per broker process, shared by all sessions.

    Bounded by the total size of the bodies it keeps, evicting the least recently used.
    Not thread-safe: use it from the event loop only.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._max_bytes = max_bytes
        self._bodies: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        #: Encodings served from the cache and encodings built, for metrics.
        self.hits = 0
        self.misses = 0

    def encode(self, update: PlannedUpdate, nonce: str) -> bytes:
        """The bytes of the `ConnectResponse` sending `update` with `nonce`."""
        key = update.cache_key
        body = self._bodies.get(key)
        if body is None:
            self.misses += 1
            body = encode_body(update)
            self._remember(key, body)
        else:
            self.hits += 1
            self._bodies.move_to_end(key)
        return with_nonce(body, nonce)

    def _remember(self, key: Hashable, body: bytes) -> None:
        if len(body) > self._max_bytes:
            return
        self._bodies[key] = body
        self._size += len(body)
        while self._size > self._max_bytes:
            _, evicted = self._bodies.popitem(last=False)
            self._size -= len(evicted)
