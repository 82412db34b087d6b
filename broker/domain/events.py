"""Events: the append-only record of what happened, and the patterns that select them.

Every change writes an event in the same transaction as the change itself; webhooks, the audit
trail and streaming watchers all read this one log. An event type is `<subject>.<what happened>`
(`deployment.failed`). Subscribers select types with patterns: `*` (every type), `<subject>.*`
(every type of one subject, e.g. `deployment.*`) or an exact type. Patterns are checked against
the known types when they are saved, so a typo is an error instead of a silent non-match.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from broker.domain.validation import Violations

WILDCARD = "*"
#: The actor of an event the broker causes itself (an agent's stream ending, a sweep).
SYSTEM_ACTOR = "system"


class EventType(enum.StrEnum):
    AGENT_REGISTERED = "agent.registered"
    AGENT_DEREGISTERED = "agent.deregistered"
    AGENT_ACTIVATED = "agent.activated"
    AGENT_DEACTIVATED = "agent.deactivated"
    AGENT_CONNECTED = "agent.connected"
    AGENT_DISCONNECTED = "agent.disconnected"
    STACK_CREATED = "stack.created"
    STACK_UPDATED = "stack.updated"
    STACK_DELETED = "stack.deleted"
    DEPLOYMENT_OBJECT_CREATED = "deployment_object.created"
    DEPLOYMENT_OBJECT_DELETED = "deployment_object.deleted"
    DEPLOYMENT_APPLIED = "deployment.applied"
    DEPLOYMENT_FAILED = "deployment.failed"
    HEALTH_CHANGED = "health.changed"
    TEMPLATE_CREATED = "template.created"
    TEMPLATE_UPDATED = "template.updated"
    TEMPLATE_DELETED = "template.deleted"
    WEBHOOK_TEST = "webhook.test"


_TYPES = frozenset(EventType)
_SUBJECTS = frozenset(event_type.split(".")[0] for event_type in EventType)


@dataclass(frozen=True)
class Event:
    """One thing that happened.

    `actor_role` is a `Role` value ("admin", "generator", "agent") or `SYSTEM_ACTOR`; `actor_id`
    is None for the admin and the system. The subject ids name what the event is about (a
    deployment event has an agent, a stack and a deployment object). `labels` are the labels of
    the main subject (the stack for stack, deployment and health events, the agent for agent
    events, the template for template events) as they were when the event was written, so
    webhook filters match what was true then.
    """

    id: str
    type: EventType
    time: datetime
    actor_role: str
    actor_id: str | None = None
    agent_id: str | None = None
    stack_id: str | None = None
    deployment_object_id: str | None = None
    template_id: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    payload: Mapping[str, Any] = field(default_factory=dict)


def compile_patterns(patterns: Iterable[str], field: str) -> tuple[str, ...]:
    """Check every pattern; return them without duplicates, sorted. `field[i]` names a bad one.

    No patterns selects nothing; whether that is allowed is the caller's rule.
    """
    violations = Violations()
    accepted: set[str] = set()
    for index, pattern in enumerate(patterns):
        if problem := _pattern_problem(pattern):
            violations.add(f"{field}[{index}]", problem, "INVALID_EVENT_TYPE_PATTERN")
        else:
            accepted.add(pattern)
    violations.raise_if_any()
    return tuple(sorted(accepted))


def matches(patterns: Iterable[str], event_type: str) -> bool:
    """Whether any of `patterns` (as `compile_patterns` returns them) selects `event_type`."""
    return any(_matches(pattern, event_type) for pattern in patterns)


def _matches(pattern: str, event_type: str) -> bool:
    if pattern == WILDCARD:
        return True
    if pattern.endswith(".*"):
        return event_type.startswith(pattern[:-1])
    return pattern == event_type


def _pattern_problem(pattern: str) -> str | None:
    if not pattern:
        return "must not be empty; use '*' for every event type"
    if pattern == WILDCARD:
        return None
    subject, dot, rest = pattern.partition(".")
    if WILDCARD in subject or (WILDCARD in rest and rest != WILDCARD):
        return f"{pattern!r} may use '*' only alone or as the whole part after the dot ('deployment.*')"
    if dot and rest == WILDCARD:
        if subject in _SUBJECTS:
            return None
        return f"no event type starts with {subject + '.'!r}; known subjects: {', '.join(sorted(_SUBJECTS))}"
    if pattern in _TYPES:
        return None
    return f"{pattern!r} is not an event type; known types: {', '.join(sorted(_TYPES))}"
