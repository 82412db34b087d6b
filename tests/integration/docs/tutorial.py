"""Run a tutorial's shell commands exactly as written, so the documentation cannot drift from the code.

A tutorial is a Markdown file. Its fenced blocks opened with ```` ```sh ```` are the commands a
reader types; `commands()` takes them out in order and `run()` executes them as one bash script
(`set -euo pipefail`), so a variable one block sets is there for the next, as in the reader's
terminal. An HTML comment on the line right before the fence changes that, invisibly to readers:

* `<!-- test: skip (why) -->`: shown, never run; for what only a reader's machine has (`make run`
  with the default ports, a real cluster, Helm). The reason is required.
* `<!-- test: background -->`: started in the background and left running until the script ends,
  output to `background-<n>.log`; for what a reader runs in a second terminal (`brokkr-agent run`).

Blocks in other languages (`yaml`, `text`, `console`) are illustrations and never run. The test
provides what a reader's setup block would: `BROKKR_SERVER`, `BROKKR_URL`, `ADMIN_PAK`, kubeconfig
paths (a kube double per cluster), and `PATH` with the virtualenv's `brokkrctl` and `brokkr-agent`
first; everything else the tutorial must do itself.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DOCS = ROOT / "docs"

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>```+)(?P<info>[^`\n]*)$")
_DIRECTIVE = re.compile(r"^\s*<!--\s*test:\s*(?P<what>skip|background)\b\s*(?P<rest>.*?)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a tutorial."""

    line: int
    language: str
    text: str
    #: "run", "background" or "skip".
    mode: str
    skip_reason: str = ""


def blocks(markdown: str) -> list[Block]:
    """Every fenced block, in order, with the directive on the line before it."""
    found: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        fence, language = opening["fence"], opening["info"].strip().split(" ")[0]
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not lines[end].strip().startswith(fence):
            body.append(lines[end][len(opening["indent"]) :])
            end += 1
        mode, reason = "run", ""
        if index > 0 and (directive := _DIRECTIVE.match(lines[index - 1])):
            mode, reason = directive["what"], directive["rest"].strip("() ")
        found.append(Block(index + 1, language, "\n".join(body) + "\n", mode, reason))
        index = end + 1
    return found


def commands(markdown: str) -> list[Block]:
    """The `sh` blocks: what a reader types."""
    return [block for block in blocks(markdown) if block.language == "sh"]


def script(markdown: str, source: str) -> str:
    """The bash script that runs a tutorial's commands in order; background jobs end with it."""
    parts = [
        "set -euo pipefail",
        # Background jobs end with the script; `run` also ends their whole process group after it.
        "trap 'jobs -p | xargs -r kill 2>/dev/null || true' EXIT",
    ]
    background = 0
    for block in commands(markdown):
        if block.mode == "skip":
            continue
        parts.append(f"echo '>>> {source}:{block.line}' >&2")
        if block.mode == "background":
            background += 1
            parts.append(f"(\n{block.text}) > background-{background}.log 2>&1 &")
        else:
            parts.append(block.text)
    return "\n".join(parts) + "\n"


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def background_log(self, number: int) -> str:
        path = self.workdir / f"background-{number}.log"
        return path.read_text() if path.exists() else ""

    def explain(self) -> str:
        logs = "\n".join(
            f"--- background-{n}.log ---\n{self.background_log(n)[-4000:]}"
            for n in range(1, 5)
            if (self.workdir / f"background-{n}.log").exists()
        )
        return (
            f"exit {self.returncode}\n--- stdout ---\n{self.stdout[-6000:]}\n"
            f"--- stderr ---\n{self.stderr[-6000:]}\n{logs}"
        )


def run(path: Path, workdir: Path, env: dict[str, str], timeout: float = 180) -> Result:
    """Run the tutorial at `path` in `workdir` with `env` added to a clean environment."""
    markdown = path.read_text()
    bin_dir = Path(sys.executable).parent
    full_env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(workdir),
        "LANG": "C.UTF-8",
        # Nothing from the developer's own brokkrctl config may leak in.
        "XDG_CONFIG_HOME": str(workdir / ".config"),
        **env,
    }
    process = subprocess.Popen(
        ["bash", "-c", script(markdown, _name(path))],
        cwd=workdir,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        stderr += f"\n(killed after {timeout} s)"
    finally:
        _end_group(process.pid)
    return Result(process.returncode, stdout, stderr, workdir)


def _name(path: Path) -> str:
    """How the trace names the document: relative to the checkout, or by file name."""
    return path.relative_to(ROOT).as_posix() if path.is_relative_to(ROOT) else path.name


def _end_group(pgid: int) -> None:
    """Stop whatever the script left running (a background agent's own children included)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
