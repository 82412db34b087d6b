"""Names, labels, annotations, descriptions and ids: what a user may send, and what they are told."""

from __future__ import annotations

import pytest

from broker.domain.validation import (
    Violations,
    entry_field,
    validate_annotations,
    validate_description,
    validate_dns_label,
    validate_dns_subdomain,
    validate_labels,
    validate_uuid,
)
from brokkr_common.errors import FieldViolation, InvalidArgument


def only_violation(error: pytest.ExceptionInfo[InvalidArgument]) -> FieldViolation:
    (violation,) = error.value.field_violations
    return violation


@pytest.mark.parametrize(
    "value", ["a", "0", "my-app", "a1-b2", "x" * 63], ids=["letter", "digit", "dashed", "mixed", "63-chars"]
)
def test_dns_label_accepts(value: str) -> None:
    validate_dns_label("stack.name", value)


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        ("", "FIELD_REQUIRED", "is required"),
        ("My-App", "INVALID_DNS_LABEL", "lower-case"),
        ("-app", "INVALID_DNS_LABEL", "starting and ending"),
        ("app-", "INVALID_DNS_LABEL", "starting and ending"),
        ("my.app", "INVALID_DNS_LABEL", "lower-case"),
        ("my_app", "INVALID_DNS_LABEL", "lower-case"),
        ("app\n", "INVALID_DNS_LABEL", "lower-case"),
        ("appé", "INVALID_DNS_LABEL", "lower-case"),
        ("x" * 64, "INVALID_DNS_LABEL", "at most 63 characters (got 64)"),
    ],
    ids=[
        "empty",
        "upper-case",
        "leading-dash",
        "trailing-dash",
        "dot",
        "underscore",
        "newline",
        "non-ascii",
        "64-chars",
    ],
)
def test_dns_label_rejects(value: str, reason: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_dns_label("stack.name", value)
    assert error.value.reason == reason
    violation = only_violation(error)
    assert (violation.field, violation.reason) == ("stack.name", reason)
    assert says in violation.description


@pytest.mark.parametrize(
    "value",
    ["a", "example.com", "a-b.c-d.e", "x" * 253, "a." * 126 + "b"],
    ids=["one-label", "domain", "dashes", "253-chars", "many-labels"],
)
def test_dns_subdomain_accepts(value: str) -> None:
    validate_dns_subdomain("agent.cluster_name", value)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "FIELD_REQUIRED"),
        ("Example.com", "INVALID_DNS_SUBDOMAIN"),
        (".example.com", "INVALID_DNS_SUBDOMAIN"),
        ("example.com.", "INVALID_DNS_SUBDOMAIN"),
        ("example..com", "INVALID_DNS_SUBDOMAIN"),
        ("a-.com", "INVALID_DNS_SUBDOMAIN"),
        ("my_host.com", "INVALID_DNS_SUBDOMAIN"),
        ("x" * 254, "INVALID_DNS_SUBDOMAIN"),
    ],
    ids=[
        "empty",
        "upper-case",
        "leading-dot",
        "trailing-dot",
        "double-dot",
        "label-ends-dash",
        "underscore",
        "254-chars",
    ],
)
def test_dns_subdomain_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_dns_subdomain("agent.cluster_name", value)
    assert (only_violation(error).field, error.value.reason) == ("agent.cluster_name", reason)


def test_labels_accept_everything_kubernetes_accepts() -> None:
    validate_labels(
        "stack.labels",
        {
            "app": "web",
            "app.kubernetes.io/name": "Web_1.2-x",
            "example.com/Tier": "",
            "A-b_c.D": "v",
            "n" * 63: "v" * 63,
            "p" * 253 + "/n": "v",
        },
    )


@pytest.mark.parametrize(
    ("key", "value", "reason", "says"),
    [
        ("bad key", "v", "INVALID_LABEL_KEY", "key name must consist of letters, digits"),
        ("-app", "v", "INVALID_LABEL_KEY", "starting and ending with a letter or digit"),
        ("", "v", "INVALID_LABEL_KEY", "key name must not be empty"),
        ("/app", "v", "INVALID_LABEL_KEY", "must not start with '/'"),
        ("example.com/", "v", "INVALID_LABEL_KEY", "key name must not be empty"),
        ("a/b/c", "v", "INVALID_LABEL_KEY", "at most one '/'"),
        ("Example.com/app", "v", "INVALID_LABEL_KEY", "key prefix 'Example.com' must be a DNS subdomain"),
        ("p" * 254 + "/app", "v", "INVALID_LABEL_KEY", "must be a DNS subdomain of at most 253"),
        ("n" * 64, "v", "INVALID_LABEL_KEY", "key name must be at most 63 characters (got 64)"),
        ("app", "-web", "INVALID_LABEL_VALUE", "value must be empty or consist of"),
        ("app", "web app", "INVALID_LABEL_VALUE", "value must be empty or consist of"),
        ("app", "v" * 64, "INVALID_LABEL_VALUE", "value must be at most 63 characters (got 64)"),
    ],
    ids=[
        "space-in-key",
        "key-starts-dash",
        "empty-key",
        "empty-prefix",
        "empty-name",
        "two-slashes",
        "upper-case-prefix",
        "254-char-prefix",
        "64-char-name",
        "value-starts-dash",
        "space-in-value",
        "64-char-value",
    ],
)
def test_labels_reject(key: str, value: str, reason: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_labels("stack.labels", {key: value})
    violation = only_violation(error)
    assert violation.field == entry_field("stack.labels", key)
    assert violation.reason == reason == error.value.reason
    assert says in violation.description


def test_labels_report_every_bad_key_and_value_at_once_in_key_order() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_labels("stack.labels", {"z z": "ok", "good": "fine", "a a": "-bad"})
    assert [(v.field, v.reason) for v in error.value.field_violations] == [
        ('stack.labels["a a"]', "INVALID_LABEL_KEY"),
        ('stack.labels["a a"]', "INVALID_LABEL_VALUE"),
        ('stack.labels["z z"]', "INVALID_LABEL_KEY"),
    ]
    assert error.value.reason == "INVALID_ARGUMENT"  # mixed reasons


def test_entry_field_quotes_keys_as_json() -> None:
    assert entry_field("stack.labels", 'say "hi"') == 'stack.labels["say \\"hi\\""]'
    assert entry_field("stack.labels", "app.kubernetes.io/name") == 'stack.labels["app.kubernetes.io/name"]'


def test_annotations_accept_any_value_up_to_256_kib_in_all() -> None:
    notes = "spaces, ünïcode and\nnewlines"
    used = len("example.com/notes") + len(notes.encode()) + len("k")
    validate_annotations("stack.annotations", {"example.com/notes": notes, "k": "x" * (256 * 1024 - used)})


def test_annotations_count_utf8_bytes_towards_the_limit() -> None:
    # 87,382 three-byte characters: 262,146 bytes, though only 87,382 characters.
    with pytest.raises(InvalidArgument) as error:
        validate_annotations("stack.annotations", {"n": "€" * 87_382})
    violation = only_violation(error)
    assert (violation.field, violation.reason) == ("stack.annotations", "ANNOTATIONS_TOO_LARGE")
    assert "at most 262144 bytes" in violation.description
    assert "(got 262147)" in violation.description


def test_annotations_report_bad_keys_and_size_together() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_annotations("agent.annotations", {"bad key": "x" * (256 * 1024)})
    assert [(v.field, v.reason) for v in error.value.field_violations] == [
        ('agent.annotations["bad key"]', "INVALID_ANNOTATION_KEY"),
        ("agent.annotations", "ANNOTATIONS_TOO_LARGE"),
    ]


@pytest.mark.parametrize(
    "value",
    ["", "My application stack", "line one\nline two\ttabbed", "ünïcode ✓ 🚀", "x" * 1024],
    ids=["empty", "plain", "newline-and-tab", "unicode", "1024-chars"],
)
def test_description_accepts(value: str) -> None:
    validate_description("stack.description", value)


@pytest.mark.parametrize(
    ("value", "reason", "says"),
    [
        ("x" * 1025, "FIELD_TOO_LONG", "at most 1024 characters (got 1025)"),
        ("nul\0byte", "CONTROL_CHARACTER", "U+0000 (at character 3)"),
        ("windows\r\nline", "CONTROL_CHARACTER", "U+000D"),
        ("escape \x1b[31m", "CONTROL_CHARACTER", "U+001B"),
        ("delete\x7f", "CONTROL_CHARACTER", "U+007F"),
        ("c1 \x85", "CONTROL_CHARACTER", "U+0085"),
        ("lone \ud800", "CONTROL_CHARACTER", "U+D800"),
    ],
    ids=["too-long", "nul", "carriage-return", "escape", "delete", "c1-control", "lone-surrogate"],
)
def test_description_rejects(value: str, reason: str, says: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_description("stack.description", value)
    violation = only_violation(error)
    assert (violation.field, violation.reason) == ("stack.description", reason)
    assert says in violation.description


def test_description_reports_length_and_control_character_together_with_custom_limit() -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_description("template.description", "abc\0", max_length=3)
    assert [v.reason for v in error.value.field_violations] == ["FIELD_TOO_LONG", "CONTROL_CHARACTER"]


@pytest.mark.parametrize(
    ("value", "canonical"),
    [
        ("123e4567-e89b-12d3-a456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
        ("123E4567-E89B-12D3-A456-426614174000", "123e4567-e89b-12d3-a456-426614174000"),
    ],
    ids=["lower-case", "upper-case"],
)
def test_uuid_is_returned_in_lower_case(value: str, canonical: str) -> None:
    assert validate_uuid("stack_id", value) == canonical


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "FIELD_REQUIRED"),
        ("web", "INVALID_UUID"),
        ("123e4567e89b12d3a456426614174000", "INVALID_UUID"),
        ("{123e4567-e89b-12d3-a456-426614174000}", "INVALID_UUID"),
        ("urn:uuid:123e4567-e89b-12d3-a456-426614174000", "INVALID_UUID"),
        ("123e4567-e89b-12d3-a456-42661417400g", "INVALID_UUID"),
        ("123e4567-e89b-12d3-a456-426614174000\n", "INVALID_UUID"),
    ],
    ids=["empty", "name", "no-hyphens", "braces", "urn", "non-hex", "trailing-newline"],
)
def test_uuid_rejects(value: str, reason: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        validate_uuid("stack_id", value)
    assert (only_violation(error).field, error.value.reason) == ("stack_id", reason)


def test_violations_raise_one_error_with_every_problem_of_a_request() -> None:
    violations = Violations()
    stack_id = violations.check(validate_uuid, "stack.id", "not-a-uuid")
    violations.check(validate_dns_label, "stack.name", "Web")
    violations.check(validate_labels, "stack.labels", {"app": "ok"})
    violations.check(validate_labels, "stack.labels", {"bad key": "v"})
    assert stack_id is None
    with pytest.raises(InvalidArgument) as error:
        violations.raise_if_any()
    assert [(v.field, v.reason) for v in error.value.field_violations] == [
        ("stack.id", "INVALID_UUID"),
        ("stack.name", "INVALID_DNS_LABEL"),
        ('stack.labels["bad key"]', "INVALID_LABEL_KEY"),
    ]
    assert error.value.reason == "INVALID_ARGUMENT"
    assert error.value.message.startswith("stack.id: must be a UUID")


def test_violations_pass_results_through_and_stay_silent_when_all_is_well() -> None:
    violations = Violations()
    canonical = violations.check(validate_uuid, "stack.id", "123E4567-E89B-12D3-A456-426614174000")
    assert canonical == "123e4567-e89b-12d3-a456-426614174000"
    assert not violations
    violations.raise_if_any()


def test_violations_keep_a_shared_reason_and_shorten_long_messages() -> None:
    violations = Violations()
    for number in range(8):
        violations.add(f"items[{number}].name", "is required", "FIELD_REQUIRED")
    with pytest.raises(InvalidArgument) as error:
        violations.raise_if_any()
    assert error.value.reason == "FIELD_REQUIRED"
    assert len(error.value.field_violations) == 8
    assert error.value.message.endswith("items[4].name: is required; and 3 more")
