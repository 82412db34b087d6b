"""brokkrctl documents itself: the generated CLI reference is current, `--help` states precedence
and exit codes, shell completion scripts work, and colour appears only on a terminal."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from brokkr_common.ctl.context import EXIT_CODES
from brokkr_common.ctl.main import cli
from brokkr_common.ctl.reference import cli_reference

ROOT = Path(__file__).resolve().parents[3]
REGENERATE = "python -m brokkr_common.ctl.reference > docs/reference/cli.md"


def test_the_cli_reference_is_current():
    committed = (ROOT / "docs" / "reference" / "cli.md").read_text()
    assert committed == cli_reference(), f"docs/reference/cli.md is stale; run `{REGENERATE}`"


def test_the_reference_covers_every_command_and_exit_code():
    reference = cli_reference()
    for command in (
        "brokkrctl apply",
        "brokkrctl diff",
        "brokkrctl rollout status",
        "brokkrctl config set-context",
    ):
        assert f"\n### {command}\n" in reference
    for code, summary, _ in EXIT_CODES:
        assert f"| {code} | {summary} |" in reference


def test_help_states_precedence_and_exit_codes():
    result = CliRunner().invoke(cli, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    assert "first hit wins: command-line flag, BROKKR_* environment variable, the" in result.stdout
    assert "4  rollout status: timed out" in result.stdout


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "complete -o"), ("zsh", "#compdef brokkrctl"), ("fish", "complete")]
)
def test_completion_scripts(shell: str, marker: str):
    result = CliRunner().invoke(cli, ["completion", shell])
    assert result.exit_code == 0
    assert marker in result.stdout
    assert "_BROKKRCTL_COMPLETE" in result.stdout


def test_completion_completes_commands_in_a_real_process():
    env = {
        **os.environ,
        "_BROKKRCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": "brokkrctl rol",
        "COMP_CWORD": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-m", "brokkr_common.ctl"], env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.split() == ["plain,rollout"]


def test_errors_are_red_only_on_a_terminal():
    args = ["--server", "127.0.0.1:9", "--timeout", "1", "whoami"]
    plain = CliRunner().invoke(cli, args, env={"BROKKR_CONFIG": "/nonexistent", "BROKKR_KEY": "k"})
    assert plain.exit_code == 3
    assert plain.stderr.startswith("error: UNAVAILABLE: ")
    coloured = CliRunner().invoke(
        cli,
        args,
        env={"BROKKR_CONFIG": "/nonexistent", "BROKKR_KEY": "k", "TTY_COMPATIBLE": "1", "NO_COLOR": None},
    )
    assert coloured.stderr.startswith("\x1b[31merror:\x1b[0m UNAVAILABLE")
