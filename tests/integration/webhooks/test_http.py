"""The webhook HTTP client connects only to addresses it checked, and names the URL's host.

A resolver double stands in for DNS, so a name can resolve to a loopback receiver (allowed by
CIDR) or "rebind" to a private address between saving and sending."""

from __future__ import annotations

from ipaddress import ip_network

import pytest

from broker.services.webhooks_http import HttpSender
from brokkr_common.errors import InvalidArgument
from tests.integration.webhooks.conftest import LOOPBACK


def resolving_to(*addresses: str):
    asked: list[str] = []

    async def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        return list(addresses)

    return resolve, asked


async def test_a_name_is_connected_to_at_its_checked_address_with_its_own_host_header(make_receiver):
    receiver = make_receiver()
    resolve, asked = resolving_to("127.0.0.1")
    sender = HttpSender(LOOPBACK, resolve)
    try:
        answer = await sender.send(
            f"http://hooks.example.com:{receiver.port}/in", {"X-Test": "1"}, b"{}", time_limit=5
        )
    finally:
        await sender.close()
    assert answer.status == 200
    assert asked == ["hooks.example.com"]
    [request] = receiver.requests
    assert request.headers["Host"] == f"hooks.example.com:{receiver.port}"
    assert request.path == "/in"


@pytest.mark.parametrize(
    "addresses",
    [("10.0.0.7",), ("169.254.169.254",), ("127.0.0.1", "10.0.0.7"), ("::ffff:192.168.1.1",)],
    ids=["private", "metadata", "one-of-several", "ipv4-in-ipv6"],
)
async def test_a_name_that_now_resolves_to_a_refused_address_is_never_contacted(addresses, make_receiver):
    receiver = make_receiver()
    resolve, _ = resolving_to(*addresses)
    sender = HttpSender(LOOPBACK, resolve)
    try:
        with pytest.raises(InvalidArgument) as refused:
            await sender.send(f"http://rebound.example.com:{receiver.port}/", {}, b"{}", time_limit=5)
    finally:
        await sender.close()
    assert refused.value.reason == "WEBHOOK_DESTINATION_NOT_ALLOWED"
    assert receiver.requests == []


async def test_ip_literals_are_checked_too(make_receiver):
    receiver = make_receiver()
    sender = HttpSender((ip_network("10.0.0.0/8"),))
    try:
        with pytest.raises(InvalidArgument):
            await sender.send(receiver.url(), {}, b"{}", time_limit=5)
    finally:
        await sender.close()
    assert receiver.requests == []


async def test_redirects_are_not_followed(make_receiver):
    target = make_receiver()
    redirecting = make_receiver([(307, {"Location": target.url()})])
    sender = HttpSender(LOOPBACK)
    try:
        answer = await sender.send(redirecting.url(), {}, b"{}", time_limit=5)
    finally:
        await sender.close()
    assert answer.status == 307
    assert target.requests == []
