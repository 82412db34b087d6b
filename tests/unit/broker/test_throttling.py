"""Counting failed authentications per client: the window, the refusal, and bounded memory."""

from __future__ import annotations

import pytest

from broker.api import throttling
from broker.api.throttling import AuthenticationFailures, client_address
from brokkr_common.errors import ResourceExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_refused_after_the_limit_until_its_oldest_failure_leaves_the_window():
    clock = Clock()
    failures = AuthenticationFailures(limit=3, window=60, clock=clock)
    for _ in range(3):
        failures.check("10.0.0.1")
        failures.failed("10.0.0.1")
        clock.now += 10

    with pytest.raises(ResourceExhausted) as refused:
        failures.check("10.0.0.1")
    failures.check("10.0.0.2")  # others are not affected

    assert refused.value.reason == "TOO_MANY_AUTHENTICATION_FAILURES"
    assert refused.value.retry_after_seconds == pytest.approx(30)
    clock.now += 30.5  # the first failure (at 1000) is now older than the window
    failures.check("10.0.0.1")


def test_failures_spread_wider_than_the_window_never_block():
    clock = Clock()
    failures = AuthenticationFailures(limit=3, window=60, clock=clock)
    for _ in range(10):
        failures.check("10.0.0.1")
        failures.failed("10.0.0.1")
        clock.now += 31


def test_clients_whose_failures_are_old_are_forgotten_once_many_are_tracked(monkeypatch):
    monkeypatch.setattr(throttling, "_MAX_TRACKED", 5)
    clock = Clock()
    failures = AuthenticationFailures(limit=2, window=60, clock=clock)
    for n in range(5):
        failures.failed(f"10.0.0.{n}")
    clock.now += 120
    failures.failed("10.0.1.1")

    assert set(failures._failures) == {"10.0.1.1"}


@pytest.mark.parametrize(
    ("peer", "address"),
    [
        ("ipv4:10.0.0.7:51234", "10.0.0.7"),
        ("ipv6:[::1]:5000", "::1"),
        ("ipv6:[2001:db8::5]:443", "2001:db8::5"),
        ("unix:/tmp/socket", "unix:/tmp/socket"),
    ],
)
def test_client_addresses_drop_the_port(peer: str, address: str):
    assert client_address(peer) == address
