"""`brokkrctl webhooks` against a real broker whose own delivery worker POSTs to a real HTTP receiver
on 127.0.0.1: the secret is printed once on stderr and signs what arrives, updates change only
what was named, and `test --wait` reports how the delivery ended."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from brokkr_common.ctl.main import cli
from tests.integration.harness import running_broker
from tests.integration.webhooks import receiver as receivers
from tests.integration.webhooks.conftest import KEY
from tests.integration.webhooks.test_api import _recipe

WEBHOOK_SETTINGS = {
    "encryption_key": KEY,
    "allowed_cidrs": "127.0.0.1/32",
    "poll_interval_seconds": 0.05,
    "retry_base_seconds": 0.01,
    "retry_cap_seconds": 0.05,
}


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('hooks') / 'brokkr.db'}"
    with running_broker(url, webhooks=WEBHOOK_SETTINGS) as running:
        yield running


@pytest.fixture
def ctl(broker):
    def run(*args: str, columns: int = 80):
        env = {
            "BROKKR_SERVER": broker.grpc_target,
            "BROKKR_KEY": broker.admin_key,
            "BROKKR_CONFIG": "/nonexistent",
            "COLUMNS": str(columns),
        }
        return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)

    return run


@pytest.fixture
def make_receiver() -> Iterator[Callable[..., receivers.Receiver]]:
    started = []

    def make(script=(), then: int = 200) -> receivers.Receiver:
        receiver, server = receivers.start(script, then)
        started.append((receiver, server))
        return receiver

    yield make
    for receiver, server in started:
        receivers.stop(receiver, server)


def ok_json(ctl, *args: str):
    result = ctl("-o", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def create(ctl, url: str, *extra: str) -> tuple[dict, str]:
    result = ctl("-o", "json", "webhooks", "create", "--url", url, *extra)
    assert result.exit_code == 0, result.output
    [line] = result.stderr.splitlines()
    assert line.startswith("signing secret (shown once): whsec_")
    return json.loads(result.stdout), line.rsplit(" ", 1)[1]


def test_create_prints_the_secret_once_on_stderr_and_test_delivers_signed(ctl, make_receiver, tmp_path: Path):
    receiver = make_receiver()
    auth = tmp_path / "auth"
    auth.write_text("Bearer hook-token\n")
    hook, secret = create(
        ctl,
        receiver.url(),
        "--event",
        "deployment.*",
        "--event",
        "stack.deleted",
        "--auth-header-file",
        str(auth),
        "--max-attempts",
        "3",
        "--timeout",
        "5s",
    )
    assert hook["redactedUrl"] == f"http://127.0.0.1:{receiver.port}/..."
    assert (hook["eventTypes"], hook["hasAuthHeader"], hook["enabled"]) == (
        ["deployment.*", "stack.deleted"],
        True,
        True,
    )
    assert (hook["maxAttempts"], hook["timeout"]) == (3, "5s")
    assert secret not in json.dumps(ok_json(ctl, "webhooks", "get", hook["id"]))

    tested = ctl("-o", "json", "webhooks", "test", hook["id"], "--wait", "20s")
    assert tested.exit_code == 0, tested.output
    delivery = json.loads(tested.stdout)
    assert (delivery["eventType"], delivery["state"]) == ("webhook.test", "WEBHOOK_DELIVERY_STATE_SUCCEEDED")
    [request] = receiver.requests
    assert request.headers["Authorization"] == "Bearer hook-token", "the file's line, without its newline"
    assert request.headers["Brokkr-Delivery-Id"] == delivery["id"]
    assert _recipe()["verify"](secret.encode(), request.headers, request.body) is True

    table = ctl("webhooks", "deliveries", hook["id"], columns=200)
    header, row = table.stdout.splitlines()
    assert header.split() == ["ID", "EVENT", "TYPE", "STATE", "ATTEMPTS", "HTTP", "ERROR"]
    assert row.split() == [delivery["id"], delivery["eventId"], "webhook.test", "SUCCEEDED", "1", "200"]


def test_update_changes_only_the_named_fields(ctl, make_receiver, tmp_path: Path):
    receiver = make_receiver()
    auth = tmp_path / "auth"
    auth.write_text("Bearer x")
    hook, _ = create(
        ctl,
        receiver.url(),
        "--event",
        "*",
        "--auth-header-file",
        str(auth),
        "--stack",
        "123e4567-e89b-12d3-a456-426614174000",
        "--label-selector",
        "env=prod",
    )
    disabled = ok_json(ctl, "webhooks", "update", hook["id"], "--disabled", "--timeout", "20s")
    assert (disabled["enabled"], disabled["timeout"]) == (False, "20s")
    unchanged = {"eventTypes", "hasAuthHeader", "stackIds", "labelSelector", "maxAttempts", "redactedUrl"}
    assert {k: disabled[k] for k in unchanged} == {k: hook[k] for k in unchanged}

    cleared = ok_json(
        ctl, "webhooks", "update", hook["id"], "--no-auth-header", "--any-stack", "--label-selector", ""
    )
    assert (cleared["hasAuthHeader"], cleared["stackIds"], cleared["labelSelector"]) == (False, [], "")
    assert cleared["enabled"] is False

    nothing = ctl("webhooks", "update", hook["id"])
    assert (nothing.exit_code, nothing.stderr) == (
        2,
        "error: nothing to update: give at least one field to change (see --help)\n",
    )
    refused = ctl("webhooks", "update", hook["id"], "--url", "http://10.1.2.3/hook")
    assert refused.exit_code == 1 and refused.stderr.startswith("error: ")
    assert ok_json(ctl, "webhooks", "get", hook["id"])["redactedUrl"] == hook["redactedUrl"]


def test_test_wait_exits_1_when_the_delivery_dies_and_4_when_it_is_not_done(ctl, make_receiver):
    gone = make_receiver(then=410)
    hook, _ = create(ctl, gone.url(), "--event", "*")
    dead = ctl("webhooks", "test", hook["id"], "--wait", "20s")
    assert dead.exit_code == 1
    assert dead.stderr.startswith("error: WEBHOOK_DELIVERY_DEAD: delivery ")

    hanging = make_receiver(script=[receivers.HANG])
    slow, _ = create(ctl, hanging.url(), "--event", "*", "--timeout", "30s")
    waiting = ctl("webhooks", "test", slow["id"], "--wait", "1s")
    assert waiting.exit_code == 4
    assert "WEBHOOK_DELIVERY_TIMEOUT" in waiting.stderr and "after 1s" in waiting.stderr


def test_refused_urls_create_nothing_and_list_get_delete(ctl, make_receiver):
    before = ok_json(ctl, "webhooks", "list")
    private = ctl("webhooks", "create", "--url", "http://10.1.2.3/hook", "--event", "*")
    assert private.exit_code == 1
    assert "signing secret" not in private.stderr
    assert ok_json(ctl, "webhooks", "list") == before

    hook, _ = create(ctl, make_receiver().url(), "--event", "stack.*")
    table = ctl("webhooks", "list", columns=200)
    assert any(hook["id"] in row and "stack.*" in row for row in table.stdout.splitlines()[1:])
    assert len(ok_json(ctl, "webhooks", "list", "--limit", "1")) == 1
    assert ok_json(ctl, "webhooks", "delete", hook["id"])["id"] == hook["id"]
    missing = ctl("webhooks", "get", hook["id"])
    assert missing.exit_code == 1 and "NOT_FOUND" in missing.stderr


def test_an_auth_header_file_of_several_lines_is_a_usage_error(ctl, make_receiver, tmp_path: Path):
    before = ok_json(ctl, "webhooks", "list")
    auth = tmp_path / "auth"
    auth.write_text("Bearer a\nBearer b\n")
    result = ctl(
        "webhooks", "create", "--url", make_receiver().url(), "--event", "*", "--auth-header-file", str(auth)
    )
    assert (result.exit_code, result.stderr) == (
        2,
        f"error: {auth}: the auth header file must hold one line\n",
    )
    assert ok_json(ctl, "webhooks", "list") == before
