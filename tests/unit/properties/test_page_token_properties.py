"""Page tokens come back from clients, so any string may arrive as one. Whatever it is, decoding
gives a position a database can use in its query, or INVALID_PAGE_TOKEN: never another error.
Tokens are not signed, so forged ones with the right fingerprint are part of the input space."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.pagination import decode_page_token, fingerprint
from brokkr_common.errors import InvalidArgument

QUERY = fingerprint(method="ListStacks", principal=None)
INT64 = (-(2**63), 2**63 - 1)

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _token(document: object) -> str:
    raw = json.dumps(document).encode("utf-8", "surrogatepass")
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(token: str) -> tuple[str | int, ...] | None:
    """The position, or None when refused as INVALID_PAGE_TOKEN on `page_token` (other errors fail)."""
    try:
        return decode_page_token("page_token", token, QUERY)
    except InvalidArgument as error:
        refused = error
    assert refused.reason == "INVALID_PAGE_TOKEN"
    assert [v.field for v in refused.field_violations] == ["page_token"]
    return None


def _usable(position: tuple[str | int, ...]) -> bool:
    return all(
        (isinstance(key, int) and not isinstance(key, bool) and INT64[0] <= key <= INT64[1])
        or (isinstance(key, str) and not any(c == "\x00" or "\ud800" <= c <= "\udfff" for c in key))
        for key in position
    )


@settings(max_examples=200, deadline=None)
@given(
    token=st.text(max_size=300) | st.binary(max_size=200).map(lambda b: base64.urlsafe_b64encode(b).decode())
)
def test_any_string_is_a_usable_position_or_an_invalid_page_token(token: str) -> None:
    position = _decode(token)
    assert position is None or _usable(position)


@settings(max_examples=200, deadline=None)
@given(position=_json_values, version=st.sampled_from([1, 1, 1, 2, "1", None]))
def test_forged_documents_with_the_right_fingerprint_give_usable_positions_or_are_refused(
    position: object, version: object
) -> None:
    decoded = _decode(_token({"v": version, "p": position, "q": QUERY}))

    if decoded is not None:
        assert version == 1 and isinstance(position, list)
        assert decoded == tuple(position) and _usable(decoded)


@pytest.mark.parametrize(
    "position",
    [[2**63], [-(2**63) - 1], [10**30], ["a\x00b"], ["\ud800"], [True], [1.5], [None], [["nested"]]],
    ids=repr,
)
def test_positions_no_database_key_can_have_are_refused(position: list[object]) -> None:
    assert _decode(_token({"v": 1, "p": position, "q": QUERY})) is None


@pytest.mark.parametrize("position", [[2**63 - 1], [-(2**63)], ["", "web"], ["ünïcode", 0]], ids=repr)
def test_positions_at_the_edges_are_kept(position: list[object]) -> None:
    assert _decode(_token({"v": 1, "p": position, "q": QUERY})) == tuple(position)
