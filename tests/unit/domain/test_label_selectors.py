"""Label selectors as `kubectl get -l` reads them: matching, canonical text, and precise errors."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from broker.domain.selectors import LabelSelector, Operator, Requirement, parse_label_selector
from brokkr_common.errors import InvalidArgument

WEB = {"app": "web", "tier": "frontend", "example.com/team": "blue"}


@pytest.mark.parametrize(
    ("text", "labels", "matches"),
    [
        ("", {}, True),
        ("", WEB, True),
        ("app=web", WEB, True),
        ("app==web", WEB, True),
        ("app=db", WEB, False),
        ("app=web", {}, False),
        ("app!=db", WEB, True),
        ("app!=web", WEB, False),
        ("app!=web", {}, True),
        ("tier in (frontend, backend)", WEB, True),
        ("tier in (backend)", WEB, False),
        ("tier in (frontend)", {}, False),
        ("tier notin (backend)", WEB, True),
        ("tier notin (frontend,backend)", WEB, False),
        ("tier notin (frontend)", {}, True),
        ("app", WEB, True),
        ("app", {"tier": "x"}, False),
        ("!app", WEB, False),
        ("!app", {"tier": "x"}, True),
        ("example.com/team=blue", WEB, True),
        ("app=web,tier=frontend", WEB, True),
        ("app=web,tier=backend", WEB, False),
        ("app=,x", {"app": "", "x": "1"}, True),
        ("app=", WEB, False),
        ("app in ()", {"app": ""}, True),
        ("app=web,app=db", WEB, False),
        ("  app = web ,  !db  ", WEB, True),
    ],
    ids=[
        "empty-matches-nothing-set",
        "empty-matches-all",
        "equals",
        "double-equals",
        "equals-other-value",
        "equals-absent",
        "not-equals",
        "not-equals-same",
        "not-equals-absent-key",
        "in",
        "in-other",
        "in-absent",
        "notin",
        "notin-listed",
        "notin-absent-key",
        "exists",
        "exists-absent",
        "not-exists-present",
        "not-exists",
        "prefixed-key",
        "and-both",
        "and-one-fails",
        "empty-value",
        "empty-value-other",
        "empty-set-means-empty-value",
        "contradiction",
        "whitespace",
    ],
)
def test_matching(text: str, labels: dict[str, str], matches: bool) -> None:
    assert parse_label_selector("filter", text).matches(labels) is matches


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("app==web", "app=web"),
        ("tier in ( b , a, a ), app", "app,tier in (a,b)"),
        ("!b,a!=x,b", "a!=x,!b,b"),
        ("a=1,a=1", "a=1"),
        ("a notin ()", "a notin ()"),
    ],
    ids=[
        "empty",
        "blank",
        "double-equals",
        "sorted-and-deduplicated",
        "sorted-by-key",
        "duplicate",
        "empty-set",
    ],
)
def test_str_is_canonical(text: str, canonical: str) -> None:
    selector = parse_label_selector("filter", text)
    assert str(selector) == canonical
    assert parse_label_selector("filter", canonical) == selector


def test_equalities_are_the_conditions_a_database_can_prefilter_on() -> None:
    selector = parse_label_selector(
        "filter", "app=web,tier in (frontend),zone in (a,b),!legacy,team!=red,env"
    )
    assert selector.equalities() == {"app": "web", "tier": "frontend"}
    assert parse_label_selector("filter", "").equalities() == {}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("app web", "column 5: expected '=', '==', '!=', 'in', 'notin', ',' or the end, found 'web'"),
        ("app=web=x", "column 8: expected end of text, found '='"),
        ("app in web", "column 8: expected '(', found 'web'"),
        ("app in (web", "column 12: expected ')', found end of text"),
        ("app,", "column 5: expected a label key, found end of text"),
        (",app", "column 1: expected a label key, found ','"),
        ("!", "column 2: expected a label key, found end of text"),
        ("=web", "column 1: expected a label key, found '='"),
        ("replicas>1", "column 9: the operator '>' is not supported"),
        (
            "bad_key!=x,-app",
            "column 12: label key name must consist of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, found '-app'",
        ),
        ("a/b/c", "column 1: label key must contain at most one '/', found 'a/b/c'"),
        (
            "app=-web",
            "column 5: label value must be empty or consist of letters, digits, '-', '_' and '.', "
            "starting and ending with a letter or digit, found '-web'",
        ),
        (
            "app in (a, " + "v" * 64 + ")",
            "column 12: label value must be at most 63 characters (got 64), found '" + "v" * 64 + "'",
        ),
    ],
    ids=[
        "missing-operator",
        "two-operators",
        "set-without-parentheses",
        "unclosed-set",
        "trailing-comma",
        "leading-comma",
        "bare-not",
        "missing-key",
        "greater-than",
        "bad-key",
        "two-slashes",
        "bad-value",
        "long-value-in-set",
    ],
)
def test_invalid_selectors_name_the_field_column_and_problem(text: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        parse_label_selector("filter", text)
    assert error.value.reason == "INVALID_LABEL_SELECTOR"
    (violation,) = error.value.field_violations
    assert violation.field == "filter"
    assert violation.description == f"is not a valid label selector at {problem}"


# Keys and values built around a fixed first and last character, so every draw is valid.
_keys = st.tuples(st.sampled_from(["", "example.com/", "a.b-c/"]), st.text("aZ09-_.", max_size=5)).map(
    lambda parts: f"{parts[0]}k{parts[1]}y"
)
_values = st.text("aZ09-_.", max_size=5).map(lambda middle: f"v{middle}0") | st.just("")


@st.composite
def _requirements(draw: st.DrawFn) -> Requirement:
    operator = draw(st.sampled_from(Operator))
    if operator in (Operator.EXISTS, Operator.DOES_NOT_EXIST):
        values: tuple[str, ...] = ()
    elif operator in (Operator.IN, Operator.NOT_IN):
        values = tuple(sorted(draw(st.sets(_values, min_size=1, max_size=3))))
    else:
        values = (draw(_values),)
    return Requirement(draw(_keys), operator, values)


def _kubernetes_meaning(requirement: Requirement, labels: dict[str, str]) -> bool:
    """Kubernetes' definition, written out independently of the code under test."""
    present, value = requirement.key in labels, labels.get(requirement.key)
    if requirement.operator is Operator.EXISTS:
        return present
    if requirement.operator is Operator.DOES_NOT_EXIST:
        return not present
    if requirement.operator in (Operator.EQUALS, Operator.IN):
        return present and value in requirement.values
    return not present or value not in requirement.values


@settings(max_examples=100, deadline=None)
@given(requirements=st.sets(_requirements(), max_size=5), data=st.data())
def test_a_selector_survives_str_and_parse_and_keeps_its_meaning(
    requirements: set[Requirement], data: st.DataObject
) -> None:
    keys = sorted({requirement.key for requirement in requirements}) or ["k"]
    labels = data.draw(st.dictionaries(st.sampled_from(keys) | _keys, _values, max_size=4))
    selector = LabelSelector(tuple(sorted(requirements)))
    parsed = parse_label_selector("filter", str(selector))
    assert parsed == selector
    assert str(parsed) == str(selector)
    assert parsed.matches(labels) is all(_kubernetes_meaning(r, labels) for r in requirements)
