"""WebhookService end to end through a real broker (gRPC and the REST shim), on SQLite and
PostgreSQL: secrets stay write-only, the broker's own delivery worker sends test events to a real
receiver, the documented verification recipe accepts them, and a broker holding webhooks refuses to
start without its encryption key."""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from broker.config import load_settings
from broker.server import Broker
from brokkr_common.errors import FailedPrecondition
from brokkr_common.pb.brokkr.v1 import webhook_pb2, webhook_service_pb2_grpc
from brokkr_common.pb.brokkr.v1 import webhook_service_pb2 as api
from tests.integration.harness import RunningBroker, running_broker
from tests.integration.webhooks.conftest import KEY

DOC = Path(__file__).resolve().parents[3] / "docs" / "how-to" / "webhooks.md"
WEBHOOK_SETTINGS = {
    "encryption_key": KEY,
    "allowed_cidrs": "127.0.0.1/32",
    "poll_interval_seconds": 0.05,
    "retry_base_seconds": 0.01,
    "retry_cap_seconds": 0.05,
}


@pytest.fixture
def running(database_url):
    with running_broker(database_url, webhooks=WEBHOOK_SETTINGS) as running:
        yield running


def _stub(running: RunningBroker) -> webhook_service_pb2_grpc.WebhookServiceStub:
    return webhook_service_pb2_grpc.WebhookServiceStub(running.channel)


def _rest(running: RunningBroker, method: str, path: str, body: Any = None) -> Any:
    request = urllib.request.Request(
        f"{running.rest_url}{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {running.admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def _wait_for(predicate, max_seconds: float = 15) -> None:
    deadline = time.monotonic() + max_seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _create(running: RunningBroker, url: str, **fields) -> api.CreateWebhookResponse:
    fields.setdefault("event_types", ["*"])
    return _stub(running).CreateWebhook(
        api.CreateWebhookRequest(webhook=webhook_pb2.Webhook(url=url, **fields)),
        metadata=running.metadata(running.admin_key),
    )


def test_webhooks_are_managed_with_their_secrets_write_only(running, make_receiver):
    receiver = make_receiver()
    stub, md = _stub(running), running.metadata(running.admin_key)
    created = _create(running, receiver.url(), auth_header="Bearer hook-token", event_types=["deployment.*"])
    hook = created.webhook
    assert created.signing_secret.startswith("whsec_")
    assert hook.redacted_url == f"http://127.0.0.1:{receiver.port}/..."
    assert (hook.url, hook.auth_header, hook.has_auth_header) == ("", "", True)
    assert (hook.enabled, hook.max_attempts, hook.timeout.seconds) == (True, 8, 10)

    fetched = stub.GetWebhook(api.GetWebhookRequest(id=hook.id), metadata=md).webhook
    shown = fetched.SerializeToString()
    for secret in (b"s3cr3t-token", b"hook-token", created.signing_secret.encode()):
        assert secret not in shown

    updated = stub.UpdateWebhook(
        api.UpdateWebhookRequest(
            webhook=webhook_pb2.Webhook(
                id=hook.id, enabled=False, max_attempts=3, timeout=duration_pb2.Duration(seconds=2)
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["enabled", "max_attempts", "timeout"]),
        ),
        metadata=md,
    ).webhook
    assert (updated.enabled, updated.max_attempts, updated.timeout.seconds) == (False, 3, 2)
    assert list(updated.event_types) == ["deployment.*"] and updated.has_auth_header

    second = _create(running, receiver.url("/second")).webhook
    first_page = stub.ListWebhooks(api.ListWebhooksRequest(page_size=1), metadata=md)
    second_page = stub.ListWebhooks(
        api.ListWebhooksRequest(page_size=1, page_token=first_page.next_page_token), metadata=md
    )
    assert {first_page.webhooks[0].id, second_page.webhooks[0].id} == {hook.id, second.id}
    assert second_page.next_page_token == ""

    with pytest.raises(grpc.RpcError) as refused:
        stub.UpdateWebhook(
            api.UpdateWebhookRequest(
                webhook=webhook_pb2.Webhook(id=hook.id, url="http://10.1.2.3/hook"),
                update_mask=field_mask_pb2.FieldMask(paths=["url"]),
            ),
            metadata=md,
        )
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT

    stub.DeleteWebhook(api.DeleteWebhookRequest(id=hook.id), metadata=md)
    with pytest.raises(grpc.RpcError) as gone:
        stub.GetWebhook(api.GetWebhookRequest(id=hook.id), metadata=md)
    assert gone.value.code() is grpc.StatusCode.NOT_FOUND


def _recipe() -> dict[str, Any]:
    """Run the Python snippet of docs/how-to/webhooks.md and return what it defines."""
    [snippet] = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL)
    namespace: dict[str, Any] = {}
    exec(compile(snippet, str(DOC), "exec"), namespace)
    return namespace


def test_a_test_event_over_rest_is_delivered_and_passes_the_documented_recipe(running, make_receiver):
    receiver = make_receiver()
    created = _create(running, receiver.url())
    webhook_id = created.webhook.id

    queued = _rest(running, "POST", f"/api/v1/webhooks/{webhook_id}:test", {})
    assert queued["delivery"]["eventType"] == "webhook.test"
    _wait_for(lambda: len(receiver.requests) == 1)
    [request] = receiver.requests

    verify = _recipe()["verify"]
    secret = created.signing_secret.encode()
    assert verify(secret, request.headers, request.body) is True
    assert verify(secret, request.headers, request.body + b" ") is False
    assert verify(b"whsec_wrong", request.headers, request.body) is False
    stale = {**request.headers, "Brokkr-Timestamp": str(int(time.time()) - 3600)}
    assert verify(secret, stale, request.body) is False
    assert json.loads(request.body)["payload"] == {"webhook_id": webhook_id}

    def delivered() -> bool:
        page = _rest(running, "GET", f"/api/v1/webhooks/{webhook_id}/deliveries")
        return page["deliveries"][0]["state"] == "WEBHOOK_DELIVERY_STATE_SUCCEEDED"

    _wait_for(delivered)
    [delivery] = _rest(running, "GET", f"/api/v1/webhooks/{webhook_id}/deliveries")["deliveries"]
    assert delivery["id"] == queued["delivery"]["id"] == request.headers["Brokkr-Delivery-Id"]
    assert delivery["attemptCount"] == 1
    assert [a["statusCode"] for a in delivery["attempts"]] == [200]


def test_the_broker_refuses_to_start_with_webhooks_but_no_key(tmp_path, make_receiver):
    url = f"sqlite+aiosqlite:///{tmp_path / 'brokkr.db'}"
    with running_broker(url, webhooks=WEBHOOK_SETTINGS) as running:
        _create(running, make_receiver().url())

    settings = load_settings(
        database={"url": url},
        grpc={"host": "127.0.0.1", "port": 0},
        rest={"enabled": False},
    )
    with pytest.raises(FailedPrecondition) as refused:
        asyncio.run(Broker(settings).start())
    assert refused.value.reason == "WEBHOOK_ENCRYPTION_KEY_MISSING"
    assert "webhooks.encryption_key" in refused.value.message
