"""`helm lint --strict` passes for every supported value combination, on the oldest supported Kubernetes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import pytest

from tests.integration.charts import scenarios
from tests.integration.charts.rendering import AGENT, BROKER

INFO = 1
OLDEST_SUPPORTED = "v1.29.0"

SCENARIOS = [
    pytest.param(BROKER, values, id=f"broker-{name}") for name, values in scenarios.BROKER.items()
] + [pytest.param(AGENT, values, id=f"agent-{name}") for name, values in scenarios.AGENT.items()]


@pytest.mark.parametrize(("chart", "values"), SCENARIOS)
def test_helm_lint_finds_nothing_to_warn_about(chart: Path, values: dict[str, Any]) -> None:
    report = helm.lint(chart, values, strict=True, namespace="brokkr", kube_version=OLDEST_SUPPORTED)

    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] > INFO] == []
