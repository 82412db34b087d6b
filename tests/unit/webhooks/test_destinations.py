"""Webhook destinations: URLs that are safe to call, and no way into private networks (SSRF)."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address, ip_network

import pytest

from broker.domain.webhooks import IPNetwork, WebhookUrl, check_address, check_url, resolve_and_check
from brokkr_common.errors import InvalidArgument, Unavailable

FIELD = "webhook.url"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param("https://hooks.example.com/brokkr?x=1", ("hooks.example.com", 443), id="https"),
        pytest.param("http://hooks.example.com", ("hooks.example.com", 80), id="http"),
        pytest.param("HTTPS://Hooks.Example.COM:8443/p", ("hooks.example.com", 8443), id="case"),
        pytest.param("http://203.0.113.9:8080/", ("203.0.113.9", 8080), id="ipv4-literal"),
        pytest.param("http://[2001:db8::1]/hook", ("2001:db8::1", 80), id="ipv6-literal"),
    ],
)
def test_good_urls(url: str, expected: tuple[str, int]) -> None:
    assert check_url(url, FIELD) == WebhookUrl(url, *expected)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        pytest.param("", "is required", id="empty"),
        pytest.param("https://example.com/" + "a" * 2048, "must be at most 2048 characters", id="too-long"),
        pytest.param("ftp://example.com/x", "must start with http:// or https://", id="ftp"),
        pytest.param("file:///etc/passwd", "must start with http:// or https://", id="file"),
        pytest.param("example.com/hook", "must start with http:// or https://", id="no-scheme"),
        pytest.param("https://user:secret@example.com/", "must not carry credentials", id="credentials"),
        pytest.param("https://token@example.com/", "must not carry credentials", id="user-only"),
        pytest.param("https://example.com/#frag", "must not have a fragment", id="fragment"),
        pytest.param("https://exa mple.com/", "must not contain spaces or control characters", id="space"),
        pytest.param(
            "https://example.com/\r\nX-Injected: 1", "must not contain spaces or control", id="crlf"
        ),
        pytest.param("https://example.com:99999/", "is not a valid URL", id="port-range"),
        pytest.param("https://example.com:0/", "must not use port 0", id="port-zero"),
        pytest.param("https:///path", "must name a host", id="no-host"),
        pytest.param("https://under_score.example.com/", "must name a host", id="bad-host"),
        pytest.param("https://[::1/", "is not a valid URL", id="broken-ipv6"),
    ],
)
def test_bad_urls(url: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_url(url, FIELD)
    (violation,) = caught.value.field_violations
    assert violation.field == FIELD
    assert problem in violation.description


@pytest.mark.parametrize(
    ("address", "why"),
    [
        pytest.param("127.0.0.1", "loopback", id="v4-loopback"),
        pytest.param("127.255.0.9", "loopback", id="v4-loopback-range"),
        pytest.param("10.1.2.3", "private (RFC 1918)", id="rfc1918-10"),
        pytest.param("172.16.5.4", "private (RFC 1918)", id="rfc1918-172"),
        pytest.param("192.168.1.1", "private (RFC 1918)", id="rfc1918-192"),
        pytest.param("169.254.169.254", "link-local, where cloud metadata services live", id="metadata"),
        pytest.param("100.64.0.1", "shared address space", id="cgnat"),
        pytest.param("0.0.0.0", "'this network'", id="v4-unspecified"),
        pytest.param("224.0.0.251", "multicast", id="v4-multicast"),
        pytest.param("255.255.255.255", "reserved", id="broadcast"),
        pytest.param("192.0.2.10", "reserved for documentation", id="v4-documentation"),
        pytest.param("::1", "loopback", id="v6-loopback"),
        pytest.param("::", "unspecified", id="v6-unspecified"),
        pytest.param("fd00:ec2::254", "unique local (ULA)", id="ula-metadata"),
        pytest.param("fc00::1", "unique local (ULA)", id="ula"),
        pytest.param("fe80::1", "link-local", id="v6-link-local"),
        pytest.param("fe80::1%eth0", "link-local", id="v6-link-local-scoped"),
        pytest.param("ff02::1", "multicast", id="v6-multicast"),
        pytest.param("2001:db8::1", "reserved for documentation", id="v6-documentation"),
        pytest.param("2001::1", "not globally routable", id="teredo"),
        pytest.param("::ffff:127.0.0.1", "loopback: 127.0.0.1 inside IPv6", id="mapped-loopback"),
        pytest.param("::ffff:169.254.169.254", "link-local, where cloud", id="mapped-metadata"),
        pytest.param("::ffff:10.0.0.1", "private (RFC 1918): 10.0.0.1 inside IPv6", id="mapped-private"),
        pytest.param(
            "64:ff9b::a9fe:a9fe", "link-local, where cloud metadata services live: 169.254", id="nat64"
        ),
        pytest.param("2002:c0a8:101::1", "private (RFC 1918): 192.168.1.1 inside IPv6", id="6to4"),
    ],
)
def test_addresses_outside_the_public_internet_are_refused(address: str, why: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_address(ip_address(address), [])
    error = caught.value
    assert error.reason == "WEBHOOK_DESTINATION_NOT_ALLOWED"
    (violation,) = error.field_violations
    assert violation.field == FIELD
    assert f"which is {why}" in violation.description


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8"])
def test_public_addresses_are_fine(address: str) -> None:
    check_address(ip_address(address), [])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        pytest.param("127.0.0.1", ["127.0.0.1/32"], id="exact-host"),
        pytest.param("10.20.30.40", ["10.0.0.0/8"], id="range"),
        pytest.param("::ffff:127.0.0.1", ["127.0.0.0/8"], id="mapped-judged-as-v4"),
        pytest.param("::1", ["::1/128"], id="v6"),
        pytest.param("fd00::5", ["10.0.0.0/8", "fd00::/8"], id="second-entry"),
    ],
)
def test_the_allow_list_opens_a_range(address: str, allowed: list[str]) -> None:
    check_address(ip_address(address), [ip_network(a) for a in allowed])


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        pytest.param("127.0.0.2", ["127.0.0.1/32"], id="next-host"),
        pytest.param("169.254.169.254", ["10.0.0.0/8"], id="other-range"),
        pytest.param("::1", ["127.0.0.0/8"], id="v6-loopback-is-not-v4"),
    ],
)
def test_the_allow_list_opens_nothing_else(address: str, allowed: list[str]) -> None:
    with pytest.raises(InvalidArgument):
        check_address(ip_address(address), [ip_network(a) for a in allowed])


class FakeResolver:
    """Answers from a table, and remembers what it was asked."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> Sequence[str]:
        self.asked.append((host, port))
        if host not in self.answers:
            raise OSError(-2, "Name or service not known")
        return self.answers[host]


PUBLIC: list[IPNetwork] = []


async def test_all_addresses_come_back_for_pinning() -> None:
    resolver = FakeResolver({"hooks.example.com": ["93.184.216.34", "2606:2800:220:1::1", "93.184.216.34"]})
    addresses = await resolve_and_check("hooks.example.com", 443, PUBLIC, resolver)
    assert addresses == (ip_address("93.184.216.34"), ip_address("2606:2800:220:1::1"))
    assert resolver.asked == [("hooks.example.com", 443)]


@pytest.mark.parametrize(
    "answers",
    [
        pytest.param(["93.184.216.34", "10.0.0.7"], id="private-second"),
        pytest.param(["169.254.169.254", "93.184.216.34"], id="metadata-first"),
        pytest.param(["2606:2800:220:1::1", "::ffff:127.0.0.1"], id="mapped-loopback"),
    ],
)
async def test_one_refused_address_refuses_the_host(answers: list[str]) -> None:
    resolver = FakeResolver({"rebind.example.com": answers})
    with pytest.raises(InvalidArgument) as caught:
        await resolve_and_check("rebind.example.com", 443, PUBLIC, resolver)
    assert caught.value.reason == "WEBHOOK_DESTINATION_NOT_ALLOWED"
    assert "host 'rebind.example.com' resolves to refused addresses" in caught.value.message


async def test_every_refused_address_is_named() -> None:
    resolver = FakeResolver({"internal.example.com": ["10.0.0.7", "8.8.8.8", "127.0.0.1"]})
    with pytest.raises(InvalidArgument) as caught:
        await resolve_and_check("internal.example.com", 80, PUBLIC, resolver)
    assert "10.0.0.7 (private (RFC 1918)), 127.0.0.1 (loopback)" in caught.value.message


async def test_allowed_ranges_apply_to_resolved_addresses() -> None:
    resolver = FakeResolver({"receiver.test": ["127.0.0.1"]})
    allowed = [ip_network("127.0.0.0/8")]
    assert await resolve_and_check("receiver.test", 8080, allowed, resolver) == (ip_address("127.0.0.1"),)


async def test_an_address_literal_is_checked_without_resolving() -> None:
    resolver = FakeResolver({})
    assert await resolve_and_check("93.184.216.34", 443, PUBLIC, resolver) == (ip_address("93.184.216.34"),)
    with pytest.raises(InvalidArgument):
        await resolve_and_check("::1", 443, PUBLIC, resolver)
    assert resolver.asked == []


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        pytest.param({}, "could not resolve 'gone.example.com'", id="unknown-name"),
        pytest.param({"gone.example.com": []}, "'gone.example.com' resolves to no address", id="no-address"),
    ],
)
async def test_a_name_that_does_not_resolve_is_unavailable(
    answers: dict[str, list[str]], problem: str
) -> None:
    with pytest.raises(Unavailable) as caught:
        await resolve_and_check("gone.example.com", 443, PUBLIC, FakeResolver(answers))
    assert caught.value.reason == "WEBHOOK_HOST_UNRESOLVED"
    assert problem in caught.value.message


async def test_the_system_resolver_is_the_default() -> None:
    with pytest.raises(InvalidArgument, match="loopback"):
        await resolve_and_check("localhost", 8080, PUBLIC)
    addresses = await resolve_and_check("localhost", 8080, [ip_network("127.0.0.0/8"), ip_network("::1/128")])
    assert ip_address("127.0.0.1") in addresses
