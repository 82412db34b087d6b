"""Page assembly over keyset fetches, without a database: page boundaries, tokens, Python filters."""

from __future__ import annotations

import pytest

from broker.domain.pagination import encode_page_token, fingerprint
from broker.domain.validation import Violations
from broker.services import paging
from brokkr_common.errors import InvalidArgument

ROWS = [f"row-{i:02d}" for i in range(10)]


class Table:
    """Sorted rows answering keyset fetches, counting how many it was asked."""

    def __init__(self, rows: list[str]) -> None:
        self.rows = rows
        self.fetches = 0

    async def fetch(self, after: tuple, limit: int) -> list[str]:
        self.fetches += 1
        return [row for row in self.rows if not after or row > after[0]][:limit]


def _plan(page_size: int, page_token: str = "", **query: object) -> paging.PagePlan:
    violations = Violations()
    plan = paging.plan(violations, page_size=page_size, page_token=page_token, position=(str,), **query)
    violations.raise_if_any()
    return plan


async def _pages(table: Table, page_size: int, keep=None) -> list[list[str]]:
    pages, token = [], ""
    while True:
        page = await paging.collect(_plan(page_size, token), table.fetch, lambda row: (row,), keep)
        pages.append(list(page.items))
        if not (token := page.next_page_token):
            return pages


async def test_pages_split_the_rows_and_the_last_has_no_token():
    assert await _pages(Table(ROWS), 4) == [ROWS[:4], ROWS[4:8], ROWS[8:]]


async def test_an_exact_fit_needs_no_empty_extra_page():
    assert await _pages(Table(ROWS), 5) == [ROWS[:5], ROWS[5:]]


async def test_filtering_reads_on_until_the_page_is_full(monkeypatch):
    monkeypatch.setattr(paging, "SCAN_BATCH", 2)
    table = Table(ROWS)
    pages = await _pages(table, 2, keep=lambda row: row.endswith(("3", "7", "8", "9")))
    assert pages == [["row-03", "row-07"], ["row-08", "row-09"]]
    assert table.fetches > len(pages)


def test_a_token_of_the_wrong_shape_is_refused():
    token = encode_page_token([42], fingerprint())
    with pytest.raises(InvalidArgument) as raised:
        _plan(1, token)
    assert raised.value.reason == "INVALID_PAGE_TOKEN"


def test_a_token_for_other_filters_is_refused():
    token = encode_page_token(["row-01"], fingerprint(label_selector="env=prod"))
    with pytest.raises(InvalidArgument) as raised:
        _plan(1, token, label_selector="env=dev")
    assert raised.value.field_violations[0].field == "page_token"
