"""Every command in the tutorials and in Getting started, run as written against a real broker.

Each test starts a broker (real gRPC and REST on loopback), kube doubles standing in for the
reader's clusters, and runs the document's `sh` blocks in order in bash (see `tutorial.py`): the
real `brokkrctl`, `curl` and `brokkr-agent` processes, the agent talking to its cluster double over
HTTP. A test asserts that the script succeeded, that the outputs a reader is told to look for are
there, and what the clusters hold afterwards.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from broker.domain.events import EventType
from tests.integration.docs import references, tutorial
from tests.integration.docs.clusters import clusters
from tests.integration.harness import RunningBroker, running_broker
from tests.kube_double.handle import KubeApi

TUTORIALS = tutorial.DOCS / "tutorials"
DOCUMENTS = [
    tutorial.DOCS / "getting-started.md",
    tutorial.DOCS / "reference" / "rest.md",
    *sorted(TUTORIALS.glob("*.md")),
]


@pytest.fixture(scope="module", autouse=True)
def _tools() -> None:
    # The tutorials use jq and curl as readers do; a missing tool is a broken environment, not a skip.
    missing = [tool for tool in ("bash", "curl", "jq") if shutil.which(tool) is None]
    assert not missing, f"the tutorials need {missing} on PATH"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[RunningBroker]:
    with running_broker(f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}") as running:
        yield running


def env_for(broker: RunningBroker, **extra: str) -> dict[str, str]:
    assert broker.admin_key is not None and broker.rest_url is not None
    return {
        "BROKKR_SERVER": broker.grpc_target,
        "BROKKR_URL": broker.rest_url,
        "ADMIN_PAK": broker.admin_key,
        **extra,
    }


def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "reader"
    path.mkdir()
    return path


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_skipped_block_says_why_and_every_document_has_commands(document: Path):
    blocks = tutorial.commands(document.read_text())
    assert any(block.mode == "run" for block in blocks), f"{document.name} runs nothing"
    for block in blocks:
        if block.mode == "skip":
            assert block.skip_reason, f"{document.name}:{block.line}: a skipped block must say why"


def test_every_tutorial_is_exercised():
    tested = {"first-deployment.md", "multi-cluster-targeting.md", "templates.md", "ci-cd-with-generators.md"}
    assert {path.name for path in TUTORIALS.glob("*.md")} == tested


def test_the_harness_runs_blocks_in_order_and_honours_directives(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text(
        "```sh\nGREETING=hello\n```\n"
        "<!-- test: skip (only for readers) -->\n```sh\nexit 3\n```\n"
        "```yaml\nnot: run\n```\n"
        "<!-- test: background -->\n```sh\necho started; sleep 600\n```\n"
        '```sh\necho "$GREETING $WHO"\nsleep 0.5\n```\n'
    )
    # A document outside docs/ is named by its file name in the trace.
    script = tutorial.script(document.read_text(), "doc.md")
    assert "exit 3" not in script and "not: run" not in script
    started = time.monotonic()
    result = tutorial.run(document, workdir(tmp_path), {"WHO": "reader"}, timeout=30)
    assert result.returncode == 0, result.explain()
    assert result.stdout == "hello reader\n"
    assert result.background_log(1) == "started\n"
    assert time.monotonic() - started < 15, "the background job ended with the script"


def test_a_failing_command_fails_the_tutorial(tmp_path: Path):
    document = tmp_path / "doc.md"
    document.write_text("```sh\nfalse\necho unreachable\n```\n")
    result = tutorial.run(document, workdir(tmp_path), {})
    assert result.returncode == 1
    assert "unreachable" not in result.stdout


def test_getting_started(broker: RunningBroker, tmp_path: Path):
    result = tutorial.run(tutorial.DOCS / "getting-started.md", workdir(tmp_path), env_for(broker))
    assert result.returncode == 0, result.explain()
    assert '"name": "my-app"' in result.stdout
    assert "ROLE_ADMIN" in result.stdout
    assert "STACK_NOT_FOUND" in result.stdout + result.stderr


def test_rest_reference(broker: RunningBroker, tmp_path: Path):
    result = tutorial.run(tutorial.DOCS / "reference" / "rest.md", workdir(tmp_path), env_for(broker))
    assert result.returncode == 0, result.explain()
    out = result.stdout
    assert '"role":"ROLE_ADMIN"' in out and "\n401\n" in out
    assert '"reason": "UNKNOWN_FIELD"' in out and '"field": "stack.colour"' in out
    assert '{"names":["rest-demo-2"],"nextPageToken":""}' in out, "the second page ends the list"
    assert '["rest-demo"]' in out, "the label selector kept the stack labelled env=dev only"
    assert '{"description":"changed","labels":{"env":"dev"}}' in out, "the mask kept the labels"
    assert '"type":"stack.created"' in out
    created_once = [line for line in out.splitlines() if len(line) == 36 and line.count("-") == 4]
    assert len(created_once) == 2 and created_once[0] == created_once[1]


def test_first_deployment(database_url: str, tmp_path: Path):
    """On SQLite and PostgreSQL (LISTEN/NOTIFY delivery); the other documents use SQLite only, since
    they exercise the commands, not the database, and each costs seconds of two shared cores."""
    with running_broker(database_url) as broker, clusters(tmp_path, "dev") as running:
        dev = running["dev"]
        result = tutorial.run(
            TUTORIALS / "first-deployment.md",
            workdir(tmp_path),
            env_for(broker, KUBECONFIG=str(dev.kubeconfig_path)),
        )
        assert result.returncode == 0, result.explain()
        out = result.stdout + result.stderr
        assert "ROLE_ADMIN" in out
        assert "stack/hello deployment object 1 created (new stack)" in out
        assert "dev-laptop (kind-brokkr-dev): done, applied 1/1, state APPLIED" in out
        assert "+  message: Hello again" in out and "diff exit code 1" in out
        assert "dev-laptop (kind-brokkr-dev): done, applied 2/2" in out
        assert "stack/hello unchanged at deployment object 2" in out
        # The stack was deleted last, and the tutorial waited for the agent to report it removed.
        assert '"state":"DEPLOYMENT_STATE_REMOVED"' in out
        assert dev.get_object("v1", "Namespace", None, "hello") is None, "its namespace was pruned"
        assert dev.get_object("apps/v1", "Deployment", "hello", "web") is None
        assert "agent started" in result.background_log(1)
        check_event_payloads_are_documented(broker)


def check_event_payloads_are_documented(broker: RunningBroker) -> None:
    """The events the tutorial caused carry only payload keys docs/reference/events.md names."""
    request = urllib.request.Request(
        f"{broker.rest_url}/api/v1/events?pageSize=1000",
        headers={"Authorization": f"Bearer {broker.admin_key}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        events = json.load(response)["events"]
    seen = {event["type"] for event in events}
    assert {"agent.registered", "agent.connected", "stack.created", "deployment.applied"} <= seen
    for event in events:
        undocumented = set(event["payload"]) - references.documented_payload_keys(EventType(event["type"]))
        assert not undocumented, f"{event['type']} has payload keys the reference omits: {undocumented}"


def test_multi_cluster_targeting(broker: RunningBroker, tmp_path: Path):
    with clusters(tmp_path, "prod-eu", "prod-us", "staging") as running:
        result = tutorial.run(
            TUTORIALS / "multi-cluster-targeting.md",
            workdir(tmp_path),
            env_for(
                broker,
                KUBECONFIG_PROD_EU=str(running["prod-eu"].kubeconfig_path),
                KUBECONFIG_PROD_US=str(running["prod-us"].kubeconfig_path),
                KUBECONFIG_STAGING=str(running["staging"].kubeconfig_path),
            ),
        )
        assert result.returncode == 0, result.explain()
        check_multi_cluster(result, running)
        assert "[]" in result.stdout, "the generator's stack reached nobody before the registration"


def check_multi_cluster(result: tutorial.Result, running: dict[str, KubeApi]) -> None:
    out = result.stdout + result.stderr
    assert "all 2 agents applied it and report it healthy" in out
    assert "all 3 agents applied it and report it healthy" in out
    config = running["staging"].get_object("v1", "ConfigMap", "monitoring", "exporter-settings")
    assert config is not None, "the stack labelled tier=observability reached staging"
    for name in ("prod-eu", "prod-us"):
        assert running[name].get_object("v1", "ConfigMap", "shop", "shop-settings") is not None
    assert running["staging"].get_object("v1", "ConfigMap", "shop", "shop-settings") is None
    # The team's generator stack reached only the agent registered with the generator.
    assert running["prod-eu"].get_object("v1", "ConfigMap", "payments", "payments-settings") is not None
    assert running["prod-us"].get_object("v1", "ConfigMap", "payments", "payments-settings") is None


def test_templates(broker: RunningBroker, tmp_path: Path):
    with clusters(tmp_path, "dev") as running:
        dev = running["dev"]
        result = tutorial.run(
            TUTORIALS / "templates.md",
            workdir(tmp_path),
            env_for(broker, KUBECONFIG=str(dev.kubeconfig_path)),
        )
        assert result.returncode == 0, result.explain()
        out = result.stdout + result.stderr
        assert '"field": "parameters.replicas"' in out and '"field": "parameters.team"' in out
        assert "replicas: 1" in out, "the dry run shows the schema's default"
        team_a = dev.get_object("v1", "ConfigMap", "team-a", "team-settings")
        team_b = dev.get_object("v1", "ConfigMap", "team-b", "team-settings")
        assert team_a is not None and team_b is not None
        assert team_a["data"] == {"owner": "a@example.com", "tier": "standard"}, "version 2 rolled out"
        assert team_b["data"] == {"owner": "b@example.com"}, "team-b still runs what version 1 rendered"
        assert dev.get_object("apps/v1", "Deployment", "team-b", "welcome")["spec"]["replicas"] == 2
        check_event_payloads_are_documented(broker)


def test_ci_cd_with_generators(broker: RunningBroker, tmp_path: Path):
    with clusters(tmp_path, "prod") as running:
        prod = running["prod"]
        result = tutorial.run(
            TUTORIALS / "ci-cd-with-generators.md",
            workdir(tmp_path),
            env_for(broker, KUBECONFIG=str(prod.kubeconfig_path)),
        )
        assert result.returncode == 0, result.explain()
        out = result.stdout + result.stderr
        assert "ROLE_GENERATOR" in out
        assert "error: ROLE_NOT_ALLOWED: generator keys may not call CreateAgent" in out
        assert "refused with exit code 1" in out
        assert "stack/storefront unchanged at deployment object 1" in out
        assert any(
            line.startswith("+") and line.endswith("image: ghcr.io/example/storefront:1.1.0")
            for line in out.splitlines()
        ), "diff showed the new image"
        assert "prod-1 (prod-1): done, applied 2/2" in out
        assert "error: KEY_INVALID" in out and "the old key is refused: exit code 1" in out
        deployment = prod.get_object("apps/v1", "Deployment", "storefront", "storefront")
        assert deployment is not None
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == "ghcr.io/example/storefront:1.1.0"
        check_event_payloads_are_documented(broker)
