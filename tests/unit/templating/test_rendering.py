"""Rendering: what a template author writes and gets back, and how a failing render is reported."""

from __future__ import annotations

from typing import Any

import pytest

from broker.domain.templating import render
from brokkr_common.errors import InvalidArgument

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ name }}
  labels: {{ labels|tojson }}
spec:
  replicas: {{ replicas }}
  template:
    spec:
      containers:
{%- for c in containers %}
        - name: {{ c.name }}
          image: "{{ c.image }}:{{ c.tag|default('latest') }}"
          args: [{{ c.args|map('tojson')|join(', ') }}]
{%- endfor %}
"""


def test_a_deployment_renders_as_written() -> None:
    parameters = {
        "name": "web",
        "labels": {"app": "web"},
        "replicas": 3,
        "containers": [
            {"name": "app", "image": "nginx", "tag": "1.27", "args": ["-g", "daemon off;"]},
            {"name": "sidecar", "image": "busybox", "args": []},
        ],
    }
    assert render(DEPLOYMENT, parameters) == (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
        '  labels: {"app": "web"}\nspec:\n  replicas: 3\n  template:\n    spec:\n      containers:\n'
        '        - name: app\n          image: "nginx:1.27"\n          args: ["-g", "daemon off;"]\n'
        '        - name: sidecar\n          image: "busybox:latest"\n          args: []\n'
    )


@pytest.mark.parametrize(
    ("content", "parameters", "expected"),
    [
        pytest.param("a: {{ x }}\n", {"x": 1}, "a: 1\n", id="trailing-newline-kept"),
        pytest.param("v: {{ s }}", {"s": "<b>&'\""}, "v: <b>&'\"", id="no-html-escaping"),
        pytest.param("{{ x is defined }} {{ y|default('d') }}", {"x": 1}, "True d", id="defined-and-default"),
        pytest.param("{{ '%s-%03d'|format(n, i) }}", {"n": "pod", "i": 7}, "pod-007", id="format"),
        pytest.param("{{ '%s:%s' % (a, b) }}", {"a": "k", "b": "v"}, "k:v", id="percent"),
        pytest.param("{{ t|indent(2) }}", {"t": "a\nb"}, "a\n  b", id="indent"),
        pytest.param("{{ 'x-y'|replace('-', '_') }}", {}, "x_y", id="replace"),
        pytest.param("{{ xs|join(',') }}", {"xs": [1, 2]}, "1,2", id="join"),
        pytest.param("{{ xs|sum }} {{ [[1], [2]]|sum(start=[]) }}", {"xs": [1, 2]}, "3 [1, 2]", id="sum"),
        pytest.param("{{ range(3)|list }}", {}, "[0, 1, 2]", id="range"),
        pytest.param("{{ 'ab' * 2 }} {{ 2 ** 10 }} {{ [1] + [2] }}", {}, "abab 1024 [1, 2]", id="arithmetic"),
        pytest.param("{{ a ~ '-' ~ b }}", {"a": "x", "b": 1}, "x-1", id="concat"),
        pytest.param(
            "{{ a == b }} {{ 1 in xs }} {{ 2 < 3 < 4 }}",
            {"a": 1, "b": 1, "xs": [1]},
            "True True True",
            id="compare",
        ),
        pytest.param(
            "{{ 'a,b'.split(',') }} {{ d.get('k') }}", {"d": {"k": 1}}, "['a', 'b'] 1", id="methods"
        ),
        pytest.param("{{ d.items()|list }}", {"d": {"k": 1}}, "[('k', 1)]", id="dict-items"),
        pytest.param("{{ d._id }} {{ d['_id'] }}", {"d": {"_id": 7}}, "7 7", id="underscore-keys-of-data"),
        pytest.param("{{ v|tojson(indent=2) }}", {"v": [1]}, "[\n  1\n]", id="tojson-indent"),
        pytest.param(
            "{% set ns = namespace(n=0) %}{% for i in xs %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}",
            {"xs": [1, 2, 3]},
            "6",
            id="namespace-accumulator",
        ),
        pytest.param(
            "{% for n in tree recursive %}{{ n.name }}[{{ loop(n.children) }}]{% endfor %}",
            {"tree": [{"name": "a", "children": [{"name": "b", "children": []}]}]},
            "a[b[]]",
            id="recursive-loop",
        ),
        pytest.param(
            "{% for x in xs %}{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %}",
            {"xs": "abc"},
            "1/3,2/3,3/3",
            id="loop-variables",
        ),
        pytest.param(
            "{% macro wrap(k) %}{{ k }}=[{{ caller() }}]{% endmacro %}{% call wrap('a') %}b{% endcall %}",
            {},
            "a=[b]",
            id="call-block",
        ),
    ],
)
def test_rendering(content: str, parameters: dict[str, Any], expected: str) -> None:
    assert render(content, parameters) == expected


def test_the_same_input_renders_the_same_text() -> None:
    content = "{% for k, v in d|dictsort %}{{ k }}={{ v }} {% endfor %}{{ xs|unique|list }}"
    parameters = {"d": {"b": 2, "a": 1}, "xs": [3, 1, 3]}
    assert {render(content, parameters) for _ in range(5)} == {"a=1 b=2 [3, 1]"}


def test_render_does_not_change_the_parameters() -> None:
    parameters = {"xs": [1], "d": {"k": "v"}}
    render("{{ xs }}{{ d }}", parameters)
    assert parameters == {"xs": [1], "d": {"k": "v"}}


@pytest.mark.parametrize(
    ("content", "parameters", "line", "problem"),
    [
        pytest.param("a: 1\nb: {{ replicas }}", {}, 2, "'replicas' is undefined", id="undefined-variable"),
        pytest.param(
            "{{ d.missing }}", {"d": {}}, 1, "'dict object' has no attribute 'missing'", id="undefined-key"
        ),
        pytest.param("{% for x in nope %}{% endfor %}", {}, 1, "'nope' is undefined", id="undefined-in-loop"),
        pytest.param("\n\n{{ 1 // zero }}", {"zero": 0}, 3, "ZeroDivisionError", id="division-by-zero"),
        pytest.param("{{ n + 'x' }}", {"n": 1}, 1, "TypeError: unsupported operand", id="type-error"),
        pytest.param(
            "{{ v|tojson(indent=9) }}", {"v": 1}, 1, "tojson indents by at most 8", id="tojson-indent"
        ),
        pytest.param(
            "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
            {},
            1,
            "RecursionError",
            id="endless-recursion",
        ),
    ],
)
def test_runtime_errors_name_the_line(
    content: str, parameters: dict[str, Any], line: int, problem: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        render(content, parameters, field="stack.template")
    error = caught.value
    assert error.reason == "TEMPLATE_RENDER_FAILED"
    (violation,) = error.field_violations
    assert violation.field == "stack.template"
    assert violation.description.startswith(f"failed to render at line {line}: ")
    assert problem in violation.description


def test_render_checks_the_template_too() -> None:
    with pytest.raises(InvalidArgument) as caught:
        render("{% include 'x' %}", {})
    assert caught.value.reason == "TEMPLATE_FEATURE_NOT_ALLOWED"
