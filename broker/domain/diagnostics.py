"""Diagnostics requests: an admin asks an agent for a snapshot of a stack's pods, events and logs.

A request is stored first (PENDING), so it survives the agent being away and is visible while it
waits; the replica holding the agent's session sends it (SENT) and stores the agent's answer
(COMPLETED with a report, or FAILED). Requests nobody answers in time become EXPIRED. Every finished
request is kept until `expires_at`, then erased: reports hold container logs, which should not pile
up in the database. The report is kept as the JSON form of `brokkr.v1.DiagnosticsReport`, since it
is only ever shown whole.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any


class DiagnosticsState(enum.StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    EXPIRED = "EXPIRED"

    @property
    def open(self) -> bool:
        """Still waiting for the agent."""
        return self in (DiagnosticsState.PENDING, DiagnosticsState.SENT)


#: Why a request failed without the agent saying so (ErrorInfo reasons).
AGENT_CANNOT_DIAGNOSE = "AGENT_CANNOT_DIAGNOSE"
DIAGNOSTICS_EXPIRED = "DIAGNOSTICS_EXPIRED"

DEFAULT_LOG_TAIL_LINES = 50
MAX_LOG_TAIL_LINES = 500
DEFAULT_MAX_LOG_BYTES = 16 * 1024
MAX_LOG_BYTES = 64 * 1024


@dataclass(frozen=True)
class DiagnosticsOptions:
    log_tail_lines: int = DEFAULT_LOG_TAIL_LINES
    max_log_bytes: int = DEFAULT_MAX_LOG_BYTES
    include_previous_logs: bool = False


@dataclass(frozen=True)
class DiagnosticsError:
    """A google.rpc.Status in domain terms: gRPC code number, machine-readable reason, message."""

    code: int
    reason: str
    message: str


@dataclass(frozen=True)
class Diagnostics:
    id: str
    agent_id: str
    stack_id: str
    options: DiagnosticsOptions
    state: DiagnosticsState
    requested_at: datetime
    expires_at: datetime
    sent_at: datetime | None = None
    completed_at: datetime | None = None
    error: DiagnosticsError | None = None
    #: The JSON form of brokkr.v1.DiagnosticsReport; None unless COMPLETED (and in lists).
    report: dict[str, Any] | None = None


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def position(diagnostics: Diagnostics) -> tuple[int, str]:
    """Where a request sorts in lists, newest first: (requested_at in microseconds, id)."""
    delta = diagnostics.requested_at - _EPOCH
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds, diagnostics.id)


def position_time(micros: int) -> datetime:
    """The requested_at a `position` was made from."""
    return _EPOCH + timedelta(microseconds=micros)
