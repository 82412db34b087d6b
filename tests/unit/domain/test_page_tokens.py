"""Page sizes and page tokens (AIP-158): a token continues its own query and nothing else."""

from __future__ import annotations

import base64
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.pagination import decode_page_token, encode_page_token, fingerprint, normalize_page_size
from brokkr_common.errors import InvalidArgument

QUERY = fingerprint(selector="app=web", include_deleted=False, order_by="name")


@pytest.mark.parametrize(
    ("page_size", "expected"),
    [(0, 50), (1, 1), (50, 50), (999, 999), (1000, 1000), (1001, 1000), (10**9, 1000)],
    ids=["zero-means-default", "one", "default", "below-maximum", "maximum", "above-maximum", "huge"],
)
def test_page_size_is_defaulted_and_capped(page_size: int, expected: int) -> None:
    assert normalize_page_size("page_size", page_size) == expected


def test_page_size_default_and_maximum_are_per_method() -> None:
    assert normalize_page_size("page_size", 0, default=10, maximum=20) == 10
    assert normalize_page_size("page_size", 25, default=10, maximum=20) == 20


def test_negative_page_size_is_invalid() -> None:
    with pytest.raises(InvalidArgument) as error:
        normalize_page_size("page_size", -1)
    assert error.value.reason == "INVALID_PAGE_SIZE"
    assert [(v.field, v.description) for v in error.value.field_violations] == [
        ("page_size", "must not be negative")
    ]


def test_the_empty_token_means_the_first_page() -> None:
    assert decode_page_token("page_token", "", QUERY) == ()


def test_a_token_returns_the_position_it_was_made_from_and_is_url_safe() -> None:
    token = encode_page_token(["web/ünïcode+name", 42], QUERY)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", token)
    assert decode_page_token("page_token", token, QUERY) == ("web/ünïcode+name", 42)


@settings(max_examples=100, deadline=None)
@given(
    position=st.lists(
        # Any sort key a database holds: text without NUL or lone surrogates, 64-bit integers.
        st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"))
        | st.integers(-(2**63), 2**63 - 1),
        max_size=4,
    )
)
def test_any_position_round_trips(position: list[str | int]) -> None:
    assert decode_page_token("page_token", encode_page_token(position, QUERY), QUERY) == tuple(position)


def test_fingerprints_are_stable_and_depend_on_every_filter() -> None:
    assert fingerprint(a=1, b=["x"]) == fingerprint(b=["x"], a=1)
    assert fingerprint(labels={"x": "1", "y": "2"}) == fingerprint(labels={"y": "2", "x": "1"})
    assert len({fingerprint(a=1), fingerprint(a=2), fingerprint(a=1, b=None), fingerprint(a="1")}) == 4


def test_a_token_for_another_query_is_refused() -> None:
    token = encode_page_token(["web"], fingerprint(selector="app=web"))
    with pytest.raises(InvalidArgument) as error:
        decode_page_token("page_token", token, fingerprint(selector="app=db"))
    assert error.value.reason == "INVALID_PAGE_TOKEN"
    (violation,) = error.value.field_violations
    assert violation.field == "page_token"
    assert violation.description.startswith("belongs to a query with other filters or ordering")


def _b64(document: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "garbage!",
        "%%%%",
        "é",
        "YQ",
        _b64(["not", "an", "object"]),
        _b64({"v": 2, "p": ["web"], "q": QUERY}),
        _b64({"p": ["web"], "q": QUERY}),
        _b64({"v": 1, "p": "web", "q": QUERY}),
        _b64({"v": 1, "p": [True], "q": QUERY}),
        _b64({"v": 1, "p": [1.5], "q": QUERY}),
        _b64({"v": 1, "p": [["nested"]], "q": QUERY}),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[" * 3000).decode(),
        _b64({"v": 1, "p": ["x" * 5000], "q": QUERY}),
    ],
    ids=[
        "not-base64",
        "percent-signs",
        "non-ascii",
        "not-json",
        "json-list",
        "future-version",
        "no-version",
        "position-not-list",
        "position-boolean",
        "position-float",
        "position-nested",
        "not-utf8",
        "deeply-nested-json",
        "oversized",
    ],
)
def test_tokens_not_minted_here_are_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        decode_page_token("page_token", token, QUERY)
    assert error.value.reason == "INVALID_PAGE_TOKEN"
    (violation,) = error.value.field_violations
    assert violation.field == "page_token"
    assert violation.description.startswith("is not a page token returned by this method")
