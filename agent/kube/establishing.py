"""Waiting until the CustomResourceDefinitions a stack brings are Established.

An API server serves a CRD's kind only once the CRD's `Established` condition is True, a moment
after it is created; until then every request for an object of that kind is a 404, which would
read as "the cluster does not know this kind". So after the wave that applies CRDs, the agent
waits for the ones later waves use (`ApplyWave.establish`), polling each CRD, sooner at first
and then less often, for at most the configured time.

A CRD whose names were not accepted (`NamesAccepted` False: its plural or kind clashes with
another CRD's) never becomes Established: that is permanent, and names the CRD. Running out of
time is temporary: a busy API server may still get there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from agent.kube.client import KubeClient, gather_all
from agent.kube.discovery import Resource
from agent.reconcile.errors import PermanentError, TemporaryError
from agent.reconcile.kinds import CRD
from brokkr_common.session.reports import ResourceError
from brokkr_common.session.resource_key import ResourceKey

CRDS = Resource(CRD.group, "v1", CRD.kind, "customresourcedefinitions", namespaced=False)

#: Seconds between polls: the first, and the most it grows to (doubling).
FIRST_POLL = 0.05
MAX_POLL = 0.5


async def wait_established(api: KubeClient, crds: Mapping[str, ResourceKey], *, limit_seconds: float) -> None:
    """Return once every CRD named in `crds` (name -> its key in the stack) is Established.
    PermanentError naming the CRDs whose names were refused; TemporaryError after `limit_seconds`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_seconds
    pending, poll = sorted(crds), FIRST_POLL
    while True:
        found = await gather_all(*(api.request("GET", CRDS.path(name=name)) for name in pending))
        conditions = {name: _conditions(response.body) for name, response in zip(pending, found, strict=True)}
        refused = [
            ResourceError(crds[name], "NAMES_NOT_ACCEPTED", accepted.get("message") or "names not accepted")
            for name, (_, accepted) in conditions.items()
            if accepted.get("status") == "False"
        ]
        if refused:
            raise PermanentError.for_objects(refused)
        pending = [
            name for name, (established, _) in conditions.items() if established.get("status") != "True"
        ]
        if not pending:
            return
        if loop.time() >= deadline:
            raise TemporaryError(
                f"CustomResourceDefinition {', '.join(pending)} not Established after {limit_seconds:g} s",
                reason="NOT_ESTABLISHED",
            )
        await asyncio.sleep(min(poll, deadline - loop.time()))
        poll = min(poll * 2, MAX_POLL)


def _conditions(crd: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """The CRD's `Established` and `NamesAccepted` conditions ({} where absent)."""
    status = crd.get("status")
    conditions = status.get("conditions") if isinstance(status, Mapping) else None
    by_type = {
        c.get("type"): c
        for c in (conditions if isinstance(conditions, list) else [])
        if isinstance(c, Mapping)
    }
    return by_type.get("Established", {}), by_type.get("NamesAccepted", {})
