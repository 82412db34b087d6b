"""The one rule for "does this stack reach this agent", and why.

A stack reaches an agent through an explicit target, or through a label or annotation they share
(same key and same value). Shared items count only when the stack belongs to no generator (the
admin's) or the agent is registered with the stack's generator: a generator must not be able to
push its stacks onto every cluster that happens to carry a popular label such as `env=prod`.
Deleted stacks and agents never match, and an INACTIVE agent receives nothing at all.

The database layer narrows candidates in SQL; this function is the definition it must agree with,
and the answer to "why does this agent get this stack" that the API shows.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from broker.domain.model import Agent, AgentStatus, Stack, TargetMatch


def match(
    agent: Agent, stack: Stack, *, explicit: bool, agent_generator_ids: Collection[str]
) -> TargetMatch | None:
    """Every reason `stack` reaches `agent`, or None if it does not.

    `explicit`: an agent-stack target exists. `agent_generator_ids`: the generators the agent is
    registered with.
    """
    if agent.deleted_at is not None or stack.deleted_at is not None or agent.status != AgentStatus.ACTIVE:
        return None
    shared_counts = stack.generator_id is None or stack.generator_id in agent_generator_ids
    shared_labels = _shared(agent.labels, stack.labels) if shared_counts else ()
    shared_annotations = _shared(agent.annotations, stack.annotations) if shared_counts else ()
    if not (explicit or shared_labels or shared_annotations):
        return None
    return TargetMatch(agent.id, stack.id, explicit, shared_labels, shared_annotations)


def _shared(agent_items: Mapping[str, str], stack_items: Mapping[str, str]) -> tuple[str, ...]:
    """`key=value` for each pair both carry, sorted by key."""
    return tuple(
        f"{key}={value}" for key, value in sorted(stack_items.items()) if agent_items.get(key) == value
    )
