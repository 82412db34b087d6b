"""The rules every name, label, annotation and free-text field of a request must follow.

Names, labels and annotations end up on Kubernetes objects or next to them, so they follow the
Kubernetes rules exactly (`k8s.io/apimachinery/pkg/util/validation`): a value Brokkr accepts is one
the cluster accepts too. The rules are pure functions, so the services run them before touching the
database and a request that breaks any of them writes nothing.

A service validates a whole request at once and reports every problem in one `InvalidArgument`:

    violations = Violations()
    violations.check(validate_dns_label, "stack.name", name)
    violations.check(validate_labels, "stack.labels", labels)
    violations.raise_if_any()

Conventions of the violations raised here:

* `field` is a proto field path; a map entry is `field["key"]` with the key JSON-quoted, so keys
  holding dots, slashes or spaces stay unambiguous (`stack.labels["app.kubernetes.io/name"]`).
* `description` is a predicate that reads after the field name ("must be at most 63 characters"),
  so it can be shown as `<field>: <description>`.
* `reason` is one of: FIELD_REQUIRED, FIELD_TOO_LONG, INVALID_DNS_LABEL, INVALID_DNS_SUBDOMAIN,
  INVALID_LABEL_KEY, INVALID_LABEL_VALUE, INVALID_ANNOTATION_KEY, ANNOTATIONS_TOO_LARGE,
  CONTROL_CHARACTER, INVALID_UUID (and INVALID_FIELD, the default of `Violations.add`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import ParamSpec, TypeVar

from brokkr_common.errors import FieldViolation, InvalidArgument

P = ParamSpec("P")
R = TypeVar("R")

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
LABEL_NAME_MAX = 63
LABEL_VALUE_MAX = 63
#: Kubernetes' limit on the summed size (UTF-8 bytes) of an object's annotation keys and values.
ANNOTATIONS_MAX_BYTES = 256 * 1024
#: How many violations the error message spells out; the field violations always carry all of them.
_MESSAGE_VIOLATIONS = 5

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
# Kubernetes' IsDNS1123Subdomain: dot-separated labels, 253 characters in all (no per-label limit).
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_LABEL_TEXT = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
# C0 and C1 controls except tab and newline, DEL, and lone surrogates (not encodable as UTF-8).
_FORBIDDEN_CHARACTER = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")

_DNS_LABEL_RULE = "lower-case letters, digits and '-', starting and ending with a letter or digit"
_LABEL_TEXT_RULE = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"


class Violations:
    """Collects the field violations of a whole request, then raises them as one `InvalidArgument`."""

    def __init__(self) -> None:
        self._found: list[FieldViolation] = []

    @property
    def found(self) -> tuple[FieldViolation, ...]:
        return tuple(self._found)

    def __bool__(self) -> bool:
        return bool(self._found)

    def add(self, field: str, description: str, reason: str = "INVALID_FIELD") -> None:
        self._found.append(FieldViolation(field, description, reason))

    def check(self, validate: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R | None:
        """Run one validator; keep its violations instead of raising. Returns its result, or None."""
        try:
            return validate(*args, **kwargs)
        except InvalidArgument as error:
            self._found.extend(error.field_violations)
            return None

    def raise_if_any(self) -> None:
        """Raise one `InvalidArgument` carrying every violation found, if there is any.

        Its reason is the violations' reason when they all share one, else INVALID_ARGUMENT.
        """
        if not self._found:
            return
        reasons = {violation.reason for violation in self._found}
        shown = "; ".join(f"{v.field}: {v.description}" for v in self._found[:_MESSAGE_VIOLATIONS])
        hidden = len(self._found) - _MESSAGE_VIOLATIONS
        message = shown if hidden <= 0 else f"{shown}; and {hidden} more"
        raise InvalidArgument(
            message,
            reason=reasons.pop() if len(reasons) == 1 else None,
            field_violations=self._found,
        )


def entry_field(field: str, key: str) -> str:
    """The path of one map entry: `field["key"]`."""
    return f"{field}[{json.dumps(key, ensure_ascii=False)}]"


def is_dns_label(value: str) -> bool:
    """Whether `value` passes `validate_dns_label`, for rules that word their own message."""
    return len(value) <= DNS_LABEL_MAX and _DNS_LABEL.fullmatch(value) is not None


def is_dns_subdomain(value: str) -> bool:
    """Whether `value` passes `validate_dns_subdomain`, for rules that word their own message."""
    return len(value) <= DNS_SUBDOMAIN_MAX and _DNS_SUBDOMAIN.fullmatch(value) is not None


def validate_dns_label(field: str, value: str) -> None:
    """An RFC 1123 label, as Kubernetes uses for namespaces and most names: `my-app`."""
    rule = f"must consist of {_DNS_LABEL_RULE} (e.g. 'my-app')"
    _check_name(
        field, value, pattern=_DNS_LABEL, max_length=DNS_LABEL_MAX, rule=rule, reason="INVALID_DNS_LABEL"
    )


def validate_dns_subdomain(field: str, value: str) -> None:
    """An RFC 1123 subdomain, dot-separated labels: `example.com`."""
    rule = f"must be dot-separated parts of {_DNS_LABEL_RULE} (e.g. 'example.com')"
    _check_name(
        field,
        value,
        pattern=_DNS_SUBDOMAIN,
        max_length=DNS_SUBDOMAIN_MAX,
        rule=rule,
        reason="INVALID_DNS_SUBDOMAIN",
    )


def _check_name(
    field: str, value: str, *, pattern: re.Pattern[str], max_length: int, rule: str, reason: str
) -> None:
    if not value:
        raise InvalidArgument.for_field(field, "is required", "FIELD_REQUIRED")
    if len(value) > max_length:
        raise InvalidArgument.for_field(
            field, f"must be at most {max_length} characters (got {len(value)})", reason
        )
    if not pattern.fullmatch(value):
        raise InvalidArgument.for_field(field, rule, reason)


def label_key_problem(key: str) -> str | None:
    """What is wrong with a label or annotation key (`[prefix/]name`), or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return "key must not start with '/'; the prefix before '/' must be a DNS subdomain"
    if "/" in prefix:
        return "key must contain at most one '/'"
    if prefix and not is_dns_subdomain(prefix):
        return f"key prefix {prefix!r} must be a DNS subdomain of at most {DNS_SUBDOMAIN_MAX} characters"
    if not name:
        return "key name must not be empty"
    if len(name) > LABEL_NAME_MAX:
        return f"key name must be at most {LABEL_NAME_MAX} characters (got {len(name)})"
    if not _LABEL_TEXT.fullmatch(name):
        return f"key name must consist of {_LABEL_TEXT_RULE}"
    return None


def label_value_problem(value: str) -> str | None:
    """What is wrong with a label value, or None."""
    if len(value) > LABEL_VALUE_MAX:
        return f"value must be at most {LABEL_VALUE_MAX} characters (got {len(value)})"
    if value and not _LABEL_TEXT.fullmatch(value):
        return f"value must be empty or consist of {_LABEL_TEXT_RULE}"
    return None


def validate_labels(field: str, labels: Mapping[str, str]) -> None:
    """Kubernetes labels: every bad key and every bad value, each named by its entry."""
    violations = Violations()
    for key in sorted(labels):
        if problem := label_key_problem(key):
            violations.add(entry_field(field, key), problem, "INVALID_LABEL_KEY")
        if problem := label_value_problem(labels[key]):
            violations.add(entry_field(field, key), problem, "INVALID_LABEL_VALUE")
    violations.raise_if_any()


def validate_annotations(field: str, annotations: Mapping[str, str]) -> None:
    """Kubernetes annotations: keys as label keys, any values, 256 KiB of keys and values in all."""
    violations = Violations()
    for key in sorted(annotations):
        if problem := label_key_problem(key):
            violations.add(entry_field(field, key), problem, "INVALID_ANNOTATION_KEY")
    size = sum(_utf8_size(key) + _utf8_size(value) for key, value in annotations.items())
    if size > ANNOTATIONS_MAX_BYTES:
        violations.add(
            field,
            f"must total at most {ANNOTATIONS_MAX_BYTES} bytes of keys and values (got {size})",
            "ANNOTATIONS_TOO_LARGE",
        )
    violations.raise_if_any()


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def validate_description(field: str, value: str, max_length: int = 1024) -> None:
    """Free text shown to people: bounded in characters; no control characters but newline and tab."""
    violations = Violations()
    if len(value) > max_length:
        violations.add(field, f"must be at most {max_length} characters (got {len(value)})", "FIELD_TOO_LONG")
    if found := _FORBIDDEN_CHARACTER.search(value):
        violations.add(
            field,
            f"must not contain U+{ord(found.group()):04X} (at character {found.start()}); "
            "of the control characters only newline and tab are allowed",
            "CONTROL_CHARACTER",
        )
    violations.raise_if_any()


def validate_uuid(field: str, value: str) -> str:
    """A UUID in its usual 8-4-4-4-12 hex form, in any case; returns it in lower case."""
    if not value:
        raise InvalidArgument.for_field(field, "is required", "FIELD_REQUIRED")
    if not _UUID.fullmatch(value):
        example = "123e4567-e89b-12d3-a456-426614174000"
        raise InvalidArgument.for_field(field, f"must be a UUID such as '{example}'", "INVALID_UUID")
    return value.lower()
