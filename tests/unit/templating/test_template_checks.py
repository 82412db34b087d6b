"""Checking a template when it is created: what could never render is refused up front, with its line."""

from __future__ import annotations

import pytest

from broker.domain.templating import MAX_TEMPLATE_BYTES, check_template
from brokkr_common.errors import InvalidArgument

FIELD = "template.content"


def refusal(content: str) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        check_template(content, FIELD)
    return caught.value


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("apiVersion: v1\nkind: ConfigMap\n", id="plain-yaml"),
        pytest.param("name: {{ name }}\n{% for p in ports %}- {{ p.port }}\n{% endfor %}", id="loop"),
        pytest.param(
            "{% macro label(k, v) %}{{ k }}: {{ v }}{% endmacro %}{{ label('a', 'b') }}", id="macro"
        ),
        pytest.param(
            "{% set ns = namespace(n=0) %}{% if x is defined %}{{ x|default(1) }}{% endif %}", id="set-if"
        ),
        pytest.param("{{ cfg|tojson }} {{ text|indent(2) }} {{ xs|join(',') }}", id="bounded-filters"),
        pytest.param("{{ undefined_is_fine_until_rendered }}", id="unknown-variable"),
    ],
)
def test_renderable_templates_pass(content: str) -> None:
    check_template(content, FIELD)


@pytest.mark.parametrize(
    ("content", "line", "problem"),
    [
        pytest.param("ok\n{% if x %}\nno end", 2, "Unexpected end of template", id="unclosed-block"),
        pytest.param("a\nb\n{{ x | }}", 3, "expected token 'name'", id="dangling-filter"),
        pytest.param("{% endfor %}", 1, "Encountered unknown tag 'endfor'", id="stray-end"),
        pytest.param("{% do x.append(1) %}", 1, "Encountered unknown tag 'do'", id="extension-tag"),
        pytest.param("x\n{{ y|nosuchfilter }}", 2, "No filter named 'nosuchfilter'", id="unknown-filter"),
        pytest.param("{{ x is nosuchtest }}", 1, "No test named 'nosuchtest'", id="unknown-test"),
    ],
)
def test_syntax_errors_name_the_line(content: str, line: int, problem: str) -> None:
    error = refusal(content)
    assert error.reason == "INVALID_TEMPLATE"
    (violation,) = error.field_violations
    assert violation.field == FIELD
    assert f"at line {line}: " in violation.description
    assert problem in violation.description


@pytest.mark.parametrize("name", ["center", "wordwrap", "batch", "slice", "urlize", "random"])
def test_filters_that_amplify_or_vary_are_not_available(name: str) -> None:
    error = refusal(f"{{{{ 'x'|{name}(3) }}}}")
    assert error.reason == "INVALID_TEMPLATE"
    assert f"No filter named '{name}'" in error.message


@pytest.mark.parametrize(
    ("content", "tag"),
    [
        pytest.param("{% include 'other.yaml' %}", "include", id="include"),
        pytest.param("{% import 'macros' as m %}", "import", id="import"),
        pytest.param("{% from 'macros' import label %}", "from", id="from-import"),
        pytest.param("{% extends 'base' %}", "extends", id="extends"),
    ],
)
def test_loading_other_templates_is_refused(content: str, tag: str) -> None:
    error = refusal(content)
    assert error.reason == "TEMPLATE_FEATURE_NOT_ALLOWED"
    assert f"uses {{% {tag} %}} at line 1: templates cannot load other templates" in error.message


def test_every_loading_tag_is_reported() -> None:
    error = refusal("a\n{% include 'x' %}\nb\n{% import 'y' as y %}\n")
    assert [v.description.split(":")[0] for v in error.field_violations] == [
        "uses {% include %} at line 2",
        "uses {% import %} at line 4",
    ]


def test_size_is_bounded() -> None:
    check_template("x" * MAX_TEMPLATE_BYTES, FIELD)
    error = refusal("é" * (MAX_TEMPLATE_BYTES // 2 + 1))
    assert error.reason == "TEMPLATE_TOO_LARGE"
    assert f"got {MAX_TEMPLATE_BYTES + 2}" in error.message
