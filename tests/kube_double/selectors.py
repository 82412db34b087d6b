"""Label and field selectors, parsed with the grammar of `k8s.io/apimachinery/pkg/labels`.

Label selectors support the whole grammar: `k`, `!k`, `k=v`, `k==v`, `k!=v`, `k in (a,b)`,
`k notin (a,b)`, `k>1`, `k<1`, comma-separated requirements that must all hold. As upstream, `!=`
and `notin` also match objects that lack the label. Field selectors support `=`, `==` and `!=` on
`metadata.name` and `metadata.namespace`, plus the per-kind fields of Events (`involvedObject.*`,
`reason`, `type`, `source`, ...) and Pods (`status.phase`, `spec.nodeName`, ...) in `KIND_FIELDS`;
other field labels are refused as upstream refuses unsupported ones.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.kube_double.errors import GroupResource

_SPECIAL = "=!(),<>"
_OPERATOR_TOKENS = ("!=", "==", "=", "!", "(", ")", ",", ">", "<")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
    "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_KEY_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
#: Field selector labels every kind supports.
SUPPORTED_FIELDS = ("metadata.name", "metadata.namespace")


class SelectorError(ValueError):
    """A selector that does not parse; its message is what upstream puts in the 400 answer."""


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str  # exists, !, =, !=, in, notin, gt, lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.operator:
            case "exists":
                return present
            case "!":
                return not present
            case "=" | "in":
                return present and value in self.values
            case "!=" | "notin":
                return not present or value not in self.values
            case _:
                return present and _compare_int(value, self.operator, int(self.values[0]))


def _compare_int(value: str | None, operator: str, bound: int) -> bool:
    try:
        number = int(value or "")
    except ValueError:
        return False
    return number > bound if operator == "gt" else number < bound


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
            continue
        operator = next((op for op in _OPERATOR_TOKENS if text.startswith(op, position)), None)
        if operator is not None:
            tokens.append(operator)
            position += len(operator)
            continue
        end = position
        while end < len(text) and not text[end].isspace() and text[end] not in _SPECIAL:
            end += 1
        tokens.append(text[position:end])
        position = end
    return tokens


def _is_identifier(token: str | None) -> bool:
    return token is not None and token not in _OPERATOR_TOKENS


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.position += 1
        return token

    def expect_identifier(self, after: str = "") -> str:
        token = self.take()
        if not _is_identifier(token) or token in ("in", "notin"):
            suffix = f" after '{after}'" if after else ""
            raise SelectorError(f"found '{token or ''}', expected: identifier{suffix}")
        assert token is not None
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return _checked(Requirement(self.expect_identifier("!"), "!"))
        key = self.expect_identifier()
        if self.peek() in (None, ","):
            return _checked(Requirement(key, "exists"))
        operator = self.take()
        if operator in ("in", "notin"):
            return _checked(Requirement(key, operator, self.value_set()))
        if operator in ("=", "==", "!="):
            value = self.take() if _is_identifier(self.peek()) else ""
            return _checked(Requirement(key, "!=" if operator == "!=" else "=", (value or "",)))
        if operator in (">", "<"):
            value = self.expect_identifier()
            if not re.fullmatch(r"-?\d+", value):
                raise SelectorError(
                    "unable to parse requirement: "
                    f"for 'Gt', 'Lt' operators, the value must be an integer: {value}"
                )
            return _checked(Requirement(key, "gt" if operator == ">" else "lt", (value,)))
        raise SelectorError(f"found '{operator}', expected: in, notin, =, ==, !=, gt, lt")

    def value_set(self) -> tuple[str, ...]:
        opening = self.take()
        if opening != "(":
            raise SelectorError(f"found '{opening or ''}', expected: '('")
        values: list[str] = []
        expecting_value = True
        while True:
            token = self.take()
            if token is None:
                raise SelectorError("found '', expected: ')'")
            if token == ")":
                if expecting_value and values:
                    values.append("")
                return tuple(values)
            if token == ",":
                if expecting_value:
                    values.append("")
                expecting_value = True
            elif _is_identifier(token) and expecting_value:
                values.append(token)
                expecting_value = False
            else:
                raise SelectorError(f"found '{token}', expected: ',', ')' or identifier")


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid label key (a qualified name), or None."""
    prefix, _, name = key.rpartition("/")
    if not _LABEL_NAME.match(name) or len(name) > 63 or (prefix and not _DNS_SUBDOMAIN.match(prefix)):
        return _KEY_MESSAGE
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a valid label value, or None."""
    return _VALUE_MESSAGE if len(value) > 63 or not _LABEL_VALUE.match(value) else None


def _checked(requirement: Requirement) -> Requirement:
    problem = label_key_problem(requirement.key)
    if problem is not None:
        raise SelectorError(
            f'unable to parse requirement: key: Invalid value: "{requirement.key}": {problem}'
        )
    for index, value in enumerate(requirement.values):
        problem = None if requirement.operator in ("gt", "lt") else label_value_problem(value)
        if problem is not None:
            raise SelectorError(
                f"unable to parse requirement: values[{index}][{requirement.key}]: "
                f'Invalid value: "{value}": {problem}'
            )
    return requirement


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a label selector; an empty one matches everything."""
    parser = _Parser(text)
    requirements: list[Requirement] = []
    if parser.peek() is None:
        return LabelSelector(())
    while True:
        requirements.append(parser.requirement())
        token = parser.take()
        if token is None:
            return LabelSelector(tuple(requirements))
        if token != ",":
            raise SelectorError(f"found '{token}', expected: ',' or 'end of string'")


#: The field labels some built-in kinds add, as upstream registers them (by group, resource).
KIND_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "events"): (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    ),
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "status.phase"),
}


@dataclass(frozen=True)
class FieldSelector:
    terms: tuple[tuple[str, bool, str], ...]  # (field, equal?, value)

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all((_field_value(obj, field) == value) == equal for field, equal, value in self.terms)


def _field_value(obj: Mapping[str, Any], field: str) -> str:
    """The field's value as upstream's field set has it: a string, "" when absent."""
    if field == "source":  # an Event's source is its reporting component
        source = obj.get("source")
        return str(source.get("component", "")) if isinstance(source, Mapping) else ""
    value: Any = obj
    for step in field.split("."):
        value = value.get(step) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


def parse_field_selector(text: str, resource: GroupResource | None = None) -> FieldSelector:
    """Parse a field selector over `metadata.name` / `metadata.namespace`, plus the field labels
    `KIND_FIELDS` lists for `resource` (group, plural), e.g. an Event's `involvedObject.name`."""
    extra = KIND_FIELDS.get((resource.group, resource.resource), ()) if resource else ()
    supported = SUPPORTED_FIELDS + extra
    terms = []
    for term in filter(None, (t.strip() for t in text.split(","))):
        match = re.fullmatch(r"([^=!]+?)\s*(!=|==|=)\s*(.*)", term)
        if match is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, operator, value = match.groups()
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        terms.append((field, operator != "!=", value))
    return FieldSelector(tuple(terms))
