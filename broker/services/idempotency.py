"""Idempotent creates (AIP-155): a repeated `request_id` returns what the first request created.

A create that carries a `request_id` stores who asked (the principal), which method, the request's
fingerprint and the created resource's id, in the same transaction as the resource. A repeat with
the same request replays the stored resource; the same request id with a different request is
ALREADY_EXISTS (REQUEST_ID_REUSED), since the client evidently reused an id by mistake.

Two identical requests racing each other both miss the record; the database lets only one commit
(the loser breaks a unique rule) and `run` retries the loser once, which then finds the winner's
record and replays it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from broker.domain.model import Principal
from broker.domain.ports import IdempotencyRecord, UnitOfWork
from brokkr_common.errors import AlreadyExists

T = TypeVar("T")

REUSED = "REQUEST_ID_REUSED"


def fingerprint(**request: object) -> str:
    """SHA-256 of the request's fields in canonical JSON."""
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IdempotentCreate:
    """One create request, as far as idempotency is concerned."""

    actor: Principal
    method: str
    request_id: str | None
    fingerprint: str

    @property
    def principal(self) -> str:
        return f"{self.actor.role.value}:{self.actor.id or ''}"

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Run `attempt` (a whole transaction); once more if it lost a race to an identical twin."""
        try:
            return await attempt()
        except AlreadyExists as error:
            if self.request_id is None or error.reason == REUSED:
                raise
            return await attempt()

    async def replay(self, uow: UnitOfWork, load: Callable[[str], Awaitable[T | None]]) -> T | None:
        """The resource a previous identical request created, or None if there was none."""
        if self.request_id is None:
            return None
        record = await uow.idempotency.find(self.principal, self.method, self.request_id)
        if record is None:
            return None
        if record.request_fingerprint != self.fingerprint:
            raise AlreadyExists(
                f"request_id {self.request_id!r} was already used for a different {self.method} request",
                reason=REUSED,
                metadata={"request_id": self.request_id},
            )
        return await load(record.resource_id)

    async def remember(self, uow: UnitOfWork, resource_id: str, at: datetime) -> None:
        """Store what this request created, in the creating transaction."""
        if self.request_id is None:
            return
        await uow.idempotency.add(
            IdempotencyRecord(self.principal, self.method, self.request_id, self.fingerprint, resource_id, at)
        )
