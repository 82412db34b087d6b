"""Render limits: a hostile or careless template is stopped early, deterministically, and says why.

Most cases use small limits, so that each would quietly succeed (fast) if its guard were missing.
"""

from __future__ import annotations

from typing import Any

import pytest

from broker.domain.templating import MAX_OUTPUT_BYTES, render
from brokkr_common.errors import InvalidArgument


def limit_error(content: str, parameters: dict[str, Any] | None = None, **limits: int) -> str:
    with pytest.raises(InvalidArgument) as caught:
        render(content, parameters or {}, **limits)
    assert caught.value.reason == "TEMPLATE_LIMIT_EXCEEDED"
    (violation,) = caught.value.field_violations
    assert violation.field == "template.content"
    return violation.description


# With the default limits: the cases the limits exist for.


def test_a_range_of_a_billion_is_refused() -> None:
    assert "range() may yield at most 100000 numbers (asked for 1000000000)" in limit_error(
        "{% for i in range(10**9) %}{% endfor %}"
    )


def test_nested_loops_that_print_nothing_still_run_out_of_steps() -> None:
    content = "{% for i in range(100000) %}\n{% for j in range(100000) %}{% endfor %}{% endfor %}"
    assert "line 2: the template takes more than 500000 steps" in limit_error(content)


def test_output_stops_at_the_limit() -> None:
    message = limit_error("{% for i in range(100000) %}{{ 'x' * 100 }}\n{% endfor %}")
    assert f"the output would be larger than {MAX_OUTPUT_BYTES} bytes" in message


def test_doubling_a_string_is_stopped_before_memory_runs_out() -> None:
    content = (
        "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}"
    )
    assert f"a value would be larger than {MAX_OUTPUT_BYTES} bytes" in limit_error(content)


def test_a_list_nested_in_itself_weighs_what_printing_it_would_take() -> None:
    content = "{% set x = ['leaf'] %}" + "{% set x = [x, x] %}" * 60 + "{{ x|length }}"
    assert "a value would be larger than" in limit_error(content)


# With small limits: each guard on its own.


def test_output_limit_counts_utf8_bytes() -> None:
    assert render("{{ 'é' * 50 }}", {}, max_bytes=100) == "é" * 50
    assert "the output would be larger than 100 bytes" in limit_error("{{ 'é' * 51 }}", max_bytes=100)


def test_steps_are_deterministic() -> None:
    content = "{% for i in range(1000) %}{% endfor %}"
    render(content, {}, max_steps=5000)
    for _ in range(3):
        assert "the template takes more than 500 steps" in limit_error(content, max_steps=500)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{% for x in xs %}{% endfor %}", id="loop-over-data"),
        pytest.param("{% for x in xs %}{{ '' }}{% endfor %}", id="loop-printing-nothing"),
        pytest.param("{% for x in [1] recursive %}{{ loop(xs) if x == 1 }}{% endfor %}", id="recursive-loop"),
        pytest.param(
            "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(30) }}",
            id="exponential-macro",
        ),
        pytest.param(
            "{% for i in range(50) %}{% if big == copy %}{% endif %}{% endfor %}", id="comparing-big"
        ),
        pytest.param("{% for i in range(50) %}{% if 0 in big %}{% endif %}{% endfor %}", id="searching-big"),
        pytest.param("{% for i in range(50) %}{{ big|length }}{% endfor %}", id="filtering-big"),
        pytest.param("{% for i in range(50) %}{{ big is sequence }}{% endfor %}", id="testing-big"),
        pytest.param("{% for i in range(50) %}{{ big.count(0) }}{% endfor %}", id="method-on-big"),
        pytest.param("{% for i in range(50) %}{% set s = big[1:] %}{% endfor %}", id="slicing-big"),
        pytest.param(
            "{% for i in range(30) %}{{ lists|sum(start=[])|length }}{% endfor %}", id="summing-lists"
        ),
        pytest.param(
            "{% for i in range(50) %}" + "literal text " * 500 + "{% endfor %}", id="long-loop-body"
        ),
    ],
)
def test_work_is_charged_to_the_step_budget(content: str) -> None:
    parameters = {"xs": list(range(5000)), "big": list(range(5000)), "copy": list(range(5000))}
    parameters["lists"] = [[0] * 10 for _ in range(500)]
    assert "the template takes more than 5000 steps" in limit_error(content, parameters, max_steps=5000)


@pytest.mark.parametrize(
    ("content", "parameters", "what"),
    [
        pytest.param("{% set s = 'x' * 2000 %}", {}, "a value", id="repeat-text"),
        pytest.param("{% set s = 2000 * 'x' %}", {}, "a value", id="repeat-text-reversed"),
        pytest.param("{% set s = [1] * 2000 %}", {}, "a value", id="repeat-list"),
        pytest.param("{% set s = a + a %}", {"a": "x" * 600}, "a value", id="add"),
        pytest.param("{% set s = a ~ a %}", {"a": "x" * 600}, "a value", id="concat"),
        pytest.param("{% set s = '%2000s' % 'x' %}", {}, "a formatted text", id="percent-width"),
        pytest.param("{% set s = '%*s' % (2000, 'x') %}", {}, "a formatted text", id="percent-star-width"),
        pytest.param("{% set s = '%2000s'|format('x') %}", {}, "a formatted text", id="format-width"),
        pytest.param("{% set s = text|indent(200) %}", {"text": "\n" * 20}, "an indented text", id="indent"),
        pytest.param(
            "{% set s = text|indent('-' * 200) %}", {"text": "\n" * 20}, "an indented text", id="indent-text"
        ),
        pytest.param("{% set s = range(100)|join('-' * 30) %}", {}, "a joined text", id="join-separator"),
        pytest.param(
            "{% set s = text|replace('a', 'b' * 100) %}", {"text": "a" * 30}, "a replaced text", id="replace"
        ),
        pytest.param("{% set s = d.get('k') %}", {"d": {"k": "x" * 2000}}, "a value", id="call-result"),
        pytest.param("{{ xs|first }}", {"xs": ["x" * 2000]}, "a value", id="filter-result"),
        pytest.param("{{ xs }}", {"xs": ["x" * 300] * 4}, "a value", id="printed"),
        pytest.param(
            "{% set ns = namespace() %}{% set ns.a = xs %}{% set ns.b = xs %}{{ ns }}",
            {"xs": ["x" * 300] * 2},
            "a value",
            id="printed-namespace",
        ),
    ],
)
def test_values_are_bounded_before_they_are_built(
    content: str, parameters: dict[str, Any], what: str
) -> None:
    assert f"{what} would be larger than 1000 bytes" in limit_error(content, parameters, max_bytes=1000)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("{% set n = 10 ** 100000 %}", id="power"),
        pytest.param("{% set n = big * big %}", id="product"),
    ],
)
def test_numbers_are_bounded(content: str) -> None:
    assert "a number would have more than 16384 bits" in limit_error(content, {"big": 2**10000})


def test_reasonable_arithmetic_is_fine() -> None:
    assert render("{{ 2.5 * 10 ** 6 }} {{ 2 ** 64 }}", {}, max_bytes=1000) == "2500000.0 18446744073709551616"


def test_a_large_legitimate_render_fits_the_defaults() -> None:
    content = """\
{% for i in range(count) %}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name }}-{{ i }}
  labels: {{ labels|tojson }}
data:
{%- for key, value in data|dictsort %}
  {{ key }}: {{ value|tojson }}
{%- endfor %}
{% endfor %}"""
    parameters = {
        "count": 400,
        "name": "settings",
        "labels": {"app": "web", "tier": "backend"},
        "data": {f"key-{k}": "value " * 20 for k in range(20)},
    }
    rendered = render(content, parameters)
    assert rendered.count("kind: ConfigMap") == 400
    assert len(rendered.encode()) > 1_000_000
