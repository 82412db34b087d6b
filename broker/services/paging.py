"""Pages of list results (AIP-158) over the repositories' keyset queries.

A list validates its page size and token along with its other fields (`plan`), then `collect`s one
page. When a filter cannot be answered in SQL alone (label selectors with `!=`, `notin`, `!key`),
`keep` filters in Python and `collect` reads on until the page is full, so pages are never short
just because rows were filtered out.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from broker.domain.model import Page
from broker.domain.pagination import decode_page_token, encode_page_token, fingerprint, normalize_page_size
from broker.domain.ports import Position
from broker.domain.validation import Violations

T = TypeVar("T")

#: Rows read per query when filtering in Python.
SCAN_BATCH = 200


@dataclass(frozen=True)
class PagePlan:
    size: int
    after: Position
    fingerprint: str


def plan(
    violations: Violations, *, page_size: int, page_token: str, position: tuple[type, ...], **query: object
) -> PagePlan:
    """Check page size and token; `position` is the types of the list's sort key, `query` its filters."""
    size = violations.check(normalize_page_size, "page_size", page_size) or 1
    query_fingerprint = fingerprint(**query)
    after = violations.check(decode_page_token, "page_token", page_token, query_fingerprint) or ()
    if after and (len(after) != len(position) or not all(map(isinstance, after, position))):
        violations.add("page_token", "is not a page token returned by this method", "INVALID_PAGE_TOKEN")
        after = ()
    return PagePlan(size, after, query_fingerprint)


async def collect(
    page: PagePlan,
    fetch: Callable[[Position, int], Awaitable[Sequence[T]]],
    position_of: Callable[[T], Position],
    keep: Callable[[T], bool] | None = None,
) -> Page[T]:
    """One page: `fetch(after, limit)` returns rows in order; `position_of` gives a row's sort key."""
    wanted = page.size + 1  # one more than the page tells whether another page follows
    batch_size = wanted if keep is None else max(wanted, SCAN_BATCH)
    items: list[T] = []
    after = page.after
    while len(items) < wanted:
        batch = await fetch(after, batch_size)
        items.extend(row for row in batch if keep is None or keep(row))
        if len(batch) < batch_size:
            break
        after = position_of(batch[-1])
    if len(items) <= page.size:
        return Page(tuple(items))
    shown = items[: page.size]
    return Page(tuple(shown), encode_page_token(position_of(shown[-1]), page.fingerprint))
