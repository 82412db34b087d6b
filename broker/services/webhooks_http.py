"""The HTTP client that sends webhook requests, connecting only to addresses it has checked.

Checking a webhook's host when it is saved is not enough: DNS can answer with a public address
then and a private one at delivery time (DNS rebinding), or the HTTP client could resolve the name
again between our check and its connect. So the client's resolver *is* the check: aiohttp asks
`CheckingResolver` for the host's addresses, which resolves once, refuses the host if any address
is private (unless allowed by CIDR), and hands back exactly the checked addresses to connect to.
aiohttp still sends the URL's host name in the Host header and as TLS SNI and verifies the
certificate against it. An IP literal never reaches a resolver, so it is checked before the
request.

Redirects are not followed (a 3xx is a permanent failure, see `broker.domain.webhooks`), proxies
from the environment are ignored, cookies are not kept, and only the status and the Retry-After
header are read from the answer.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from ipaddress import ip_address

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from broker.domain.webhooks import IPNetwork, Resolver, check_address, check_url, resolve_and_check

USER_AGENT = "Brokkr-Webhooks/1"


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    retry_after: str | None = None


class CheckingResolver(AbstractResolver):
    """Resolves a host once and returns only addresses `resolve_and_check` allowed."""

    def __init__(self, allowed: Sequence[IPNetwork], resolver: Resolver | None = None) -> None:
        self._allowed = tuple(allowed)
        self._resolver = resolver

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[ResolveResult]:
        addresses = await resolve_and_check(host, port, self._allowed, self._resolver)
        return [
            ResolveResult(
                hostname=host,
                host=str(address),
                port=port,
                family=socket.AF_INET6 if address.version == 6 else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for address in addresses
        ]

    async def close(self) -> None:
        return None


class HttpSender:
    """Sends one webhook request per `send`; connections are pooled per checked address."""

    def __init__(self, allowed: Sequence[IPNetwork], resolver: Resolver | None = None) -> None:
        self._allowed = tuple(allowed)
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            connector = aiohttp.TCPConnector(
                resolver=CheckingResolver(self._allowed, self._resolver), use_dns_cache=False
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                headers={"User-Agent": USER_AGENT},
            )
        return self._session

    async def send(self, url: str, headers: Mapping[str, str], body: bytes, time_limit: float) -> HttpAnswer:
        """POST `body` to `url`; raises on network trouble, timeouts and refused destinations."""
        target = check_url(url, "webhook.url")
        try:
            literal = ip_address(target.host)
        except ValueError:
            literal = None
        if literal is not None:
            check_address(literal, self._allowed)
        async with self._client().post(
            url,
            data=body,
            headers=dict(headers),
            timeout=aiohttp.ClientTimeout(total=time_limit),
            allow_redirects=False,
        ) as response:
            return HttpAnswer(response.status, response.headers.get("Retry-After"))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
