"""Labels and annotations in their child tables: write, load in bulk, filter by equality.

Agents and stacks both carry labels and annotations, stored the same way (see `tables`), so one
class serves all four tables. Annotation tables also keep the SHA-256 of each value for their index.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from broker.db import tables
from broker.db.repositories.common import chunks


def _value_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


class KeyValues:
    """One labels or annotations table, keyed (owner_id, key)."""

    def __init__(self, table: Table) -> None:
        self.table = table
        self._digests = "value_digest" in table.c
        columns = table.c
        #: (owner_id, key, value) of the owners bound to `owner_ids`. Built once: loads run on every
        #: agent connect, where building and keying a statement cost more than running it.
        self.rows_of_owners = select(columns.owner_id, columns.key, columns.value).where(
            columns.owner_id.in_(bindparam("owner_ids", expanding=True))
        )

    async def replace(self, connection: AsyncConnection, owner_id: str, items: Mapping[str, str]) -> None:
        await connection.execute(delete(self.table).where(self.table.c.owner_id == owner_id))
        await self.add(connection, owner_id, items)

    async def add(self, connection: AsyncConnection, owner_id: str, items: Mapping[str, str]) -> None:
        if not items:
            return
        rows = [{"owner_id": owner_id, "key": key, "value": value} for key, value in items.items()]
        if self._digests:
            for row in rows:
                row["value_digest"] = _value_digest(row["value"])
        await connection.execute(insert(self.table), rows)

    async def load(self, connection: AsyncConnection, owner_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """owner id -> {key: value}, with an entry (maybe empty) for every owner asked for."""
        found: dict[str, dict[str, str]] = {owner_id: {} for owner_id in owner_ids}
        for batch in chunks(list(found)):
            for owner_id, key, value in await connection.execute(self.rows_of_owners, {"owner_ids": batch}):
                found[owner_id][key] = value
        return found

    def has_all(self, owner_id: ColumnElement[str], items: Mapping[str, str]) -> list[ColumnElement[bool]]:
        """Conditions true for owners carrying every key=value (correlated EXISTS on the primary key)."""
        columns = self.table.c
        return [
            exists().where(columns.owner_id == owner_id, columns.key == key, columns.value == value)
            for key, value in sorted(items.items())
        ]

    def shared_with(self, other: KeyValues, other_owner_id: str | BindParameter[str]) -> Select[tuple[str]]:
        """Owner ids in this table sharing at least one key=value with `other_owner_id` in `other`.

        A join through the (key, value) index, or (key, value_digest) for annotations, which then
        compares the values themselves so a digest collision cannot create a match.
        """
        mine, theirs = self.table.c, other.table.c
        joined = [mine.key == theirs.key, mine.value == theirs.value]
        if self._digests:
            joined.append(mine.value_digest == theirs.value_digest)
        return select(mine.owner_id).join(other.table, and_(*joined)).where(theirs.owner_id == other_owner_id)


class Metadata:
    """Labels and annotations of the same owners, read together in one query (two tables, UNION
    ALL): loading agents or stacks, a connect included, costs one round trip for both."""

    def __init__(self, labels: KeyValues, annotations: KeyValues) -> None:
        self._load = union_all(
            labels.rows_of_owners.add_columns(literal_column("0").label("kind")),
            annotations.rows_of_owners.add_columns(literal_column("1").label("kind")),
        )

    async def load(
        self, connection: AsyncConnection, owner_ids: Sequence[str]
    ) -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]]]:
        """(labels, annotations): owner id -> {key: value} each, with an entry (maybe empty) for every
        owner asked for."""
        labels: dict[str, dict[str, str]] = {owner_id: {} for owner_id in owner_ids}
        annotations: dict[str, dict[str, str]] = {owner_id: {} for owner_id in owner_ids}
        for batch in chunks(list(labels)):
            rows = await connection.execute(self._load, {"owner_ids": batch})
            for owner_id, key, value, is_annotation in rows:
                (annotations if is_annotation else labels)[owner_id][key] = value
        return labels, annotations


AGENT_LABELS = KeyValues(tables.agent_labels)
AGENT_ANNOTATIONS = KeyValues(tables.agent_annotations)
STACK_LABELS = KeyValues(tables.stack_labels)
STACK_ANNOTATIONS = KeyValues(tables.stack_annotations)
AGENT_METADATA = Metadata(AGENT_LABELS, AGENT_ANNOTATIONS)
STACK_METADATA = Metadata(STACK_LABELS, STACK_ANNOTATIONS)
