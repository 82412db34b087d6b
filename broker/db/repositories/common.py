"""Small SQL helpers every repository uses: keyset positions and bounded IN lists."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, true, tuple_

from broker.domain.ports import Position

T = TypeVar("T")

#: Ids per IN list: far below the bind-parameter limits of SQLite (32,766) and PostgreSQL (65,535).
IN_LIST_SIZE = 1000


def keyset_after(columns: Sequence[ColumnElement[Any]], position: Position) -> ColumnElement[bool]:
    """Rows sorting strictly after `position` in ascending order of `columns` (a row-value comparison,
    which both backends answer from the matching index)."""
    if not position:
        return true()
    return tuple_(*columns) > tuple_(*position)


def chunks(items: Sequence[T], size: int = IN_LIST_SIZE) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
