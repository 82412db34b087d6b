"""The sandbox: template text cannot reach Python internals, change data, or call what builds huge text."""

from __future__ import annotations

from typing import Any

import pytest

from broker.domain.templating import render
from brokkr_common.errors import InvalidArgument


def refusal(content: str, parameters: dict[str, Any] | None = None) -> str:
    with pytest.raises(InvalidArgument) as caught:
        render(content, parameters or {})
    assert caught.value.reason == "TEMPLATE_RENDER_FAILED"
    return caught.value.message


@pytest.mark.parametrize(
    ("content", "parameters", "attribute"),
    [
        pytest.param("{{ ''.__class__.__mro__ }}", {}, "__class__", id="mro-of-str"),
        pytest.param("{{ ''.__class__.__mro__[1].__subclasses__() }}", {}, "__class__", id="subclasses"),
        pytest.param("{{ cycler.__init__.__globals__ }}", {}, "__init__", id="globals-of-cycler"),
        pytest.param("{{ joiner.__call__ }}", {}, "__call__", id="dunder-of-global"),
        pytest.param("{{ namespace()._Namespace__attrs }}", {}, "_Namespace__attrs", id="private-attribute"),
        pytest.param("{{ range.__self__ }}", {}, "__self__", id="bound-method-owner"),
        pytest.param("{{ x[name] }}", {"x": "s", "name": "__class__"}, "__class__", id="computed-name"),
        pytest.param("{{ x|attr('__class__') }}", {"x": "s"}, "__class__", id="attr-filter"),
        pytest.param(
            "{{ xs|map(attribute='__class__')|join }}", {"xs": [1]}, "__class__", id="map-attribute"
        ),
        pytest.param("{{ self.__init__ }}", {}, "__init__", id="template-reference"),
    ],
)
def test_python_internals_are_out_of_reach(content: str, parameters: dict[str, Any], attribute: str) -> None:
    assert f"access to attribute {attribute!r}" in refusal(content, parameters)
    assert "is unsafe" in refusal(content, parameters)


@pytest.mark.parametrize(
    ("content", "parameters", "method"),
    [
        pytest.param("{{ xs.append(2) }}", {"xs": [1]}, "append", id="list-append"),
        pytest.param("{{ d.update({'a': 1}) }}", {"d": {}}, "update", id="dict-update"),
        pytest.param("{{ d.pop('k') }}", {"d": {"k": 1}}, "pop", id="dict-pop"),
        pytest.param("{{ d.copy() }}", {"d": {}}, "copy", id="dict-copy"),
        pytest.param("{{ '{}'.format(1) }}", {}, "format", id="str-format"),
        pytest.param("{{ '{x}'.format_map(d) }}", {"d": {"x": 1}}, "format_map", id="str-format-map"),
        pytest.param("{{ 'x'.ljust(10) }}", {}, "ljust", id="str-ljust"),
        pytest.param("{{ 'x'.center(10) }}", {}, "center", id="str-center"),
        pytest.param("{{ '1'.zfill(10) }}", {}, "zfill", id="str-zfill"),
        pytest.param("{{ 'a'.replace('a', 'bb') }}", {}, "replace", id="str-replace"),
        pytest.param("{{ ','.join(xs) }}", {"xs": ["a"]}, "join", id="str-join"),
        pytest.param("{{ 'x'.encode() }}", {}, "encode", id="str-encode"),
        pytest.param("{{ (1).to_bytes(4, 'big') }}", {}, "to_bytes", id="int-to-bytes"),
    ],
)
def test_only_read_only_methods_of_data_may_be_called(
    content: str, parameters: dict[str, Any], method: str
) -> None:
    message = refusal(content, parameters)
    assert f"access to attribute {method!r}" in message


def test_allowed_methods_work() -> None:
    content = (
        "{{ s.upper() }} {{ s.split('-') }} {{ s.startswith('a') }} {{ d.keys()|list }} {{ xs.index(2) }}"
    )
    assert render(content, {"s": "a-b", "d": {"k": 1}, "xs": [1, 2]}) == "A-B ['a', 'b'] True ['k'] 1"


def test_lipsum_is_gone() -> None:
    assert "'lipsum' is undefined" in refusal("{{ lipsum(2) }}")
