"""Webhooks: where the broker may send events, when it tries again, and which events a subscription wants.

Where. A webhook makes the broker open connections on a tenant's behalf, which is the classic
server-side request forgery (SSRF) hole: a URL pointing at 169.254.169.254 reads the cloud's
instance credentials, one pointing at 10.0.0.5 reaches an internal service. So a target URL is
http(s) without credentials, and every address its host resolves to must be globally routable
(`check_address` names each refused range) unless an operator allowed it by CIDR in settings.
IPv4 addresses embedded in IPv6 ones (`::ffff:10.0.0.1`, NAT64, 6to4) are judged as IPv4. A
refusal is INVALID_ARGUMENT (reason WEBHOOK_DESTINATION_NOT_ALLOWED) on the URL field, not
PERMISSION_DENIED: no key and no role could make the same request succeed, only another URL (or
an operator changing the allow-list), and the field violation lets clients point at the URL.

DNS rebinding: a name can resolve to a public address when checked and to a private one a
moment later, when the HTTP client resolves it again. `resolve_and_check` therefore returns the
checked addresses, and the delivery client must connect to one of them (sending the original
host name in the Host header and TLS SNI) instead of resolving the name itself.

When. Deliveries are at least once: a 2xx ends them; 408, 429, 5xx, timeouts and network errors
are retried after `next_delay` (exponential backoff with full jitter, or the receiver's
Retry-After on 429 and 503, both capped); any other status (410 Gone, 400, a 3xx, since
redirects are not followed) is permanent, and the delivery goes to the dead letters at once.

Which. A subscription wants an event when one of its type patterns matches, and the event passes
its filters: stack ids, agent ids and a label selector on the event's labels.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import TypeAlias
from urllib.parse import urlsplit

from broker.domain.events import WILDCARD, Event, compile_patterns, matches
from broker.domain.selectors import LabelSelector, parse_label_selector
from broker.domain.validation import Violations, is_dns_subdomain, validate_uuid
from brokkr_common.errors import BrokkrError, InvalidArgument, Unavailable

IPAddress: TypeAlias = IPv4Address | IPv6Address
IPNetwork: TypeAlias = IPv4Network | IPv6Network
#: Resolves a host name to addresses (as text), like `getaddrinfo`; raises OSError when it cannot.
Resolver: TypeAlias = Callable[[str, int], Awaitable[Sequence[str]]]

MAX_URL_LENGTH = 2048
_DEFAULT_PORTS = {"http": 80, "https": 443}
_REFUSED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ip_network(network), why)
    for network, why in (
        ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
        ("10.0.0.0/8", "private (RFC 1918)"),
        ("100.64.0.0/10", "shared address space (RFC 6598)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local, where cloud metadata services live"),
        ("172.16.0.0/12", "private (RFC 1918)"),
        ("192.0.0.0/24", "reserved for IETF protocol assignments"),
        ("192.0.2.0/24", "reserved for documentation"),
        ("192.168.0.0/16", "private (RFC 1918)"),
        ("198.18.0.0/15", "reserved for benchmarking"),
        ("198.51.100.0/24", "reserved for documentation"),
        ("203.0.113.0/24", "reserved for documentation"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("100::/64", "discard-only"),
        ("2001:db8::/32", "reserved for documentation"),
        ("fc00::/7", "unique local (ULA)"),
        ("fe80::/10", "link-local"),
        ("fec0::/10", "site-local"),
        ("ff00::/8", "multicast"),
    )
)
_NAT64 = IPv6Network("64:ff9b::/96")


# Where ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookUrl:
    """A checked target URL and the host and port to resolve for it."""

    url: str
    host: str
    port: int


def check_url(url: str, field: str) -> WebhookUrl:
    """An absolute http(s) URL with a host, without credentials or fragment, at most 2048 characters."""
    if not url:
        raise InvalidArgument.for_field(field, "is required", "FIELD_REQUIRED")
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url(field, f"must be at most {MAX_URL_LENGTH} characters (got {len(url)})")
    if not url.isprintable() or " " in url:
        raise _bad_url(field, "must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise _bad_url(field, f"is not a valid URL: {error}") from None
    if port == 0:
        raise _bad_url(field, "must not use port 0")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise _bad_url(field, "must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise _bad_url(field, "must not carry credentials; send them in the webhook's auth header")
    if parts.fragment:
        raise _bad_url(field, "must not have a fragment ('#...')")
    host = (parts.hostname or "").lower()
    if not (_is_ip(host) or is_dns_subdomain(host)):
        raise _bad_url(field, "must name a host: an IP address or a DNS name such as 'hooks.example.com'")
    return WebhookUrl(url, host, port or _DEFAULT_PORTS[scheme])


def check_address(ip: IPAddress, allowed: Sequence[IPNetwork], field: str = "webhook.url") -> None:
    """Refuse `ip` unless it is globally routable or inside one of the `allowed` networks."""
    if why := _refusal(ip, allowed):
        raise _not_allowed(field, f"points at {ip}, which is {why}")


async def resolve_and_check(
    host: str,
    port: int,
    allowed: Sequence[IPNetwork],
    resolver: Resolver | None = None,
    field: str = "webhook.url",
) -> tuple[IPAddress, ...]:
    """Every address `host` resolves to, once all of them are allowed: the addresses to connect to.

    One refused address refuses the host, whatever the others are: the client could otherwise be
    steered to it. A name that does not resolve is UNAVAILABLE (reason WEBHOOK_HOST_UNRESOLVED):
    DNS may answer later.
    """
    if _is_ip(host):
        addresses: tuple[IPAddress, ...] = (ip_address(host),)
    else:
        try:
            found = await (resolver or _system_resolver)(host, port)
        except OSError as error:
            raise Unavailable(
                f"could not resolve {host!r}: {error}", reason="WEBHOOK_HOST_UNRESOLVED"
            ) from None
        addresses = tuple(dict.fromkeys(ip_address(address) for address in found))
        if not addresses:
            raise Unavailable(f"{host!r} resolves to no address", reason="WEBHOOK_HOST_UNRESOLVED")
    refused = [f"{ip} ({why})" for ip in addresses if (why := _refusal(ip, allowed))]
    if refused:
        raise _not_allowed(field, f"host {host!r} resolves to refused addresses: {', '.join(refused)}")
    return addresses


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _refusal(ip: IPAddress, allowed: Sequence[IPNetwork]) -> str | None:
    """Why `ip` is refused, or None. An embedded IPv4 address is judged, and may be allowed, as IPv4."""
    judged = _embedded_ipv4(ip) or ip
    if any(address in network for network in allowed for address in (ip, judged)):
        return None
    why = next((why for network, why in _REFUSED if judged in network), None)
    if why is None and not judged.is_global:
        why = "not globally routable"
    if why is not None and judged is not ip:
        why = f"{why}: {judged} inside IPv6"
    return why


def _embedded_ipv4(ip: IPAddress) -> IPv4Address | None:
    if isinstance(ip, IPv4Address):
        return None
    if ip in _NAT64:
        return IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.ipv4_mapped or ip.sixtofour


def _is_ip(host: str) -> bool:
    try:
        ip_address(host)
    except ValueError:
        return False
    return True


def _bad_url(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.for_field(field, description, "INVALID_WEBHOOK_URL")


def _not_allowed(field: str, description: str) -> InvalidArgument:
    return InvalidArgument.for_field(
        field,
        f"{description}; webhooks may only reach public addresses unless an operator allows the range",
        "WEBHOOK_DESTINATION_NOT_ALLOWED",
    )


# When ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    status: int


@dataclass(frozen=True)
class Retry:
    """Try again later. `retry_after`: seconds the receiver asked to wait (429 and 503 only)."""

    reason: str
    retry_after: float | None = None


@dataclass(frozen=True)
class DeadLetter:
    """Never try this delivery again."""

    reason: str


Outcome: TypeAlias = Delivered | Retry | DeadLetter


def classify_response(
    status: int | None, error: BaseException | None = None, *, retry_after: float | None = None
) -> Outcome:
    """What one attempt's HTTP `status`, or the `error` that prevented one, means for the delivery.

    Errors are network trouble, timeouts and the like, so they are retried; the exception is a
    Brokkr error other than UNAVAILABLE, such as the destination being refused (the name now
    resolves to a private address), which no retry will change.
    """
    if status is None:
        if error is None:
            raise ValueError("classify_response needs a status or an error")
        if isinstance(error, BrokkrError) and not isinstance(error, Unavailable):
            return DeadLetter(error.message)
        return Retry(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__)
    if 200 <= status < 300:
        return Delivered(status)
    if status in (408, 429) or 500 <= status < 600:
        return Retry(f"HTTP {status}", retry_after if status in (429, 503) else None)
    if 300 <= status < 400:
        return DeadLetter(f"HTTP {status}: redirects are not followed")
    return DeadLetter(f"HTTP {status}")


def next_delay(
    attempt: int, base: float, cap: float, rng: random.Random, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 for the first).

    Full jitter: uniform between 0 and `base * 2 ** (attempt - 1)`, capped at `cap`, so retries
    of many deliveries spread out instead of arriving together. A receiver's `retry_after` is a
    floor (we never come back sooner than asked), still capped at `cap`.
    """
    ceiling = min(cap, base * 2 ** min(max(attempt, 1) - 1, 64))
    delay = rng.uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from `now` that a Retry-After header asks for (delay-seconds or an HTTP date), or None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max((when - now).total_seconds(), 0.0)


# Which ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionFilter:
    """Which events a subscription wants. Empty id sets and an empty selector let everything through.

    An event without the id a filter asks for (an agent event has no stack) does not pass it.
    """

    event_types: tuple[str, ...] = (WILDCARD,)
    stack_ids: frozenset[str] = frozenset()
    agent_ids: frozenset[str] = frozenset()
    labels: LabelSelector = field(default_factory=LabelSelector)

    def matches(self, event: Event) -> bool:
        return (
            matches(self.event_types, event.type)
            and (not self.stack_ids or event.stack_id in self.stack_ids)
            and (not self.agent_ids or event.agent_id in self.agent_ids)
            and self.labels.matches(event.labels)
        )


def build_filter(
    event_types: Iterable[str],
    stack_ids: Iterable[str] = (),
    agent_ids: Iterable[str] = (),
    label_selector: str = "",
    field: str = "webhook",
) -> SubscriptionFilter:
    """Check a subscription's filter as a request gives it, reporting every problem at once."""
    violations = Violations()
    types = violations.check(compile_patterns, event_types, f"{field}.event_types")
    if types == ():
        violations.add(
            f"{field}.event_types", "must list at least one pattern ('*' for every event)", "FIELD_REQUIRED"
        )
    stacks = _ids(violations, f"{field}.stack_ids", stack_ids)
    agents = _ids(violations, f"{field}.agent_ids", agent_ids)
    selector = violations.check(parse_label_selector, f"{field}.label_selector", label_selector)
    violations.raise_if_any()
    return SubscriptionFilter(types or (), stacks, agents, selector or LabelSelector())


def _ids(violations: Violations, field: str, ids: Iterable[str]) -> frozenset[str]:
    checked = (violations.check(validate_uuid, f"{field}[{index}]", value) for index, value in enumerate(ids))
    return frozenset(value for value in checked if value is not None)
