"""Kubernetes label selectors, so list filters read exactly like `kubectl get -l`.

Grammar and meaning are Kubernetes' (`k8s.io/apimachinery/pkg/labels`), minus the numeric `gt`/`lt`
operators, which label filters here do not need:

    selector     = [requirement *("," requirement)]        every requirement must hold
    requirement  = key ("=" | "==" | "!=") value           equal / not equal (absent counts as not equal)
                 | key ("in" | "notin") "(" values ")"      one of / none of (absent counts as none of)
                 | key | "!" key                            exists / does not exist

Keys and values follow the label rules of `broker.domain.validation`; a value may be empty. The
empty selector matches everything. A parsed selector is normalised (requirements and set values
sorted, duplicates dropped, `==` written `=`), so `str()` gives one canonical text that parses back
to an equal selector.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NoReturn

from broker.domain.validation import label_key_problem, label_value_problem
from brokkr_common.errors import InvalidArgument

# Every character falls in one group, so the tokens cover the whole text.
_TOKEN = re.compile(
    r"(?P<symbol>==|!=|=|!|\(|\)|,)|(?P<unsupported>[<>])|(?P<word>[^\s=!(),<>]+)|(?P<space>\s+)"
)
_END = "end of text"


class Operator(enum.StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"


@dataclass(frozen=True, order=True)
class Requirement:
    """One condition on one label key."""

    key: str
    operator: Operator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator is Operator.EXISTS:
            return value is not None
        if self.operator is Operator.DOES_NOT_EXIST:
            return value is None
        if self.operator in (Operator.EQUALS, Operator.IN):
            return value in self.values
        return value not in self.values  # NOT_EQUALS, NOT_IN: an absent key qualifies

    def __str__(self) -> str:
        if self.operator is Operator.EXISTS:
            return self.key
        if self.operator is Operator.DOES_NOT_EXIST:
            return f"!{self.key}"
        if self.operator in (Operator.IN, Operator.NOT_IN):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        return f"{self.key}{self.operator}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold; none means "everything"."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def equalities(self) -> dict[str, str]:
        """`key=value` conditions every matching label set meets, for pushing into a query as a pre-filter.

        Single-value `in` counts. The rest of the selector still needs `matches`; so does a selector
        that asks one key for two values (it matches nothing, the pre-filter keeps one of them).
        """
        return {
            r.key: r.values[0]
            for r in self.requirements
            if r.operator is Operator.EQUALS or (r.operator is Operator.IN and len(r.values) == 1)
        }

    def __str__(self) -> str:
        return ",".join(map(str, self.requirements))


def parse_label_selector(field: str, text: str) -> LabelSelector:
    """Parse `text`; `InvalidArgument` (reason INVALID_LABEL_SELECTOR) naming `field` and the column."""
    return _Parser(field, text).selector()


class _Parser:
    def __init__(self, field: str, text: str) -> None:
        self._field = field
        self._tokens = _tokens(field, text)
        self._next = 0

    def selector(self) -> LabelSelector:
        requirements: set[Requirement] = set()
        if self._peek() != _END:
            requirements.add(self._requirement())
            while self._accept(","):
                requirements.add(self._requirement())
        self._expect(_END)
        return LabelSelector(tuple(sorted(requirements)))

    def _requirement(self) -> Requirement:
        if self._accept("!"):
            return Requirement(self._key(), Operator.DOES_NOT_EXIST)
        key = self._key()
        if self._accept("=") or self._accept("=="):
            return Requirement(key, Operator.EQUALS, (self._value(),))
        if self._accept("!="):
            return Requirement(key, Operator.NOT_EQUALS, (self._value(),))
        if self._accept("in"):
            return Requirement(key, Operator.IN, self._value_set())
        if self._accept("notin"):
            return Requirement(key, Operator.NOT_IN, self._value_set())
        if self._peek() not in (",", _END):
            self._fail("expected '=', '==', '!=', 'in', 'notin', ',' or the end")
        return Requirement(key, Operator.EXISTS)

    def _value_set(self) -> tuple[str, ...]:
        self._expect("(")
        values = {self._value()}
        while self._accept(","):
            values.add(self._value())
        self._expect(")")
        return tuple(sorted(values))

    def _key(self) -> str:
        if not self._is_word():
            self._fail("expected a label key")
        key = self._take()
        if problem := label_key_problem(key):
            self._fail(f"label {problem}", back=1)
        return key

    def _value(self) -> str:
        """A value, or "" when the next token is a separator (Kubernetes allows empty values)."""
        if not self._is_word():
            return ""
        value = self._take()
        if problem := label_value_problem(value):
            self._fail(f"label {problem}", back=1)
        return value

    def _is_word(self) -> bool:
        return self._peek() not in ("=", "==", "!=", "!", "(", ")", ",", _END)

    def _peek(self) -> str:
        return self._tokens[self._next][0]

    def _take(self) -> str:
        self._next += 1
        return self._tokens[self._next - 1][0]

    def _accept(self, token: str) -> bool:
        if self._peek() != token:
            return False
        self._next += 1
        return True

    def _expect(self, token: str) -> None:
        if not self._accept(token):
            self._fail(f"expected {token if token == _END else repr(token)}")

    def _fail(self, problem: str, back: int = 0) -> NoReturn:
        text, column = self._tokens[self._next - back]
        found = text if text == _END else repr(text)
        raise _invalid(self._field, column, f"{problem}, found {found}")


def _tokens(field: str, text: str) -> list[tuple[str, int]]:
    """(token, 1-based column) pairs, ending with the end-of-text marker."""
    tokens: list[tuple[str, int]] = []
    for found in _TOKEN.finditer(text):
        if found.lastgroup == "unsupported":
            raise _invalid(field, found.start() + 1, f"the operator {found.group()!r} is not supported")
        if found.lastgroup != "space":
            tokens.append((found.group(), found.start() + 1))
    tokens.append((_END, len(text) + 1))
    return tokens


def _invalid(field: str, column: int, problem: str) -> InvalidArgument:
    return InvalidArgument.for_field(
        field, f"is not a valid label selector at column {column}: {problem}", "INVALID_LABEL_SELECTOR"
    )
