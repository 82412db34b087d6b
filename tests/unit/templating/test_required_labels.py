"""A template with labels or annotations goes only into stacks that carry all of them (same value)."""

from __future__ import annotations

import pytest

from broker.domain.templating import required_labels_missing


@pytest.mark.parametrize(
    ("template", "stack", "missing"),
    [
        pytest.param({}, {}, (), id="template-requires-nothing"),
        pytest.param({}, {"env": "prod"}, (), id="stack-may-carry-more"),
        pytest.param({"env": "prod"}, {"env": "prod", "team": "a"}, (), id="carried"),
        pytest.param({"env": "prod"}, {}, ("env=prod",), id="absent"),
        pytest.param({"env": "prod"}, {"env": "dev"}, ("env=prod",), id="other-value"),
        pytest.param({"tier": "web", "env": "prod"}, {"tier": "web"}, ("env=prod",), id="one-of-two"),
        pytest.param({"b": "2", "a": "1"}, {}, ("a=1", "b=2"), id="sorted"),
    ],
)
def test_labels_and_annotations_follow_the_same_rule(
    template: dict[str, str], stack: dict[str, str], missing: tuple[str, ...]
) -> None:
    assert required_labels_missing(template, {}, stack, {}) == (missing, ())
    assert required_labels_missing({}, template, {}, stack) == ((), missing)


def test_labels_do_not_stand_in_for_annotations() -> None:
    assert required_labels_missing({"env": "prod"}, {"owner": "a"}, {"owner": "a"}, {"env": "prod"}) == (
        ("env=prod",),
        ("owner=a",),
    )
