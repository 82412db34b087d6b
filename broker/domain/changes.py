"""What a committed transaction changed, in the terms agent sessions react to.

Services record these on the unit of work while they write; only after the transaction commits
does the unit of work hand them on (`on_commit`), so a session never reacts to a change that was
rolled back. They name what changed, never the new state: a session re-reads the database, which
stays the only shared state, and a replica that missed a change catches up on its periodic sweep.
"""

from __future__ import annotations

from dataclasses import dataclass

from broker.domain.model import Role


@dataclass(frozen=True)
class StackChanged:
    """A stack's fields, labels, annotations or desired deployment object changed, or it was deleted.

    Agents the stack reaches (or reached) must compare what they hold with its new desired state.
    `new_version_only` says that nothing changed but a new deployment object of a stack that
    already had one: the stack reaches the same agents as before, so only the sessions holding
    the stack need to look.
    """

    stack_id: str
    new_version_only: bool = False


@dataclass(frozen=True)
class AgentChanged:
    """An agent was created, updated (labels, annotations, status) or deleted.

    Its session must recompute which stacks reach it; a deleted or INACTIVE agent holds none.
    """

    agent_id: str


@dataclass(frozen=True)
class TargetingChanged:
    """An explicit target or a registration of this agent was created or removed.

    `stack_id` is the targeted stack, or None for a registration (any of the generator's stacks may
    now reach the agent, or stop reaching it).
    """

    agent_id: str
    stack_id: str | None = None


@dataclass(frozen=True)
class KeyRevoked:
    """The key of this principal was rotated or revoked: sessions opened with it must end.

    `principal_id` is None for the admin key.
    """

    role: Role
    principal_id: str | None


@dataclass(frozen=True)
class DiagnosticsRequested:
    """A diagnostics request for this agent was stored: the replica holding its session sends it."""

    agent_id: str


@dataclass(frozen=True)
class EventsAppended:
    """The transaction appended to the event log: event watchers on every replica re-read it.

    Agent sessions ignore it. It carries no ids: a watcher reads on from its own cursor.
    """


Change = StackChanged | AgentChanged | TargetingChanged | KeyRevoked | DiagnosticsRequested | EventsAppended
