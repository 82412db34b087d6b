"""`brokkrctl apply` and `brokkrctl diff` against a real broker.

apply must be idempotent (CI runs it on every commit): same files, no new deployment object; only
formatting changed, none either; content changed, exactly one. diff exits like `kubectl diff`.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from brokkr_common.ctl.main import cli
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2_grpc as do_grpc
from brokkr_common.pb.brokkr.v1 import generator_pb2
from brokkr_common.pb.brokkr.v1 import generator_service_pb2 as generator_api
from brokkr_common.pb.brokkr.v1 import generator_service_pb2_grpc as generator_grpc
from tests.integration.harness import running_broker

NAMESPACE = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n"
CONFIG = (
    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: shop\ndata:\n  colour: blue\n"
)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('apply') / 'brokkr.db'}") as running:
        yield running


@pytest.fixture
def ctl(broker):
    def run(*args: str, input: str | None = None):
        env = {
            "BROKKR_SERVER": broker.grpc_target,
            "BROKKR_KEY": broker.admin_key,
            "BROKKR_CONFIG": "/nonexistent",
        }
        return CliRunner().invoke(cli, list(args), env=env, input=input, catch_exceptions=False)

    return run


def deployment_objects(broker, stack_id: str) -> list:
    stub = do_grpc.DeploymentObjectServiceStub(broker.channel)
    reply = stub.ListDeploymentObjects(
        do_api.ListDeploymentObjectsRequest(stack_id=stack_id), metadata=broker.metadata(broker.admin_key)
    )
    return list(reply.deployment_objects)


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    directory = tmp_path / "manifests"
    directory.mkdir()
    (directory / "10-config.yaml").write_text(CONFIG)
    (directory / "00-namespace.yml").write_text(NAMESPACE)
    (directory / "README.md").write_text("not a manifest")
    return directory


def apply_json(ctl, *args: str) -> dict:
    result = ctl("-o", "json", "apply", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_apply_creates_the_stack_then_submits_only_changes(ctl, broker, manifests: Path):
    first = apply_json(ctl, "-f", str(manifests), "--stack", "shop")
    assert first["stack"]["created"] is True
    assert first["deploymentObject"] | {"id": None} == {
        "id": None,
        "sequenceId": "1",
        "checksum": hashlib.sha256(f"{NAMESPACE}---\n{CONFIG}".encode()).hexdigest(),
        "created": True,
    }
    stack_id = first["stack"]["id"]

    again = apply_json(ctl, "-f", str(manifests), "--stack", "shop")
    assert again["stack"] == {"id": stack_id, "name": "shop", "created": False}
    assert again["deploymentObject"]["created"] is False
    assert again["reason"] == "same checksum"

    # comments, key order and flow style differ; the objects do not
    (manifests / "00-namespace.yml").write_text(
        "# the shop\n{apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n"
    )
    (manifests / "10-config.yaml").write_text(
        "kind: ConfigMap\napiVersion: v1\ndata: {colour: blue}\nmetadata: {namespace: shop, name: settings}\n"
    )
    reformatted = apply_json(ctl, "-f", str(manifests), "--stack", "shop")
    assert reformatted["deploymentObject"] | {"id": None} == first["deploymentObject"] | {
        "id": None,
        "created": False,
    }
    assert reformatted["reason"] == "same objects; only formatting, comments or order differ"


def test_apply_submits_a_new_version_when_content_changes(ctl, broker, manifests: Path):
    first = apply_json(ctl, "-f", str(manifests), "--stack", "shop-two")
    (manifests / "10-config.yaml").write_text(CONFIG.replace("blue", "green"))
    result = ctl("apply", "-f", str(manifests), "--stack", "shop-two")
    assert result.exit_code == 0, result.output
    assert result.stdout == "stack/shop-two deployment object 2 created (content changed)\n"
    assert [d.sequence_id for d in deployment_objects(broker, first["stack"]["id"])] == [2, 1]
    unchanged = ctl("apply", "-f", str(manifests), "--stack", "shop-two")
    assert unchanged.stdout == "stack/shop-two unchanged at deployment object 2 (same checksum)\n"
    assert len(deployment_objects(broker, first["stack"]["id"])) == 2


def test_apply_prints_what_it_did(ctl, tmp_path: Path):
    file = tmp_path / "ns.yaml"
    file.write_text(NAMESPACE)
    result = ctl("apply", "-f", str(file), "--stack", "printed", "--label", "env=dev")
    assert result.exit_code == 0, result.output
    assert result.stdout == "stack/printed created\nstack/printed deployment object 1 created (new stack)\n"
    assert "env=dev" in ctl("stacks", "list").stdout


def test_apply_reads_stdin(ctl):
    result = ctl("-o", "json", "apply", "-f", "-", "--stack", "from-stdin", input=NAMESPACE)
    assert result.exit_code == 0, result.output
    assert (
        json.loads(result.stdout)["deploymentObject"]["checksum"]
        == hashlib.sha256(NAMESPACE.encode()).hexdigest()
    )


def test_apply_assigns_a_new_stack_to_a_generator_by_name(ctl, broker, tmp_path: Path):
    stub = generator_grpc.GeneratorServiceStub(broker.channel)
    generator = stub.CreateGenerator(
        generator_api.CreateGeneratorRequest(generator=generator_pb2.Generator(name="ci-pipeline")),
        metadata=broker.metadata(broker.admin_key),
    ).generator
    file = tmp_path / "ns.yaml"
    file.write_text(NAMESPACE)
    assert ctl("apply", "-f", str(file), "--stack", "owned", "--generator", "ci-pipeline").exit_code == 0
    stack = json.loads(ctl("-o", "json", "stacks", "list").stdout)
    assert next(s for s in stack if s["name"] == "owned")["generatorId"] == generator.id
    missing = ctl("apply", "-f", str(file), "--stack", "orphan", "--generator", "nobody")
    assert missing.exit_code == 1
    assert "GENERATOR_NOT_FOUND" in missing.stderr


def test_apply_relays_the_brokers_validation_error_and_creates_no_version(ctl, broker, tmp_path: Path):
    file = tmp_path / "bad.yaml"
    file.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n")
    result = ctl("-o", "json", "apply", "-f", str(file), "--stack", "rejected")
    assert result.exit_code == 1
    assert "INVALID_MANIFEST" in result.stderr and "metadata.name is required" in result.stderr
    stacks = json.loads(ctl("-o", "json", "stacks", "list").stdout)
    stack_id = next(s["id"] for s in stacks if s["name"] == "rejected")
    assert deployment_objects(broker, stack_id) == []


def test_apply_refuses_missing_files_and_empty_directories(ctl, tmp_path: Path):
    missing = ctl("apply", "-f", str(tmp_path / "nope"), "--stack", "x")
    assert missing.exit_code == 2
    assert missing.stderr == f"error: {tmp_path / 'nope'} does not exist\n", "one line, however long"
    empty = tmp_path / "empty"
    empty.mkdir()
    no_yaml = ctl("apply", "-f", str(empty), "--stack", "x")
    assert no_yaml.exit_code == 2
    assert "no *.yaml or *.yml file" in no_yaml.stderr


def test_diff_exits_0_without_differences_and_1_with_a_per_object_diff(ctl, manifests: Path):
    apply_json(ctl, "-f", str(manifests), "--stack", "diffed")
    same = ctl("diff", "-f", str(manifests), "--stack", "diffed")
    assert (same.exit_code, same.stdout) == (0, "")

    (manifests / "10-config.yaml").write_text(CONFIG.replace("blue", "green"))
    (manifests / "20-extra.yaml").write_text(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: bot\n  namespace: shop\n"
    )
    changed = ctl("diff", "-f", str(manifests), "--stack", "diffed")
    assert changed.exit_code == 1
    lines = changed.stdout.splitlines()
    assert "--- live/v1 ConfigMap shop/settings" in lines
    assert "+++ local/v1 ConfigMap shop/settings" in lines
    assert "-  colour: blue" in lines and "+  colour: green" in lines
    assert "+++ local/v1 ServiceAccount shop/bot" in lines
    assert not any("Namespace" in line for line in lines), "unchanged objects are not shown"
    assert "\x1b[" not in changed.stdout, "no colour when stdout is not a terminal"


def test_diff_against_a_missing_stack_shows_everything_as_new(ctl, manifests: Path):
    result = ctl("diff", "-f", str(manifests), "--stack", "not-there-yet")
    assert result.exit_code == 1
    assert "+++ local/v1 Namespace shop" in result.stdout


def test_diff_exits_2_on_errors(ctl, broker, manifests: Path, tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: [\n")
    invalid = ctl("diff", "-f", str(bad), "--stack", "diffed")
    assert invalid.exit_code == 2
    assert "invalid YAML" in invalid.stderr
    denied = CliRunner().invoke(
        cli,
        ["diff", "-f", str(manifests), "--stack", "x"],
        env={"BROKKR_SERVER": broker.grpc_target, "BROKKR_KEY": "brokkr_0000000000000000_" + "a" * 43},
    )
    assert denied.exit_code == 2
    assert "KEY_INVALID" in denied.stderr
