"""values.schema.json refuses what the chart would misread, and values.yaml documents every key.

Helm checks the schema before rendering anything, so a typo or a wrong type fails `helm install`
with the key named instead of being silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

from tests.integration.charts import scenarios
from tests.integration.charts.rendering import AGENT, BROKER, render

CHARTS = [pytest.param(BROKER, id="broker"), pytest.param(AGENT, id="agent")]


def required(chart: Path) -> dict[str, Any]:
    return scenarios.AGENT_REQUIRED if chart == AGENT else {}


@pytest.mark.parametrize(
    ("chart", "values", "expected"),
    [
        (BROKER, {"replicas": 2}, "at '': additional properties 'replicas' not allowed"),
        (
            BROKER,
            {"config": {"grpc": {"prot": 50051}}},
            "at '/config/grpc': additional properties 'prot' not allowed",
        ),
        # Secrets and files are chart-managed; a plain-text database URL in config would bypass the Secret.
        (
            BROKER,
            {"config": {"database": {"url": "x"}}},
            "at '/config/database': additional properties 'url'",
        ),
        (BROKER, {"replicaCount": "two"}, "at '/replicaCount': got string, want integer"),
        (
            BROKER,
            {"config": {"rest": {"enabled": "yes"}}},
            "at '/config/rest/enabled': got string, want boolean",
        ),
        (BROKER, {"config": {"grpc": {"port": 0}}}, "at '/config/grpc/port': minimum: got 0, want 1"),
        (BROKER, {"config": {"log": {"level": "verbose"}}}, "at '/config/log/level'"),
        (BROKER, {"adminKey": {"hash": scenarios.ADMIN_KEY}}, "at '/adminKey/hash'"),
        (BROKER, {"database": {"external": {"url": "mysql://db/brokkr"}}}, "at '/database/external/url'"),
        (BROKER, {"postgresql": {"auth": {"password": "p@ss/word"}}}, "at '/postgresql/auth/password'"),
        (
            BROKER,
            {"service": {"ports": {"grpc": "50051"}}},
            "at '/service/ports/grpc': got string, want integer",
        ),
        (BROKER, {"nodeSelector": {"zone": 1}}, "at '/nodeSelector/zone': got number, want string"),
        (AGENT, {"replicaCount": 2}, "at '': additional properties 'replicaCount' not allowed"),
        (AGENT, {"agentKey": {"value": scenarios.ADMIN_KEY_HASH}}, "at '/agentKey/value'"),
        (AGENT, {"rbac": {"scope": "cluster-wide"}}, "at '/rbac/scope'"),
        (
            AGENT,
            {"config": {"broker": {"key": "brokkr_x_y"}}},
            "at '/config/broker': additional properties 'key'",
        ),
        (
            AGENT,
            {"config": {"kubernetes": {"kubeconfig": "/k"}}},
            "additional properties 'kubeconfig' not allowed",
        ),
        (AGENT, {"config": {"broker": {"address": "brokkr.example.com"}}}, "at '/config/broker/address'"),
        (AGENT, {"rbac": {"rules": [{"apiGroups": [""]}]}}, "at '/rbac/rules/0': missing property 'verbs'"),
    ],
)
def test_unknown_keys_and_wrong_types_are_refused_before_rendering(
    chart: Path, values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        render(chart, {**required(chart), **values})

    assert expected in str(refused.value)


def test_a_hash_from_brokkr_broker_hash_key_is_accepted() -> None:
    render(BROKER, {"adminKey": {"hash": scenarios.ADMIN_KEY_HASH}})


@pytest.mark.parametrize(
    ("chart", "values"),
    [
        pytest.param(BROKER, {"config": {"grpc": {"port": None}}}, id="broker"),
        pytest.param(AGENT, {**scenarios.AGENT_REQUIRED, "config": {"http": {"port": None}}}, id="agent"),
    ],
)
def test_removing_a_key_with_null_is_refused(chart: Path, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmValuesError, match="missing property 'port'"):
        render(chart, values)


# --- values.yaml is the reference ----------------------------------------------------------------------


def declared(schema: dict[str, Any], path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], dict]]:
    """Every key the schema spells out, with its schema; free-form objects end the walk."""
    for name, child in schema.get("properties", {}).items():
        yield (*path, name), child
        yield from declared(child, (*path, name))


def documented(node: yaml.Node, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], int]]:
    """Every mapping key in values.yaml with the line it is on."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield (*path, key.value), key.start_mark.line
            yield from documented(value, (*path, key.value))


def schema_keys(chart: Path) -> dict[tuple[str, ...], dict]:
    return dict(declared(json.loads((chart / "values.schema.json").read_text())))


@pytest.mark.parametrize("chart", CHARTS)
def test_every_key_of_the_chart_has_a_comment_in_values_yaml(chart: Path) -> None:
    text = (chart / "values.yaml").read_text()
    lines = text.splitlines()
    chart_keys = schema_keys(chart)
    undocumented = [
        ".".join(path)
        for path, line in documented(yaml.compose(text))
        if path in chart_keys and not lines[line - 1].lstrip().startswith("#")
    ]

    assert undocumented == []


@pytest.mark.parametrize("chart", CHARTS)
def test_the_schema_is_strict_everywhere_it_spells_keys_out(chart: Path) -> None:
    loose = [
        ".".join(path)
        for path, child in schema_keys(chart).items()
        if "properties" in child and child.get("additionalProperties") is not False
    ]

    assert loose == []
