"""`brokkrctl events` and `brokkrctl audit-logs` against a real broker.

`events watch` runs as a real process: it must print events as they are committed (NDJSON with
`-o json`, one line each in table mode), stop cleanly on Ctrl-C, and survive a broker restart
without losing or repeating an event.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from broker.config import load_settings
from broker.server import Broker
from brokkr_common.ctl.eventing import event_line
from brokkr_common.ctl.main import cli
from brokkr_common.pb.brokkr.v1 import event_pb2
from tests.integration.harness import running_broker

BAD_KEY = "brokkr_0000000000000000_" + "a" * 43


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('events') / 'brokkr.db'}"
    with running_broker(url, audit={"flush_seconds": 0.05}) as running:
        yield running


def invoke(target: str, key: str, *args: str, columns: int = 80):
    env = {
        "BROKKR_SERVER": target,
        "BROKKR_KEY": key,
        "BROKKR_CONFIG": "/nonexistent",
        "COLUMNS": str(columns),
    }
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def ctl(broker):
    return lambda *args, key=None, columns=80: invoke(
        broker.grpc_target, key or broker.admin_key, *args, columns=columns
    )


def ok_json(ctl, *args: str):
    result = ctl("-o", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class Watcher:
    """`brokkrctl ... events watch ...` as a child process, its stdout read line by line."""

    def __init__(self, target: str, key: str, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BROKKR_")}
        env.update(BROKKR_SERVER=target, BROKKR_KEY=key, BROKKR_CONFIG="/nonexistent")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "brokkr_common.ctl", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self.lines.put(line)

    def next_line(self, timeout: float = 20) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line within {timeout}s; stderr so far: {self.stop()[1]}") from None

    def interrupt(self) -> tuple[int, str]:
        """Ctrl-C, then the exit code and stderr."""
        self.process.send_signal(signal.SIGINT)
        return self.stop()

    def stop(self) -> tuple[int, str]:
        try:
            _, stderr = self.process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return self.process.returncode, stderr


@contextlib.contextmanager
def watching(target: str, key: str, *args: str) -> Iterator[Watcher]:
    watcher = Watcher(target, key, *args)
    try:
        yield watcher
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
            watcher.process.communicate()


def newest_event_id(ctl) -> str:
    listed = ok_json(ctl, "events", "list")
    return listed[-1]["id"] if listed else "0"


def test_list_filters_by_type_stack_and_time(ctl):
    stack = ok_json(ctl, "stacks", "create", "--name", "listed", "--label", "env=dev")
    ok_json(ctl, "stacks", "delete", stack["id"])
    about = ok_json(ctl, "events", "list", "--stack", stack["id"])
    assert [e["type"] for e in about] == ["stack.created", "stack.deleted"]
    assert about[0]["actorRole"] == "admin" and about[0]["labels"] == {"env": "dev"}
    assert [
        e["id"] for e in ok_json(ctl, "events", "list", "--stack", stack["id"], "--type", "stack.deleted")
    ] == [about[1]["id"]]
    assert ok_json(ctl, "events", "list", "--stack", stack["id"], "--since", "1h") == about
    assert ok_json(ctl, "events", "list", "--stack", stack["id"], "--until", "1h") == []
    assert ok_json(ctl, "events", "list", "--stack", stack["id"], "--limit", "1") == about[:1]
    assert ok_json(ctl, "events") == ok_json(ctl, "events", "list"), "`events` alone lists"


def test_list_as_a_table(ctl):
    stack = ok_json(ctl, "stacks", "create", "--name", "tabled")
    result = ctl("events", "list", "--stack", "tabled", columns=200)
    header, row = [line for line in result.stdout.splitlines() if line.strip()]
    assert header.split() == ["ID", "TIME", "TYPE", "ACTOR", "STACK", "AGENT"]
    assert "stack.created" in row and stack["id"] in row and "admin" in row


def test_bad_times_are_usage_errors(ctl):
    result = ctl("events", "list", "--since", "yesterday")
    assert result.exit_code == 2
    assert "'yesterday' is neither a duration (10m, 1h30m) nor a time" in result.stderr


def test_watch_prints_ndjson_as_events_happen_and_exits_0_on_ctrl_c(ctl, broker):
    after = newest_event_id(ctl)
    with watching(
        broker.grpc_target,
        broker.admin_key,
        "-o",
        "json",
        "events",
        "watch",
        "--type",
        "stack.*",
        "--after",
        after,
    ) as watcher:
        first = ok_json(ctl, "stacks", "create", "--name", "watched-one")
        line = watcher.next_line()
        assert line.endswith("}\n") and "\n" not in line[:-1], "one JSON object per line"
        assert (json.loads(line)["type"], json.loads(line)["stackId"]) == ("stack.created", first["id"])
        second = ok_json(ctl, "stacks", "create", "--name", "watched-two")
        assert json.loads(watcher.next_line())["stackId"] == second["id"]
        code, stderr = watcher.interrupt()
    assert (code, stderr) == (0, "")


def test_watch_in_table_mode_prints_one_line_per_event_and_filters_by_stack(ctl, broker):
    after = newest_event_id(ctl)
    ok_json(ctl, "stacks", "create", "--name", "noise")
    kept = ok_json(ctl, "stacks", "create", "--name", "kept", "--label", "team=a")
    with watching(
        broker.grpc_target, broker.admin_key, "events", "watch", "--after", after, "--stack", kept["id"]
    ) as watcher:
        event_id, when, kind, about, actor, details = watcher.next_line().rstrip("\n").split("  ")
        assert (kind, about, actor) == ("stack.created", f"stack/{kept['id']}", "by admin")
        assert int(event_id) > int(after) and when.endswith("Z")
        assert 'name="kept"' in details
        assert watcher.interrupt()[0] == 0


def test_events_follow_is_watch(ctl, broker):
    with watching(broker.grpc_target, broker.admin_key, "-o", "json", "events", "--follow") as watcher:
        # "from now": keep creating until the watch, started concurrently, sees one
        for attempt in range(50):
            created = ok_json(ctl, "stacks", "create", "--name", f"followed-{attempt}")
            try:
                seen = json.loads(watcher.lines.get(timeout=0.5))
                break
            except queue.Empty:
                continue
        else:
            raise AssertionError(f"events --follow printed nothing: {watcher.stop()}")
        assert seen["type"] == "stack.created" and seen["stackId"] == created["id"]
        assert watcher.interrupt()[0] == 0


def test_watch_as_yaml_prints_one_document_per_event(ctl, broker):
    after = newest_event_id(ctl)
    first = ok_json(ctl, "stacks", "create", "--name", "yaml-one")
    second = ok_json(ctl, "stacks", "create", "--name", "yaml-two")
    with watching(
        broker.grpc_target, broker.admin_key, "-o", "yaml", "events", "watch", "--after", after
    ) as watcher:
        text = ""
        while text.count("stackId:") < 2:
            text += watcher.next_line()
        assert watcher.interrupt()[0] == 0
    documents = list(yaml.safe_load_all(text))
    assert [(d["type"], d["stackId"]) for d in documents] == [
        ("stack.created", first["id"]),
        ("stack.created", second["id"]),
    ]


def test_follow_takes_no_subcommand(ctl):
    result = ctl("events", "--follow", "list")
    assert result.exit_code == 2
    assert "--follow takes no subcommand; use `events watch` to filter" in result.stderr


def test_watch_with_a_bad_key_exits_1_and_an_unreachable_broker_3(broker):
    denied = invoke(broker.grpc_target, BAD_KEY, "events", "watch")
    assert (denied.exit_code, denied.stderr.split(":")[0]) == (1, "error")
    assert "KEY_INVALID" in denied.stderr
    unreachable = invoke("127.0.0.1:9", BAD_KEY, "--timeout", "2", "events", "watch")
    assert unreachable.exit_code == 3
    assert unreachable.stderr.startswith("error: UNAVAILABLE")


# --- a broker restart ----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RestartableBroker:
    """A broker on a fixed port over one SQLite file, stopped and started again at will."""

    def __init__(self, database_url: str) -> None:
        self.port = _free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.database_url = database_url
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.broker: Broker | None = None
        self.admin_key = ""

    def start(self) -> None:
        settings = load_settings(
            database={"url": self.database_url},
            grpc={"host": "127.0.0.1", "port": self.port, "shutdown_grace_seconds": 0},
            rest={"enabled": False},
        )
        self.broker = Broker(settings)
        asyncio.run_coroutine_threadsafe(self.broker.start(), self.loop).result(60)
        self.admin_key = self.broker.bootstrap_admin_key or self.admin_key

    def stop(self) -> None:
        assert self.broker is not None
        asyncio.run_coroutine_threadsafe(self.broker.stop(grace=0), self.loop).result(60)
        self.broker = None

    def close(self) -> None:
        if self.broker is not None:
            self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[RestartableBroker]:
    broker = RestartableBroker(f"sqlite+aiosqlite:///{tmp_path / 'restart.db'}")
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


def test_watch_resumes_after_a_broker_restart_without_gaps_or_repeats(restartable):
    ctl = lambda *args: invoke(restartable.target, restartable.admin_key, *args)  # noqa: E731
    with watching(
        restartable.target,
        restartable.admin_key,
        "-o",
        "json",
        "events",
        "watch",
        "--type",
        "stack.created",
        "--after",
        "0",
        "--reconnect-for",
        "30s",
    ) as watcher:
        before = ok_json(ctl, "stacks", "create", "--name", "before-restart")
        assert json.loads(watcher.next_line())["stackId"] == before["id"]
        restartable.stop()
        restartable.start()
        after = ok_json(ctl, "stacks", "create", "--name", "after-restart")
        assert json.loads(watcher.next_line())["stackId"] == after["id"]
        code, stderr = watcher.interrupt()
    assert watcher.lines.empty(), "nothing printed twice"
    assert code == 0
    event_id = ok_json(ctl, "events", "list", "--stack", before["id"])[0]["id"]
    assert f"reconnecting after event {event_id}" in stderr


def test_watch_exits_3_when_told_not_to_reconnect(restartable):
    ok_json(
        lambda *a: invoke(restartable.target, restartable.admin_key, *a), "stacks", "create", "--name", "x"
    )
    with watching(
        restartable.target, restartable.admin_key, "events", "watch", "--after", "0", "--reconnect-for", "0"
    ) as watcher:
        assert "stack.created" in watcher.next_line(), "the watch is up"
        restartable.stop()
        code, stderr = watcher.stop()
    assert code == 3
    assert "not reconnecting (--reconnect-for 0)" in stderr


# --- audit log -----------------------------------------------------------------------------------


def eventually(read, max_seconds: float = 10):
    """What `read()` returns once it is not empty: the audit log is written behind the calls."""
    deadline = time.monotonic() + max_seconds
    while not (found := read()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_audit_logs_list_filters_by_actor_action_and_outcome(ctl):
    created = ok_json(ctl, "stacks", "create", "--name", "audited")
    assert ctl("whoami", key=BAD_KEY).exit_code == 1
    mine = eventually(
        lambda: [
            e
            for e in ok_json(
                ctl, "audit-logs", "list", "--action", "StackService/CreateStack", "--outcome", "ok"
            )
            if e["resource"] == f"stacks/{created['id']}"
        ]
    )
    assert len(mine) == 1
    assert (mine[0]["action"], mine[0]["actorRole"], mine[0]["outcome"]) == (
        "/brokkr.v1.StackService/CreateStack",
        "admin",
        "OK",
    )
    refused = eventually(lambda: ok_json(ctl, "audit-logs", "list", "--actor", "unauthenticated"))
    assert refused and all(e["actorRole"] == "unauthenticated" for e in refused)
    assert all(e["outcome"] == "UNAUTHENTICATED" for e in refused)
    assert ok_json(ctl, "audit-logs", "list", "--actor", "admin", "--limit", "1")[0]["actorRole"] == "admin"
    table = ctl("audit-logs", "list", "--limit", "2", columns=200)
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["TIME", "ACTOR", "ACTOR", "ID", "ACTION", "RESOURCE", "OUTCOME"]
    assert len(rows) == 2


def test_an_event_line_names_subjects_actor_and_details_with_whole_numbers():
    event = event_pb2.Event(
        id="42",
        type="deployment.applied",
        actor_role="agent",
        actor_id="a-1",
        agent_id="a-1",
        stack_id="s-1",
        deployment_object_id="d-1",
    )
    event.time.FromJsonString("2026-05-01T12:00:00.123Z")
    event.payload.update({"sequence_id": 7, "ratio": 0.5, "name": "shop"})
    assert event_line(event) == (
        "42  2026-05-01T12:00:00Z  deployment.applied  stack/s-1,agent/a-1,deployment-object/d-1  "
        'by agent/a-1  name="shop" ratio=0.5 sequence_id=7'
    )
