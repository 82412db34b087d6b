"""`brokkrctl templates` against a real broker: create from files, version, read back, instantiate
with parameters from files and `-p`, dry-run rendering, and precise errors that create nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from brokkr_common.ctl.main import cli
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2 as do_api
from brokkr_common.pb.brokkr.v1 import deployment_object_service_pb2_grpc as do_grpc
from tests.integration.harness import running_broker

CONTENT = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ name }}
  namespace: {{ namespace }}
data:
  replicas: "{{ replicas }}"
  tag: "{{ image.tag }}"
  debug: "{{ debug | lower }}"
"""
SCHEMA = """\
type: object
required: [name, replicas]
properties:
  name: {type: string}
  namespace: {type: string, default: shop}
  replicas: {type: integer, minimum: 1}
  debug: {type: boolean, default: false}
  image:
    type: object
    properties:
      tag: {type: string, default: latest}
    default: {}
"""


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    with running_broker(f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('tpl') / 'brokkr.db'}") as running:
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


def ok_json(ctl, *args: str, input: str | None = None):
    result = ctl("-o", "json", *args, input=input)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def deployment_objects(broker, stack_id: str) -> list:
    stub = do_grpc.DeploymentObjectServiceStub(broker.channel)
    reply = stub.ListDeploymentObjects(
        do_api.ListDeploymentObjectsRequest(stack_id=stack_id), metadata=broker.metadata(broker.admin_key)
    )
    return list(reply.deployment_objects)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "config.j2").write_text(CONTENT)
    (tmp_path / "schema.yaml").write_text(SCHEMA)
    (tmp_path / "params.yaml").write_text("name: web\nimage: {tag: v1}\nreplicas: 1\n")
    return tmp_path


def create_template(ctl, files: Path, name: str, *extra: str) -> dict:
    return ok_json(
        ctl,
        "templates",
        "create",
        "--name",
        name,
        "-f",
        str(files / "config.j2"),
        "--schema",
        str(files / "schema.yaml"),
        *extra,
    )


def test_create_version_and_read_back(ctl, files: Path):
    created = create_template(ctl, files, "versioned", "--label", "tier=web", "--description", "first")
    assert (created["name"], created["version"], created["labels"]) == ("versioned", "1", {"tier": "web"})
    assert created["parametersSchema"] == yaml.safe_load(SCHEMA)
    assert created["content"] == CONTENT

    updated = ok_json(
        ctl, "templates", "update", "versioned", "-f", "-", "--description", "second", input="x"
    )
    assert (updated["id"], updated["version"], updated["content"]) == (created["id"], "2", "x")
    assert updated["parametersSchema"] == created["parametersSchema"], "fields not given stay"

    versions = ok_json(ctl, "templates", "versions", created["id"])
    assert [(v["version"], v["description"]) for v in versions] == [("2", "second"), ("1", "first")]
    first = ctl("templates", "get", "versioned", "--version", "1", "--content")
    assert (first.exit_code, first.stdout) == (0, CONTENT)

    table = ctl("templates", "list")
    header, *rows = [line for line in table.stdout.splitlines() if line.strip()]
    assert header.split()[:4] == ["ID", "NAME", "VERSION", "LABELS"]
    assert any(created["id"] in row and "versioned" in row and "tier=web" in row for row in rows)


def test_update_without_changes_is_a_usage_error(ctl, files: Path):
    created = create_template(ctl, files, "unchanged")
    result = ctl("templates", "update", created["id"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: nothing to update")
    assert ok_json(ctl, "templates", "get", created["id"])["version"] == "1"


def test_instantiate_dry_run_prints_the_rendered_yaml_and_creates_nothing(ctl, broker, files: Path):
    create_template(ctl, files, "dry")
    stack = ok_json(ctl, "stacks", "create", "--name", "dry-stack")
    result = ctl(
        "templates",
        "instantiate",
        "dry",
        "--stack",
        "dry-stack",
        "--params",
        str(files / "params.yaml"),
        "-p",
        "replicas=3",
        "-p",
        "image.tag=v2",
        "-p",
        "debug=true",
        "--dry-run",
    )
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout) == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "web", "namespace": "shop"},
        "data": {"replicas": "3", "tag": "v2", "debug": "true"},
    }
    assert deployment_objects(broker, stack["id"]) == []


def test_instantiate_records_typed_parameters_as_provenance(ctl, broker, files: Path):
    template = create_template(ctl, files, "real")
    stack = ok_json(ctl, "stacks", "create", "--name", "real-stack")
    (files / "override.json").write_text(json.dumps({"image": {"tag": "v9"}, "replicas": 2}))
    created = ok_json(
        ctl,
        "templates",
        "instantiate",
        template["id"],
        "--stack",
        stack["id"],
        "--params",
        str(files / "params.yaml"),
        "--params",
        str(files / "override.json"),
        "-p",
        "namespace=prod",
    )
    assert created["sequenceId"] == "1"
    assert created["provenance"]["templateId"] == template["id"]
    assert created["provenance"]["parameters"] == {
        "name": "web",
        "image": {"tag": "v9"},
        "replicas": 2,
        "namespace": "prod",
        "debug": False,  # the schema's default, filled in by the broker
    }
    assert [d.id for d in deployment_objects(broker, stack["id"])] == [created["id"]]
    assert 'tag: "v9"' in created["yamlContent"] and "namespace: prod" in created["yamlContent"]


def test_parameters_failing_the_schema_are_named_and_create_nothing(ctl, broker, files: Path):
    create_template(ctl, files, "strict")
    stack = ok_json(ctl, "stacks", "create", "--name", "strict-stack")
    result = ctl(
        "templates", "instantiate", "strict", "--stack", "strict-stack", "-p", "name=web", "-p", "replicas=0"
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "error: INVALID_PARAMETER: parameters.replicas: 0 is less than the minimum of 1\n"
        "  parameters.replicas: 0 is less than the minimum of 1\n"
    )
    assert deployment_objects(broker, stack["id"]) == []


def test_unreadable_parameters_are_usage_errors(ctl, files: Path):
    create_template(ctl, files, "usage")
    ok_json(ctl, "stacks", "create", "--name", "usage-stack")
    (files / "list.yaml").write_text("- a\n- b\n")
    not_a_mapping = ctl(
        "templates", "instantiate", "usage", "--stack", "usage-stack", "--params", str(files / "list.yaml")
    )
    assert not_a_mapping.exit_code == 2
    assert (
        not_a_mapping.stderr
        == f"error: {files / 'list.yaml'}: the parameters must be a mapping, not a list\n"
    )
    no_equals = ctl("templates", "instantiate", "usage", "--stack", "usage-stack", "-p", "replicas")
    assert no_equals.exit_code == 2
    assert "'replicas' is not KEY=VALUE" in no_equals.stderr
    missing = ctl("templates", "create", "--name", "x", "-f", str(files / "nope.j2"))
    assert missing.exit_code == 2
    assert missing.stderr.startswith(f"error: cannot read {files / 'nope.j2'}")


def test_names_that_match_nothing_fail_with_a_reason(ctl, files: Path):
    create_template(ctl, files, "named")
    no_stack = ctl(
        "templates", "instantiate", "named", "--stack", "nowhere", "-p", "name=a", "-p", "replicas=1"
    )
    assert (no_stack.exit_code, no_stack.stderr) == (1, "error: STACK_NOT_FOUND: no stack named 'nowhere'\n")
    no_template = ctl("templates", "get", "nothing-here")
    assert (no_template.exit_code, no_template.stderr) == (
        1,
        "error: TEMPLATE_NOT_FOUND: no template named 'nothing-here'\n",
    )


def test_delete_then_list_with_deleted_and_limit(ctl, files: Path):
    for name in ("limit-a", "limit-b", "limit-c"):
        create_template(ctl, files, name)
    deleted = ok_json(ctl, "templates", "delete", "limit-b")
    assert deleted["deleteTime"]
    live = [t["name"] for t in ok_json(ctl, "templates", "list") if t["name"].startswith("limit-")]
    assert live == ["limit-a", "limit-c"]
    every = ok_json(ctl, "templates", "list", "--show-deleted")
    assert [t["name"] for t in every if t["name"].startswith("limit-")] == ["limit-a", "limit-b", "limit-c"]
    assert len(ok_json(ctl, "templates", "list", "--show-deleted", "--limit", "2")) == 2
    assert len(every) > 2
