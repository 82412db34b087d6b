"""proto/buf.gen.yaml generates a working client for another language, and proto/check_breaking.sh
catches breaking API changes against "the previous main".

The generation test runs the committed template with the plugin pinned in tests/clients/node,
encodes a message with the generated TypeScript/JavaScript code and parses the bytes with the
Python stubs: same wire format, same field numbers. The breaking-change tests build throwaway git
repositories in a temporary directory with the real proto/ and buf.yaml.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from brokkr_common.pb.brokkr.v1 import stack_pb2

ROOT = Path(__file__).resolve().parents[3]
NODE_DIR = ROOT / "tests" / "clients" / "node"
BUF = shutil.which("buf") or str(ROOT / ".venv" / "bin" / "buf")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js and npm on PATH")
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")

ENCODE = """
import { create, toBinary } from "@bufbuild/protobuf";
import { StackSchema } from "./gen/es/brokkr/v1/stack_pb.js";
const stack = create(StackSchema, {
  name: "web",
  labels: { env: "prod" },
  desiredDeploymentObject: { sequenceId: 7n, checksum: "ab12", isDeletionMarker: true },
});
process.stdout.write(Buffer.from(toBinary(StackSchema, stack)).toString("base64"));
"""


@needs_node
def test_buf_gen_template_generates_a_javascript_client_that_speaks_the_same_wire_format(node_modules):
    env = {**os.environ, "PATH": f"{NODE_DIR / 'node_modules' / '.bin'}{os.pathsep}{os.environ['PATH']}"}
    subprocess.run(
        [BUF, "generate", "--template", "proto/buf.gen.yaml", "-o", str(NODE_DIR)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    generated = NODE_DIR / "gen" / "es"
    assert (generated / "brokkr" / "v1" / "agent_session_service_pb.d.ts").exists()
    assert (generated / "google" / "rpc" / "status_pb.js").exists(), "imports are generated too"
    encoded = subprocess.run(
        ["node", "--input-type=module", "-e", ENCODE],
        cwd=NODE_DIR,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    stack = stack_pb2.Stack.FromString(base64.b64decode(encoded))
    assert stack == stack_pb2.Stack(
        name="web",
        labels={"env": "prod"},
        desired_deployment_object=stack_pb2.DeploymentObjectRef(
            sequence_id=7, checksum="ab12", is_deletion_marker=True
        ),
    )


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository on main whose first commit has no API and whose second has today's."""
    repo = tmp_path / "repo"
    (repo / "proto").mkdir(parents=True)
    shutil.copy(ROOT / "buf.yaml", repo / "buf.yaml")
    shutil.copy(ROOT / "proto" / "check_breaking.sh", repo / "proto" / "check_breaking.sh")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "before the API")
    shutil.copytree(ROOT / "proto" / "brokkr", repo / "proto" / "brokkr")
    shutil.copytree(ROOT / "proto" / "vendor", repo / "proto" / "vendor")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "the API")
    return repo


def check(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["proto/check_breaking.sh", *args],
        cwd=repo,
        env={**os.environ, "BUF": BUF},
        capture_output=True,
        text=True,
        timeout=300,
    )


@needs_git
def test_a_commit_that_introduces_the_api_breaks_nothing(repo: Path):
    result = check(repo)
    assert result.returncode == 0, result.stderr
    assert "has no proto/brokkr; no earlier API to break" in result.stdout


@needs_git
def test_deleting_a_field_on_main_fails_against_the_previous_main(repo: Path):
    stack = repo / "proto" / "brokkr" / "v1" / "stack.proto"
    stack.write_text(stack.read_text().replace("  string description = 3;\n", ""))
    _git(repo, "commit", "-qam", "drop Stack.description")
    result = check(repo)
    assert result.returncode != 0
    assert (
        'Previously present field "3" with name "description" on message "Stack" was deleted' in result.stdout
    )
    # an addition is fine
    _git(repo, "revert", "--no-edit", "HEAD")
    stack.write_text(
        stack.read_text().replace(
            "  string description = 3;\n", "  string description = 3;\n  // New.\n  string owner = 11;\n"
        )
    )
    _git(repo, "commit", "-qam", "add Stack.owner")
    added = check(repo)
    assert added.returncode == 0, added.stdout + added.stderr
    assert "no breaking changes" in added.stdout


@needs_git
def test_on_a_branch_the_comparison_is_with_the_merge_base(repo: Path):
    _git(repo, "checkout", "-qb", "feature")
    stack = repo / "proto" / "brokkr" / "v1" / "stack.proto"
    stack.write_text(stack.read_text().replace("  string description = 3;\n", ""))
    _git(repo, "commit", "-qam", "drop Stack.description")
    _git(repo, "commit", "-q", "--allow-empty", "-m", "something else")
    result = check(repo)
    assert result.returncode != 0, "HEAD~1 would hide the break; the merge-base with main does not"
    assert "was deleted" in result.stdout
    assert check(repo, "HEAD~1").returncode == 0


@needs_git
def test_an_unknown_ref_is_an_error(repo: Path):
    result = check(repo, "no-such-ref")
    assert result.returncode == 2
    assert "cannot resolve no-such-ref" in result.stderr
