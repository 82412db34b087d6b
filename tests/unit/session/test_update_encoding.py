"""One encoded StackUpdate serves every agent that needs the same delta; only the nonce differs."""

from __future__ import annotations

from brokkr_common.pb.brokkr.v1 import agent_session_service_pb2 as service_pb
from brokkr_common.session.delta import compute_delta
from brokkr_common.session.updates import PlannedUpdate, UpdateEncoder, encode_body
from tests.unit.session.builders import A1, A2, CONFIG_CHANGED, holding

FROM_A1 = PlannedUpdate(A2, compute_delta(holding(A1).resources, A2.hashes), full_state=False)
FULL = PlannedUpdate(A2, compute_delta({}, A2.hashes), full_state=True)


def decoded(data: bytes) -> service_pb.ConnectResponse:
    return service_pb.ConnectResponse.FromString(data)


def test_the_encoded_bytes_are_the_update_with_its_nonce() -> None:
    data = UpdateEncoder().encode(FROM_A1, "session-1/7")

    assert decoded(data) == service_pb.ConnectResponse(stack_update=FROM_A1.to_proto(), nonce="session-1/7")
    # Sorted by key: the core group ("") before "apps".
    assert [m.key.kind for m in decoded(data).stack_update.apply] == ["ConfigMap", "Deployment"]
    assert decoded(data).stack_update.apply[0].manifest == CONFIG_CHANGED.manifest


def test_agents_needing_the_same_delta_share_one_encoding() -> None:
    encoder = UpdateEncoder()
    # Two agents holding A1, reached by different sessions and with equal but distinct plans.
    twin = PlannedUpdate(A2, compute_delta(dict(A1.hashes), A2.hashes), full_state=False)

    first = encoder.encode(FROM_A1, "session-1/1")
    second = encoder.encode(twin, "session-2/5")

    assert (encoder.misses, encoder.hits) == (1, 1)
    assert decoded(first).stack_update == decoded(second).stack_update
    assert (decoded(first).nonce, decoded(second).nonce) == ("session-1/1", "session-2/5")


def test_a_different_delta_is_encoded_separately() -> None:
    encoder = UpdateEncoder()

    delta = decoded(encoder.encode(FROM_A1, "s/1")).stack_update
    full = decoded(encoder.encode(FULL, "s/2")).stack_update

    assert encoder.misses == 2
    assert (delta.full_state, len(delta.apply)) == (False, 2)
    assert (full.full_state, len(full.apply)) == (True, 3)


def test_the_cache_stays_within_its_byte_budget() -> None:
    budget = len(encode_body(FROM_A1)) + len(encode_body(FULL)) - 1
    encoder = UpdateEncoder(max_bytes=budget)

    encoder.encode(FROM_A1, "s/1")
    encoder.encode(FULL, "s/2")  # evicts FROM_A1
    encoder.encode(FULL, "s/3")
    data = encoder.encode(FROM_A1, "s/4")

    assert (encoder.misses, encoder.hits) == (3, 1)
    assert decoded(data).stack_update == FROM_A1.to_proto()


def test_an_update_larger_than_the_budget_is_still_encoded() -> None:
    encoder = UpdateEncoder(max_bytes=10)

    encoder.encode(FULL, "s/1")
    data = encoder.encode(FULL, "s/2")

    assert encoder.misses == 2
    assert decoded(data) == service_pb.ConnectResponse(stack_update=FULL.to_proto(), nonce="s/2")
