"""Waiting for a real cluster and a real agent: poll a condition until it holds, within a deadline.

Nothing in these tests can be awaited directly (the agent runs on its own thread, the cluster is
remote), so every wait polls, and every poll has a deadline that fails the test with what it last
saw rather than hanging the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Long enough for a CRD to become Established and a namespace to be finalized on a busy machine.
DEADLINE_SECONDS = 60.0
INTERVAL_SECONDS = 0.2


def eventually(
    read: Callable[[], T], holds: Callable[[T], bool], what: str, within: float = DEADLINE_SECONDS
) -> T:
    """The first value of `read()` for which `holds` is true; AssertionError naming `what` (and
    the last value read) if none is within `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        value = read()
        if holds(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:.0f} s: {what}; last seen: {value!r}")
        time.sleep(INTERVAL_SECONDS)
