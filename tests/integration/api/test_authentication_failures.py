"""Repeated authentication failures from one client, on a real broker: refused for a while,
without the key being looked at, over gRPC and through the REST shim, and audited."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from broker.db.tables import audit_logs
from brokkr_common.client import BrokkrClient
from brokkr_common.errors import ResourceExhausted, Unauthenticated
from brokkr_common.pb.brokkr.v1 import auth_service_pb2
from tests.integration.harness import running_broker

WRONG_KEY = "brokkr_AAAAAAAA_" + "B" * 43


@pytest.fixture
def running(database_url):
    with running_broker(database_url, auth={"failure_limit": 3, "failure_window_seconds": 300}) as running:
        yield running


def test_a_client_failing_too_often_is_refused_even_with_a_good_key(running):
    with BrokkrClient(running.grpc_target, WRONG_KEY) as guesser:
        for _ in range(3):
            with pytest.raises(Unauthenticated):
                guesser.call(guesser.auth.WhoAmI, auth_service_pb2.WhoAmIRequest())
        with pytest.raises(ResourceExhausted) as refused:
            guesser.call(guesser.auth.WhoAmI, auth_service_pb2.WhoAmIRequest())
    with BrokkrClient(running.grpc_target, running.admin_key) as admin, pytest.raises(ResourceExhausted):
        admin.call(admin.auth.WhoAmI, auth_service_pb2.WhoAmIRequest())  # the same address

    assert refused.value.reason == "TOO_MANY_AUTHENTICATION_FAILURES"
    assert refused.value.retry_after_seconds is not None and 0 < refused.value.retry_after_seconds <= 300
    running.run(running.broker.audit_trail.flushed())
    # Every attempt is audited, the refused ones with their code.
    outcomes = sorted(
        outcome for role, outcome in running.run(_audit_entries(running)) if role == "unauthenticated"
    )
    assert outcomes == [
        "RESOURCE_EXHAUSTED",
        "RESOURCE_EXHAUSTED",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
        "UNAUTHENTICATED",
    ]


def test_rest_clients_are_counted_by_their_own_address(running):
    def who_am_i() -> tuple[int, str | None, dict]:
        request = urllib.request.Request(
            running.rest_url + "/api/v1/auth/whoami", headers={"Authorization": f"Bearer {WRONG_KEY}"}
        )
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=20)
        with failed.value as response:
            return response.code, response.headers.get("Retry-After"), json.loads(response.read())

    failures = [who_am_i() for _ in range(4)]

    assert [code for code, _, _ in failures] == [401, 401, 401, 429]
    _, retry_after, body = failures[-1]
    assert retry_after is not None and int(retry_after) > 0
    details = body["details"]
    assert any(detail.get("reason") == "TOO_MANY_AUTHENTICATION_FAILURES" for detail in details)


async def _audit_entries(running) -> list[tuple[str, str]]:
    async with running.broker.database.engine.connect() as connection:
        rows = await connection.execute(select(audit_logs.c.actor_role, audit_logs.c.outcome))
        return [(role, outcome) for role, outcome in rows]
