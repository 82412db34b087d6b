"""Retrying temporary failures of the Kubernetes API, with backoff, without stampeding it.

A `TemporaryError` (409 update races, 429, 5xx, timeouts, no connection; see
`agent.reconcile.errors`) may go away by itself, so every request is tried again up to
`KubernetesSettings.max_apply_retries` times before the agent gives up and nacks. The wait before
retry *n* (counting from 1) is drawn uniformly from [0, min(max_delay, initial_delay * 2^(n-1))]
("full jitter"), so
many agents hit by the same API server hiccup do not come back in lockstep, and it is never
shorter than what the server asked for: a 429's Retry-After (or `retryAfterSeconds`) is a floor.

`sleep` is injectable so tests can see the waits without spending them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt
from tenacity.wait import wait_random_exponential

from agent.reconcile.errors import TemporaryError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request is retried."""

    #: Retries after the first attempt (`KubernetesSettings.max_apply_retries`).
    retries: int = 5
    #: Seconds; the cap of the first backoff, which doubles per attempt.
    initial_delay: float = 0.2
    #: Seconds; no backoff of our own is longer (a server's Retry-After may be, up to 300 s).
    max_delay: float = 10.0
    #: How to wait; `asyncio.sleep` except in tests.
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    def delay(self, state: RetryCallState) -> float:
        """Seconds to wait before the next attempt: full jitter, at least the server's Retry-After."""
        jitter = wait_random_exponential(multiplier=self.initial_delay, max=self.max_delay)(state)
        error = state.outcome.exception() if state.outcome is not None else None
        asked = error.delay if isinstance(error, TemporaryError) and error.delay is not None else 0.0
        return max(jitter, asked)


async def retrying(attempt: Callable[[], Awaitable[T]], policy: RetryPolicy) -> T:
    """`await attempt()`, again after a backoff while it raises a TemporaryError, until the policy's
    retries are spent; then the last error propagates. Any other error propagates at once."""
    retryer = AsyncRetrying(
        stop=stop_after_attempt(policy.retries + 1),
        wait=policy.delay,
        retry=retry_if_exception_type(TemporaryError),
        sleep=policy.sleep,
        reraise=True,
    )
    return await retryer(attempt)
