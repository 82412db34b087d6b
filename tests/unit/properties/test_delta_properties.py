"""Deltas for arbitrary holdings: exact, minimal, composable, and unchanged by the trip over the wire.

`tests/unit/session/test_session_properties.py` checks A->B on a small pool of keys and hashes;
here keys and hashes are drawn freely (any valid Kubernetes identity, any SHA-256), deltas are
chained, and the delta an agent receives is decoded from the bytes the broker would send.
"""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session.delta import Delta, Hashes, apply_delta, compute_delta
from brokkr_common.session.resource_key import ResourceKey
from brokkr_common.session.stacks import DeploymentObjectRef, DesiredResource, DesiredStack
from brokkr_common.session.updates import PlannedUpdate, UpdateEncoder

PROPERTIES = settings(max_examples=80, deadline=None)

_labels = st.text("abcxyz0189-", min_size=0, max_size=10).map(lambda middle: f"a{middle}z")
KEYS = st.builds(
    ResourceKey,
    group=st.sampled_from(["", "apps", "example.com", "rbac.authorization.k8s.io"]),
    version=st.sampled_from(["v1", "v1beta1", "v2alpha3"]),
    kind=st.sampled_from(["ConfigMap", "Secret", "Deployment", "Widget", "ClusterRole"]),
    namespace=st.sampled_from(["", "default"]) | _labels,
    name=_labels | st.sampled_from(["system:auth-delegator", "a.b.c"]),
)
DIGESTS = st.binary(min_size=1, max_size=8).map(lambda data: hashlib.sha256(data).hexdigest())
HASHES = st.dictionaries(KEYS, DIGESTS, max_size=25)


@PROPERTIES
@given(held=HASHES, desired=HASHES)
def test_the_delta_from_a_to_b_applied_to_a_is_b_and_sends_nothing_in_vain(
    held: Hashes, desired: Hashes
) -> None:
    delta = compute_delta(held, desired)

    assert apply_delta(held, delta) == desired
    # Minimal: every object sent differs from what is held; every key removed is not desired.
    assert {key for key, _ in delta.to_apply} == {
        key for key, digest in desired.items() if held.get(key) != digest
    }
    assert set(delta.to_remove) == set(held) - set(desired)
    # Sorted and without repeats, so equal deltas encode to equal bytes.
    assert list(delta.to_apply) == sorted(set(delta.to_apply))
    assert list(delta.to_remove) == sorted(set(delta.to_remove))
    assert bool(delta) == (dict(held) != dict(desired))


@PROPERTIES
@given(a=HASHES, b=HASHES, c=HASHES)
def test_deltas_chain_an_agent_through_any_sequence_of_versions(a: Hashes, b: Hashes, c: Hashes) -> None:
    via_b = apply_delta(apply_delta(a, compute_delta(a, b)), compute_delta(b, c))

    assert via_b == apply_delta(a, compute_delta(a, c)) == c


@PROPERTIES
@given(held=HASHES, desired=HASHES)
def test_a_full_state_update_from_nothing_brings_any_holding_to_b(held: Hashes, desired: Hashes) -> None:
    """After a Nack the broker knows nothing of the agent's holding and sends B in full; the agent
    replaces what it held with it (prunes the rest)."""
    full = compute_delta({}, desired)

    assert full.to_remove == ()
    assert apply_delta({}, full) == desired
    assert apply_delta(held, Delta(full.to_apply, tuple(sorted(set(held) - set(desired))))) == desired


def _version(stack_id: str, hashes: Hashes) -> DesiredStack:
    resources = tuple(
        DesiredResource(key, digest, f'{{"h":"{digest}"}}') for key, digest in sorted(hashes.items())
    )
    checksum = hashlib.sha256(repr(sorted(hashes.items())).encode()).hexdigest()
    return DesiredStack(stack_id, "stack", DeploymentObjectRef(f"{stack_id}-v1", 1, checksum), resources)


@PROPERTIES
@given(held=HASHES, desired=HASHES, nonce=st.text("abc0123456789/-", min_size=1, max_size=40))
def test_the_delta_survives_encoding_with_any_nonce(held: Hashes, desired: Hashes, nonce: str) -> None:
    delta = compute_delta(held, desired)
    plan = PlannedUpdate(_version("stack-1", desired), delta, full_state=False)
    encoder = UpdateEncoder()

    first = service_pb.ConnectResponse.FromString(encoder.encode(plan, nonce))
    second = service_pb.ConnectResponse.FromString(encoder.encode(plan, nonce + "x"))

    update = first.stack_update
    sent = Delta(
        tuple((ResourceKey.from_proto(r.key, "apply"), r.content_hash) for r in update.apply),
        tuple(ResourceKey.from_proto(key, "remove") for key in update.remove),
    )
    assert sent == delta
    assert apply_delta(held, sent) == desired
    assert first.nonce == nonce and second.nonce == nonce + "x"
    assert second.stack_update == update  # the shared body, another nonce
    assert (encoder.misses, encoder.hits) == (1, 1)
