"""The audit log: who called which state-changing method on what, from where, and how it ended.

Events say what happened to Brokkr's resources; the audit log says who *asked*, including the
calls that were refused and every failed authentication, so an operator can answer "who deleted
this stack" and "is someone guessing keys". Entries are written by the API edge, never changed
through the API, and erased only by the retention purge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

#: The actor role of a call whose key was missing, malformed, unknown or revoked.
UNAUTHENTICATED_ACTOR = "unauthenticated"


@dataclass(frozen=True)
class AuditEntry:
    """One audited call. `id` is "" until stored.

    `actor_role` is a `Role` value or `UNAUTHENTICATED_ACTOR`; `actor_id` is None for the admin
    and for unauthenticated callers. `action` is the full gRPC method (`/brokkr.v1.StackService/
    DeleteStack`); `resource` names what the request was about, as comma-separated resource names
    (`stacks/<id>`), "" when it named nothing; `outcome` is "OK" or a gRPC status code name.
    """

    id: str
    time: datetime
    actor_role: str
    actor_id: str | None
    action: str
    resource: str
    outcome: str
    peer: str
    request_id: str
