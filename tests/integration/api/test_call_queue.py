"""A call the broker cannot take up in time is cancelled (`grpc.max_call_queue_seconds`), on a real
broker: its event loop is held up while calls arrive, as in a reconnect storm."""

from __future__ import annotations

import threading
import time

import grpc
import pytest

from brokkr_common.pb.brokkr.v1 import auth_service_pb2, auth_service_pb2_grpc
from tests.integration.harness import running_broker

#: How long the broker's event loop is held up; the calls arrive meanwhile.
_BUSY_SECONDS = 2.5
_CALLS = 4


async def _busy() -> None:
    time.sleep(_BUSY_SECONDS)  # blocking the loop on purpose: the broker falls behind


@pytest.mark.parametrize(("queue_seconds", "cancelled"), [(1, True), (60, False)])
def test_calls_waiting_longer_than_the_call_queue_allows_are_cancelled(
    database_url, queue_seconds, cancelled
):
    with running_broker(database_url, grpc={"max_call_queue_seconds": queue_seconds}) as running:
        busy = threading.Thread(target=running.run, args=(_busy(),))
        busy.start()
        time.sleep(0.2)  # the loop is held up from here
        stub = auth_service_pb2_grpc.AuthServiceStub(running.channel)
        metadata = (("authorization", f"Bearer {running.admin_key}"),)
        calls = [
            stub.WhoAmI.future(auth_service_pb2.WhoAmIRequest(), metadata=metadata, timeout=30)
            for _ in range(_CALLS)
        ]
        busy.join()
        codes = []
        for call in calls:
            try:
                call.result()
                codes.append(grpc.StatusCode.OK)
            except grpc.RpcError as error:
                codes.append(error.code())
    if cancelled:
        # The first call was already taken up (grpc holds one call requested ahead); the others
        # waited past the limit while the loop was busy.
        assert codes.count(grpc.StatusCode.CANCELLED) >= _CALLS - 1
    else:
        assert codes == [grpc.StatusCode.OK] * _CALLS
