"""Errors survive the trip to google.rpc.Status and back with every detail."""

import grpc
import pytest

from brokkr_common import errors, rpc_status


def test_invalid_argument_carries_error_info_and_field_violations():
    error = errors.InvalidArgument(
        "bad stack",
        reason="INVALID_STACK",
        field_violations=[errors.FieldViolation("stack.name", "must be a DNS label", "INVALID_NAME")],
        metadata={"stack": "x"},
    )
    back = rpc_status.from_status(rpc_status.to_status(error))
    assert isinstance(back, errors.InvalidArgument)
    assert back.reason == "INVALID_STACK"
    assert back.metadata == {"stack": "x"}
    assert back.field_violations == error.field_violations


def test_retry_info_round_trips():
    error = errors.Unavailable("database unreachable", retry_after_seconds=1.5)
    back = rpc_status.from_status(rpc_status.to_status(error))
    assert isinstance(back, errors.Unavailable)
    assert back.retry_after_seconds == pytest.approx(1.5)


def test_grpc_status_has_matching_code_and_binary_details():
    status = rpc_status.to_grpc_status(errors.NotFound("stack 'x' not found"))
    assert status.code is grpc.StatusCode.NOT_FOUND
    assert status.details == "stack 'x' not found"
    assert status.trailing_metadata[0][0] == "grpc-status-details-bin"


@pytest.mark.parametrize("code", list(grpc.StatusCode))
def test_grpc_code_maps_every_code(code):
    assert rpc_status.grpc_code(code.value[0]) is code
