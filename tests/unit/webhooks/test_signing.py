"""Webhook signatures as a receiver checks them: authentic, unchanged, recent."""

from __future__ import annotations

import hashlib
import hmac
import re
import textwrap
from collections.abc import Callable, Mapping
from typing import Any
from unittest import mock

import pytest
from hypothesis import given
from hypothesis import strategies as st

from brokkr_common import signing
from brokkr_common.signing import headers, sign, verify

SECRET = b"whsec-test-secret"
BODY = b'{"id":"e-1","type":"deployment.failed"}'
NOW = 1_700_000_000


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"v1={expected}"


def test_headers_carry_event_id_timestamp_and_signature() -> None:
    assert headers(SECRET, BODY, NOW + 0.9, "e-1") == {
        "Brokkr-Event-Id": "e-1",
        "Brokkr-Timestamp": "1700000000",
        "Brokkr-Signature": sign(SECRET, NOW, BODY),
    }


def test_a_signed_request_verifies() -> None:
    assert verify(SECRET, headers(SECRET, BODY, NOW, "e-1"), BODY, NOW)


@pytest.mark.parametrize(
    ("secret", "body"),
    [
        pytest.param(b"another-secret", BODY, id="wrong-secret"),
        pytest.param(SECRET, BODY + b" ", id="body-changed"),
        pytest.param(SECRET, BODY.replace(b"failed", b"applied"), id="body-rewritten"),
        pytest.param(SECRET, b"", id="body-dropped"),
    ],
)
def test_tampering_is_detected(secret: bytes, body: bytes) -> None:
    assert not verify(secret, headers(SECRET, BODY, NOW, "e-1"), body, NOW)


def test_the_timestamp_is_signed_too() -> None:
    moved = {**headers(SECRET, BODY, NOW, "e-1"), "Brokkr-Timestamp": str(NOW + 60)}
    assert not verify(SECRET, moved, BODY, NOW + 60)


@pytest.mark.parametrize(
    ("received_at", "valid"),
    [
        pytest.param(NOW, True, id="at-once"),
        pytest.param(NOW + 300, True, id="edge-of-window"),
        pytest.param(NOW + 301, False, id="replayed-later"),
        pytest.param(NOW - 300, True, id="receiver-clock-behind"),
        pytest.param(NOW - 301, False, id="from-the-future"),
    ],
)
def test_replay_window(received_at: int, valid: bool) -> None:
    assert verify(SECRET, headers(SECRET, BODY, NOW, "e-1"), BODY, received_at) is valid


def test_the_window_is_configurable() -> None:
    signed = headers(SECRET, BODY, NOW, "e-1")
    assert verify(SECRET, signed, BODY, NOW + 3000, tolerance_seconds=3600)
    assert not verify(SECRET, signed, BODY, NOW + 30, tolerance_seconds=10)


def test_header_names_are_case_insensitive() -> None:
    lowered = {name.lower(): value for name, value in headers(SECRET, BODY, NOW, "e-1").items()}
    assert verify(SECRET, lowered, BODY, NOW)


def test_any_of_several_signatures_may_match() -> None:
    signed = headers(SECRET, BODY, NOW, "e-1")
    rotating = {**signed, "Brokkr-Signature": f"v1={'0' * 64}, {signed['Brokkr-Signature']}"}
    assert verify(SECRET, rotating, BODY, NOW)


@pytest.mark.parametrize(
    "broken",
    [
        pytest.param({"Brokkr-Timestamp": ""}, id="no-timestamp"),
        pytest.param({"Brokkr-Timestamp": "soon"}, id="word-timestamp"),
        pytest.param({"Brokkr-Timestamp": "-1700000000"}, id="negative-timestamp"),
        pytest.param({"Brokkr-Timestamp": "\uff11" * 10}, id="fullwidth-digits"),
        pytest.param({"Brokkr-Signature": ""}, id="no-signature"),
        pytest.param({"Brokkr-Signature": "v2=abc"}, id="unknown-scheme"),
        pytest.param({"Brokkr-Signature": "v1=ünïcode"}, id="non-ascii-signature"),
    ],
)
def test_malformed_headers_do_not_verify(broken: dict[str, str]) -> None:
    assert not verify(SECRET, {**headers(SECRET, BODY, NOW, "e-1"), **broken}, BODY, NOW)


def test_verification_compares_in_constant_time() -> None:
    with mock.patch.object(signing.hmac, "compare_digest", wraps=hmac.compare_digest) as compare:
        assert verify(SECRET, headers(SECRET, BODY, NOW, "e-1"), BODY, NOW)
    compare.assert_called()


def documented_receiver() -> Callable[..., bool]:
    """The verification example from the module docstring, run as a receiver would run it."""
    example = re.search(r"    import hashlib.*?(?=\n\S|\Z)", signing.__doc__ or "", re.DOTALL)
    assert example is not None
    namespace: dict[str, Any] = {}
    exec(textwrap.dedent(example.group()), namespace)
    return namespace["verify"]


@pytest.mark.parametrize(
    ("body", "valid"), [pytest.param(BODY, True, id="authentic"), pytest.param(b"{}", False, id="tampered")]
)
def test_the_documented_recipe_verifies_what_the_broker_signs(body: bytes, valid: bool) -> None:
    receiver = documented_receiver()
    with mock.patch("time.time", return_value=NOW + 10):
        assert receiver(SECRET, headers(SECRET, BODY, NOW, "e-1"), body) is valid


@given(secret=st.binary(min_size=1, max_size=64), body=st.binary(max_size=512), now=st.integers(0, 2**40))
def test_round_trip(secret: bytes, body: bytes, now: int) -> None:
    signed: Mapping[str, str] = headers(secret, body, now, "event")
    assert verify(secret, signed, body, now)


@given(
    secret=st.binary(min_size=1, max_size=64),
    body=st.binary(min_size=1, max_size=512),
    position=st.integers(min_value=0),
    flip=st.integers(min_value=1, max_value=255),
)
def test_any_changed_byte_is_detected(secret: bytes, body: bytes, position: int, flip: int) -> None:
    changed = bytearray(body)
    changed[position % len(body)] ^= flip
    assert not verify(secret, headers(secret, body, NOW, "event"), bytes(changed), NOW)
