"""Every object the charts render is valid for every supported Kubernetes version.

kubernetes-validate carries the OpenAPI schemas of each Kubernetes release; strict mode refuses
unknown fields too, so a misspelt field (which the API server would drop silently) fails here.
Supported means 1.29 and newer (Chart.yaml's kubeVersion), as far as the package ships schemas.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from kubernetes_validate import utils as kubernetes_validate

from tests.integration.charts import scenarios
from tests.integration.charts.rendering import AGENT, BROKER, Release, render

OLDEST_SUPPORTED = (1, 29)


def major_minor(version: str) -> tuple[int, int]:
    major, minor, *_ = version.split(".")
    return int(major), int(minor)


VERSIONS = [
    v for v in dict.fromkeys(kubernetes_validate.all_versions()) if major_minor(v) >= OLDEST_SUPPORTED
]

#: Custom resources: Kubernetes itself has no schema for them, so kubernetes-validate cannot check them.
#: The ServiceMonitor (Prometheus Operator CRD) is asserted field by field in test_broker_chart.py.
CUSTOM_RESOURCES = {("monitoring.coreos.com/v1", "ServiceMonitor")}

SCENARIOS = [pytest.param(BROKER, name, id=f"broker-{name}") for name in scenarios.BROKER] + [
    pytest.param(AGENT, name, id=f"agent-{name}") for name in scenarios.AGENT
]


@functools.cache
def rendered(chart: Path, scenario: str) -> Release:
    values = (scenarios.BROKER if chart == BROKER else scenarios.AGENT)[scenario]
    return render(chart, values)


@pytest.fixture(scope="module", autouse=True)
def _schemas_read_once() -> Iterator[None]:
    """kubernetes-validate re-reads a 1.3 MB definitions file for every object; read each once."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate, "schema_contents", functools.cache(kubernetes_validate.schema_contents)
        )
        yield


@pytest.mark.parametrize("chart", [BROKER, AGENT], ids=["broker", "agent"])
def test_the_sweep_starts_at_the_oldest_kubernetes_the_chart_accepts(chart: Path) -> None:
    metadata = yaml.safe_load((chart / "Chart.yaml").read_text())

    assert metadata["kubeVersion"] == f">={VERSIONS[0]}-0"
    assert major_minor(VERSIONS[0]) == OLDEST_SUPPORTED


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("chart", "scenario"), SCENARIOS)
def test_every_rendered_object_is_valid(chart: Path, scenario: str, version: str) -> None:
    for obj in rendered(chart, scenario).objects:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_RESOURCES:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            location = ".".join(str(part) for part in error.path)
            pytest.fail(
                f"{obj['kind']}/{obj['metadata']['name']} at {location}: {error.message}", pytrace=False
            )


def test_custom_resources_are_skipped_only_because_there_is_no_schema_for_them() -> None:
    monitor = next(o for o in rendered(BROKER, "service-monitor").objects if o["kind"] == "ServiceMonitor")

    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(monitor, VERSIONS[-1], strict=True)


def test_a_misspelt_field_fails_validation() -> None:
    deployment = rendered(BROKER, "defaults").one("Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    broken = {**deployment, "spec": {**deployment["spec"]}}
    broken["spec"]["template"] = {
        **deployment["spec"]["template"],
        "spec": {
            **deployment["spec"]["template"]["spec"],
            "containers": [{**container, "readinessprobe": {}}],
        },
    }

    with pytest.raises(kubernetes_validate.ValidationError, match="readinessprobe"):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)
