"""Keys that cannot be valid are refused before storage is touched."""

from __future__ import annotations

import pytest

from broker.services import keys
from brokkr_common.errors import Unauthenticated


class UntouchableUnitOfWork:
    async def __aenter__(self):
        raise AssertionError("authentication read storage for a key that cannot be valid")

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@pytest.mark.parametrize(
    ("authorization", "reason"),
    [
        (None, "KEY_MISSING"),
        ("", "KEY_MISSING"),
        ("Bearer", "KEY_MISSING"),
        ("bearer    ", "KEY_MISSING"),
        ("Bearer brokkr_short", "KEY_MALFORMED"),
        ("Basic dXNlcjpwYXNz", "KEY_MALFORMED"),
        ("brokkr_0123456789abcdef_tooshort", "KEY_MALFORMED"),
    ],
)
async def test_missing_and_malformed_keys(authorization: str | None, reason: str):
    with pytest.raises(Unauthenticated) as raised:
        await keys.authenticate(UntouchableUnitOfWork(), authorization)  # type: ignore[arg-type]
    assert raised.value.reason == reason
