"""Secrets at rest: sealed values open only with a configured key, and keys rotate without downtime."""

from __future__ import annotations

import pytest

from brokkr_common.errors import FailedPrecondition
from brokkr_common.secretbox import SecretBox, generate_key

URL = "https://hooks.slack.com/services/T000/B000/XXXXXXXX"


def test_round_trip() -> None:
    box = SecretBox([generate_key()])
    for secret in (URL, "Bearer ünïcødé-token", ""):
        assert box.decrypt(box.encrypt(secret)) == secret


def test_the_sealed_value_reveals_nothing_and_differs_each_time() -> None:
    box = SecretBox([generate_key()])
    first, second = box.encrypt(URL), box.encrypt(URL)
    assert first != second
    assert "hooks.slack.com" not in first
    assert "XXXXXXXX" not in first


def test_keys_may_be_bytes_or_text() -> None:
    key = generate_key()
    assert SecretBox([key.encode()]).decrypt(SecretBox([key]).encrypt(URL)) == URL


def test_rotation_new_key_first_old_keys_still_open() -> None:
    old, new = generate_key(), generate_key()
    sealed_before = SecretBox([old]).encrypt(URL)
    rotated = SecretBox([new, old])
    sealed_after = rotated.encrypt(URL)
    assert rotated.decrypt(sealed_before) == URL
    assert SecretBox([new]).decrypt(sealed_after) == URL
    with pytest.raises(FailedPrecondition):
        SecretBox([old]).decrypt(sealed_after)


def test_a_dropped_key_no_longer_opens_its_values() -> None:
    old, new = generate_key(), generate_key()
    sealed = SecretBox([old]).encrypt(URL)
    with pytest.raises(FailedPrecondition) as caught:
        SecretBox([new]).decrypt(sealed)
    assert caught.value.reason == "SECRET_UNREADABLE"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(
            lambda token: token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"), id="altered"
        ),
        pytest.param(lambda token: token[:20], id="truncated"),
        pytest.param(lambda token: "not a token", id="garbage"),
        pytest.param(lambda token: "ünïcode", id="non-ascii"),
    ],
)
def test_altered_values_do_not_open(change: object) -> None:
    box = SecretBox([generate_key()])
    with pytest.raises(FailedPrecondition):
        box.decrypt(change(box.encrypt(URL)))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        pytest.param([], "at least one encryption key is needed", id="none"),
        pytest.param(["too-short"], "an encryption key is malformed", id="malformed"),
        pytest.param([generate_key(), "x" * 44], "an encryption key is malformed", id="one-bad-among-good"),
    ],
)
def test_bad_key_settings_are_refused(keys: list[str], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        SecretBox(keys)


def test_generated_keys_are_distinct() -> None:
    assert len({generate_key() for _ in range(20)}) == 20
