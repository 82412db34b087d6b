"""Slowing down key guessing: a client that fails to authenticate too often is refused for a while.

Keys are 256-bit random, so guessing one is hopeless; what repeated failures cost is the database
round trip of every check and the noise in the audit log. After `limit` failures within `window`
seconds from one client address, further calls from it are refused with RESOURCE_EXHAUSTED
(reason TOO_MANY_AUTHENTICATION_FAILURES, with a retry delay) *before* the key is looked up, until
the oldest of those failures leaves the window. Successful calls do not reset the count, so a
client holding one valid key cannot use it to keep guessing others.

The count is per replica and in memory: behind N replicas a client gets at most N x `limit`
attempts per window, which is the same protection at a tiny cost, without shared state. The client
address is the TCP peer without its port, or the address the in-process REST shim forwards.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from brokkr_common.errors import ResourceExhausted

#: Beyond this many tracked clients, those whose failures all left the window are forgotten.
_MAX_TRACKED = 10_000


class AuthenticationFailures:
    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._limit = limit
        self._window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def check(self, client: str) -> None:
        """Raise ResourceExhausted if `client` failed `limit` times within the window."""
        failures = self._failures.get(client)
        if failures is None or len(failures) < self._limit:
            return
        wait = failures[0] + self._window - self._clock()
        if wait > 0:
            raise ResourceExhausted(
                "too many failed authentications from this client; retry later",
                reason="TOO_MANY_AUTHENTICATION_FAILURES",
                retry_after_seconds=round(wait, 1) or 0.1,
            )

    def failed(self, client: str) -> None:
        now = self._clock()
        failures = self._failures.setdefault(client, deque(maxlen=self._limit))
        failures.append(now)
        if len(self._failures) > _MAX_TRACKED:
            self._forget_before(now - self._window)

    def _forget_before(self, cutoff: float) -> None:
        for client in [c for c, failures in self._failures.items() if failures[-1] < cutoff]:
            del self._failures[client]


def client_address(peer: str) -> str:
    """`ipv4:10.0.0.7:51234` -> `10.0.0.7`, `ipv6:[::1]:5000` -> `::1`; anything else as it is."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0] or rest
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]") or rest
    return peer
