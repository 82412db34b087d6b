"""What the agent's Kubernetes tests ask of the kube double besides its own levers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.kube_double.faults import RecordedRequest
from tests.kube_double.handle import KubeApi

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def writes(kube_api: KubeApi) -> list[RecordedRequest]:
    """The requests so far that asked for a change, dry runs excepted."""
    return [r for r in kube_api.requests() if r.method in _WRITES and "dryRun" not in r.query]


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    """Return once `condition()` holds; fail the test if it does not within `within` seconds."""
    async with asyncio.timeout(within):
        while not condition():
            await asyncio.sleep(0.01)
