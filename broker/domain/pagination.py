"""Page sizes and opaque page tokens for list methods (AIP-158).

A list method orders its rows by a unique key and resumes after the last row it returned (keyset
pagination), so pages stay consistent while rows are added and cost the same however deep they go.
The page token carries that position plus a fingerprint of the filters that shaped the query: a
token can only continue the query it came from, and a client that changes filters between pages
gets INVALID_PAGE_TOKEN instead of a silently wrong page. `page_size` is not part of the
fingerprint, so AIP-158 clients may change it between pages.

Tokens are URL-safe base64 of a small versioned JSON document. They are opaque, not secret, and
not signed: a hand-made token can only move the starting point within a query the caller is
already allowed to run, because authorization filters every page.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Sequence

from brokkr_common.errors import InvalidArgument

_VERSION = 1
#: Longer tokens are refused before decoding; real ones hold a few keys and a fingerprint.
_MAX_TOKEN_LENGTH = 4096
_FINGERPRINT_HEX_DIGITS = 32
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_BAD_TEXT = re.compile("[\x00\ud800-\udfff]")


def normalize_page_size(field: str, page_size: int, default: int = 50, maximum: int = 1000) -> int:
    """0 means `default`; above `maximum` is capped (AIP-158); negative is an error."""
    if page_size < 0:
        raise InvalidArgument.for_field(field, "must not be negative", "INVALID_PAGE_SIZE")
    return min(page_size or default, maximum)


def fingerprint(**query_params: object) -> str:
    """A stable hash of the filters and ordering that shaped a query.

    Values must be JSON-serialisable: pass a label selector as its canonical `str()`.
    """
    canonical = json.dumps(query_params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:_FINGERPRINT_HEX_DIGITS]


def encode_page_token(position: Sequence[str | int], query_fingerprint: str) -> str:
    """The token for the page after `position` (the sort key of the last row returned)."""
    document = {"v": _VERSION, "p": list(position), "q": query_fingerprint}
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(field: str, token: str, query_fingerprint: str) -> tuple[str | int, ...]:
    """The position a token resumes after; () for "" (the first page).

    INVALID_PAGE_TOKEN when the token is not one of ours or was issued for another query.
    """
    if not token:
        return ()
    document = _decode(token) if len(token) <= _MAX_TOKEN_LENGTH else None
    if not isinstance(document, dict) or document.get("v") != _VERSION or not _is_position(document.get("p")):
        raise InvalidArgument.for_field(
            field,
            "is not a page token returned by this method; start again with an empty token",
            "INVALID_PAGE_TOKEN",
        )
    if document.get("q") != query_fingerprint:
        raise InvalidArgument.for_field(
            field,
            "belongs to a query with other filters or ordering; keep them unchanged between pages, "
            "or start again with an empty token",
            "INVALID_PAGE_TOKEN",
        )
    return tuple(document["p"])


def _decode(token: str) -> object:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        return json.loads(raw.decode("utf-8"))
    except (ValueError, RecursionError):  # bad base64, UTF-8 or JSON; absurdly nested JSON
        return None


def _is_position(value: object) -> bool:
    return isinstance(value, list) and all(_is_key(item) for item in value)


def _is_key(item: object) -> bool:
    """A sort key a database can compare with: a 64-bit integer, or text without NUL (PostgreSQL
    text cannot hold it) that is valid Unicode (JSON escapes can spell lone surrogates). A hand-made
    token may hold anything; anything else would fail in the query, not as a bad token."""
    if isinstance(item, bool):
        return False
    if isinstance(item, int):
        return _INT64_MIN <= item <= _INT64_MAX
    return isinstance(item, str) and _BAD_TEXT.search(item) is None
