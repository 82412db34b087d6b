"""Event type patterns: `*`, `<subject>.*` and exact types; anything else is refused when saved."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.domain.events import EventType, compile_patterns, matches
from brokkr_common.errors import InvalidArgument

FIELD = "webhook.event_types"
PATTERNS = ["*", *sorted({f"{t.split('.')[0]}.*" for t in EventType}), *EventType]


def test_the_event_types() -> None:
    assert sorted(EventType) == [
        "agent.activated",
        "agent.connected",
        "agent.deactivated",
        "agent.deregistered",
        "agent.disconnected",
        "agent.registered",
        "deployment.applied",
        "deployment.failed",
        "deployment_object.created",
        "deployment_object.deleted",
        "health.changed",
        "stack.created",
        "stack.deleted",
        "stack.updated",
        "template.created",
        "template.deleted",
        "template.updated",
        "webhook.test",
    ]


def test_patterns_come_back_sorted_without_duplicates() -> None:
    assert compile_patterns(["stack.created", "deployment.*", "stack.created", "*"], FIELD) == (
        "*",
        "deployment.*",
        "stack.created",
    )
    assert compile_patterns([], FIELD) == ()


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        pytest.param("", "must not be empty; use '*' for every event type", id="empty"),
        pytest.param(
            "deploy*ment", "may use '*' only alone or as the whole part after the dot", id="inner-star"
        ),
        pytest.param(
            "deployment*", "may use '*' only alone or as the whole part after the dot", id="trailing-star"
        ),
        pytest.param(
            "*.applied", "may use '*' only alone or as the whole part after the dot", id="leading-star"
        ),
        pytest.param(
            "deployment.app*", "may use '*' only alone or as the whole part after the dot", id="partial"
        ),
        pytest.param("**", "may use '*' only alone or as the whole part after the dot", id="double-star"),
        pytest.param(
            "deployment.*.x", "may use '*' only alone or as the whole part after the dot", id="deeper"
        ),
        pytest.param(
            "cluster.*",
            "no event type starts with 'cluster.'; known subjects: agent, deployment,",
            id="subject",
        ),
        pytest.param(
            "stack.renamed", "'stack.renamed' is not an event type; known types: agent.activated,", id="type"
        ),
        pytest.param("Stack.Created", "'Stack.Created' is not an event type", id="case"),
        pytest.param("deployment", "'deployment' is not an event type", id="subject-alone"),
    ],
)
def test_malformed_and_unknown_patterns_are_refused(pattern: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_patterns(["*", pattern], FIELD)
    (violation,) = caught.value.field_violations
    assert violation.field == f"{FIELD}[1]"
    assert violation.reason == "INVALID_EVENT_TYPE_PATTERN"
    assert problem in violation.description


def test_every_bad_pattern_is_reported() -> None:
    with pytest.raises(InvalidArgument) as caught:
        compile_patterns(["nope", "stack.*", "", "x.*"], FIELD)
    assert [v.field for v in caught.value.field_violations] == [f"{FIELD}[0]", f"{FIELD}[2]", f"{FIELD}[3]"]


@pytest.mark.parametrize(
    ("patterns", "event_type", "expected"),
    [
        pytest.param(["*"], "agent.connected", True, id="wildcard"),
        pytest.param(["deployment.*"], "deployment.failed", True, id="subject"),
        pytest.param(["deployment.*"], "deployment_object.created", False, id="subject-is-not-a-prefix"),
        pytest.param(["deployment.failed"], "deployment.failed", True, id="exact"),
        pytest.param(["deployment.failed"], "deployment.applied", False, id="exact-other"),
        pytest.param(["stack.*", "agent.connected"], "agent.connected", True, id="any-of"),
        pytest.param([], "agent.connected", False, id="none"),
    ],
)
def test_matching(patterns: list[str], event_type: str, expected: bool) -> None:
    assert matches(patterns, event_type) is expected


@given(st.lists(st.sampled_from(PATTERNS), max_size=4), st.sampled_from(list(EventType)))
def test_matching_agrees_with_the_meaning_of_each_pattern(patterns: list[str], event_type: EventType) -> None:
    def means(pattern: str) -> bool:
        if pattern == "*":
            return True
        if pattern.endswith(".*"):
            return event_type.split(".")[0] == pattern[:-2]
        return pattern == event_type

    compiled = compile_patterns(patterns, FIELD)
    assert matches(compiled, event_type) == any(means(p) for p in patterns)
    assert matches(compiled, event_type) == matches(patterns, event_type)
    assert matches([*compiled, "*"], event_type)
