"""The charts and the settings models cannot drift apart.

Every BROKKR_* variable a chart sets must be a setting of broker/config.py or agent/config.py,
every setting must be reachable through the chart (or be listed here with the reason it is not),
and the `config` tree in values.yaml must carry the code's defaults, types and bounds.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from agent.config import AgentSettings
from broker.config import BrokerSettings
from tests.integration.charts import scenarios
from tests.integration.charts.rendering import AGENT, BROKER, render

SettingPath = tuple[str, ...]


@dataclass(frozen=True)
class Setting:
    default: Any
    schema: dict[str, Any]


def env_name(path: SettingPath) -> str:
    return "BROKKR_" + "__".join(part.upper() for part in path)


def settings(model: type[BaseModel], path: SettingPath = ()) -> Iterator[tuple[SettingPath, Setting]]:
    """Every leaf setting of `model`: its path, code default and JSON schema (type and bounds)."""
    properties = model.model_json_schema()["properties"]
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from settings(annotation, (*path, name))
            continue
        default = None if field.is_required() else field.get_default(call_default_factory=False)
        yield (*path, name), Setting(default=default, schema=properties[name])


@dataclass(frozen=True)
class Chart:
    path: Path
    settings: dict[SettingPath, Setting]
    #: Settings set by the chart in no way, and why.
    not_in_chart: dict[SettingPath, str]
    #: Settings the chart already sets for a feature whose setting lands in a later issue.
    pending: dict[SettingPath, str]
    #: values.yaml defaults that differ from the code's on purpose, and why.
    own_defaults: dict[SettingPath, str]


BROKER_CHART = Chart(
    path=BROKER,
    settings=dict(settings(BrokerSettings)),
    not_in_chart={},
    pending={},
    own_defaults={("log", "format"): "pods have no terminal: JSON for log collectors, not auto"},
)
AGENT_CHART = Chart(
    path=AGENT,
    settings=dict(settings(AgentSettings)),
    not_in_chart={
        ("broker", "key"): "the key is mounted from a Secret as broker.key_file, never an env value",
        ("kubernetes", "kubeconfig"): "in a pod the agent uses its ServiceAccount",
        ("kubernetes", "context"): "in a pod the agent uses its ServiceAccount",
    },
    pending={},
    own_defaults={
        ("log", "format"): "pods have no terminal: JSON for log collectors, not auto",
        ("broker", "address"): "no useful default: the chart requires the broker's address",
    },
)
CHARTS = [pytest.param(BROKER_CHART, id="broker"), pytest.param(AGENT_CHART, id="agent")]


@functools.cache
def rendered_settings(chart_path: Path) -> frozenset[str]:
    """Every BROKKR_* variable any supported value combination makes the chart set."""
    combinations = scenarios.BROKER if chart_path == BROKER else scenarios.AGENT
    return frozenset(
        name
        for values in combinations.values()
        for name in render(chart_path, values).env()
        if name.startswith("BROKKR_")
    )


def config_leaves(tree: dict[str, Any], path: SettingPath = ()) -> Iterator[tuple[SettingPath, Any]]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from config_leaves(value, (*path, key))
        else:
            yield (*path, key), value


def chart_config(chart: Chart) -> dict[SettingPath, Any]:
    values = yaml.safe_load((chart.path / "values.yaml").read_text())
    return dict(config_leaves(values["config"]))


def chart_config_schema(chart: Chart, path: SettingPath) -> dict[str, Any]:
    node = json.loads((chart.path / "values.schema.json").read_text())["properties"]["config"]
    for part in path:
        node = node["properties"][part]
    return node


def type_and_bounds(schema: dict[str, Any]) -> dict[str, Any]:
    """What a value may be, in JSON Schema words; an optional setting counts as its present type."""
    present = [s for s in schema.get("anyOf", [schema]) if s.get("type") != "null"]
    assert len(present) == 1, schema
    return {
        k: v for k, v in present[0].items() if k in {"type", "enum", "minimum", "maximum", "exclusiveMinimum"}
    }


@pytest.mark.parametrize("chart", CHARTS)
def test_every_setting_the_chart_sets_exists_in_the_settings_model(chart: Chart) -> None:
    known = {env_name(path) for path in chart.settings} | {env_name(path) for path in chart.pending}

    assert rendered_settings(chart.path) - known == set()


@pytest.mark.parametrize("chart", CHARTS)
def test_pending_settings_are_not_in_the_model_yet(chart: Chart) -> None:
    # When one lands, drop it from `pending` so the check above covers it like any other.
    assert set(chart.pending) & set(chart.settings) == set()


@pytest.mark.parametrize("chart", CHARTS)
def test_every_setting_can_be_set_through_the_chart(chart: Chart) -> None:
    reachable = rendered_settings(chart.path)
    missing = [
        ".".join(p) for p in chart.settings if p not in chart.not_in_chart and env_name(p) not in reachable
    ]

    assert missing == []
    assert set(chart.not_in_chart) <= set(chart.settings)


@pytest.mark.parametrize("chart", CHARTS)
def test_config_keys_are_settings_with_the_codes_defaults(chart: Chart) -> None:
    for path, value in chart_config(chart).items():
        assert path in chart.settings, f"config.{'.'.join(path)} is not a setting"
        if path in chart.own_defaults:
            continue
        # An empty string leaves the setting unset, i.e. at the code's default of None.
        assert (None if value == "" else value) == chart.settings[path].default, ".".join(path)
    assert set(chart.own_defaults) <= set(chart_config(chart))


@pytest.mark.parametrize("chart", CHARTS)
def test_config_keys_have_the_settings_types_and_bounds(chart: Chart) -> None:
    for path in chart_config(chart):
        code = type_and_bounds(chart.settings[path].schema)
        values = type_and_bounds(chart_config_schema(chart, path))
        if path[-1] == "port":
            # The chart needs a fixed port for probes and Services; the code's 0 ("any free one") cannot work.
            assert (code.pop("minimum"), values.pop("minimum")) == (0, 1)
        assert values == code, ".".join(path)
