"""The README's promise, as a user meets it: `brokkr-broker serve` in an empty directory starts a
broker on SQLite, prints the admin key once, answers the seed's curl commands, and stops cleanly on
SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

BROKER = [sys.executable, "-m", "broker"]


class BrokerProcess:
    def __init__(self, cwd: Path, *args: str, env: dict[str, str] | None = None) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR_")}
        environment.update(env or {})
        environment["BROKKR_LOG__FORMAT"] = "json"
        self.process = subprocess.Popen(
            [*BROKER, "serve", "--grpc-port", "0", "--rest-port", "0", *args],
            cwd=cwd,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.stdout: list[str] = []
        self.log: list[dict] = []
        self.started = threading.Event()
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        if not self.started.wait(60):
            self.process.kill()
            raise AssertionError(f"broker did not start; stderr: {self.log}")

    def _read_stdout(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.stdout.append(line)
        self.process.stdout.close()  # type: ignore[union-attr]

    def printed_keys(self, *, expect: int) -> list[str]:
        """Keys printed on stdout; waits (bounded) for `expect` of them to arrive."""
        deadline = time.monotonic() + 30
        while True:
            found = re.findall(r"brokkr_[0-9a-f]+_[A-Za-z0-9]+", "".join(self.stdout))
            if len(found) >= expect or time.monotonic() > deadline or self.process.poll() is not None:
                return found
            time.sleep(0.05)

    def _read_stderr(self) -> None:
        for line in self.process.stderr:  # type: ignore[union-attr]
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": line.rstrip()}
            self.log.append(event)
            if event.get("event") == "broker started":
                self.rest_port = event["rest_port"]
                self.grpc_port = event["grpc_port"]
                self.started.set()
        self.process.stderr.close()  # type: ignore[union-attr]

    def stop(self) -> int:
        """SIGTERM, then wait for the exit and for both pipes to be read to the end."""
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        for reader in self._readers:
            reader.join(10)
        return code


def _http(method: str, url: str, key: str, body: dict | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_first_start_prints_the_admin_key_once_and_the_seed_curl_commands_work(tmp_path: Path):
    broker = BrokerProcess(tmp_path)
    try:
        keys = broker.printed_keys(expect=1)
        assert len(keys) == 1, broker.stdout
        admin_key = keys[0]
        base = f"http://127.0.0.1:{broker.rest_port}"
        status, stack = _http(
            "POST",
            f"{base}/api/v1/stacks",
            admin_key,
            {"name": "my-app", "description": "My application stack"},
        )
        assert status == 200, stack
        assert stack["name"] == "my-app" and stack["description"] == "My application stack"
        status, agents = _http("GET", f"{base}/api/v1/agents", admin_key)
        assert status == 200 and agents["agents"] == []
        status, refused = _http("GET", f"{base}/api/v1/agents", "brokkr_0000000000000000_" + "x" * 43)
        assert status == 401 and refused["code"] == 16
    finally:
        assert broker.stop() == 0
    events = [e.get("event") for e in broker.log]
    assert "broker stopping" in events and "broker stopped" in events
    # The key went to stdout only: never into the logs.
    assert admin_key not in json.dumps(broker.log)
    assert (tmp_path / "brokkr.db").is_file()

    # A second start on the same database prints no key: it was shown once.
    again = BrokerProcess(tmp_path)
    try:
        status, stacks = _http("GET", f"http://127.0.0.1:{again.rest_port}/api/v1/stacks", admin_key)
        assert status == 200 and [s["name"] for s in stacks["stacks"]] == ["my-app"]
    finally:
        assert again.stop() == 0
    assert not re.findall(r"brokkr_[0-9a-f]+_", "".join(again.stdout))


def test_invalid_settings_stop_the_broker_before_it_starts(tmp_path: Path):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR_")}
    environment["BROKKR_GRPC__PORT"] = "not-a-port"
    result = subprocess.run(
        [*BROKER, "serve"], cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "grpc.port" in result.stderr
    assert not (tmp_path / "brokkr.db").exists()


@pytest.mark.parametrize(
    "command",
    [
        "serve",
        "migrate",
        "config",
        "create-agent",
        "create-generator",
        "rotate-admin-key",
        "rotate-agent-key",
        "rotate-generator-key",
        "hash-key",
    ],
)
def test_every_command_has_help(command: str):
    result = subprocess.run([*BROKER, command, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


def test_offline_bootstrap_creates_agents_and_generators_with_working_keys(tmp_path: Path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}"
    created = subprocess.run(
        [*BROKER, "create-generator", "--database-url", url, "--name", "ci"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    generator_key = created.stdout.strip().splitlines()[-1]
    hashed = subprocess.run(
        [*BROKER, "hash-key", "--generate"], capture_output=True, text=True, timeout=60, check=True
    ).stdout.split()
    admin_key, admin_hash = hashed
    broker = BrokerProcess(tmp_path, env={"BROKKR_AUTH__ADMIN_KEY_HASH": admin_hash})
    try:
        base = f"http://127.0.0.1:{broker.rest_port}"
        status, me = _http("GET", f"{base}/api/v1/auth/whoami", generator_key)
        assert status == 200 and me["role"] == "ROLE_GENERATOR" and me["principalName"] == "ci"
        status, me = _http("GET", f"{base}/api/v1/auth/whoami", admin_key)
        assert status == 200 and me["role"] == "ROLE_ADMIN"
    finally:
        assert broker.stop() == 0
    # With a configured hash the broker prints no key: the operator already holds it.
    assert not re.findall(r"brokkr_[0-9a-f]+_", "".join(broker.stdout))
