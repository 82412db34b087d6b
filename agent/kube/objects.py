"""Running one request per object, kind after kind, and naming every object that failed.

Applying and pruning go through a stack's objects in an order that matters between kinds (a
ServiceAccount before the Deployment using it; custom resources deleted before their CRD) and
not at all within a kind. So a sequence of objects is cut into runs of one kind: the objects of
a run are handled concurrently (as many at a time as the client has connections), the runs one
after another.

A failing object does not stop the others of its run or the runs after it, because a user wants
every problem of a stack at once rather than one per attempt. The failures are then raised as one
error that names each object: permanent if any of them is (nothing short of a change helps),
temporary otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

from agent.kube.client import about
from agent.reconcile.errors import ClusterError, PermanentError
from agent.reconcile.kinds import GroupKind
from brokkr_common.session.resource_key import ResourceKey

T = TypeVar("T")
Failure = tuple[ResourceKey, ClusterError]


def kind_runs(keys: Sequence[ResourceKey]) -> Iterator[list[ResourceKey]]:
    """`keys` cut into maximal runs of consecutive keys of one group-kind, in order."""
    for _, run in itertools.groupby(keys, key=GroupKind.of):
        yield list(run)


async def each_object(
    keys: Sequence[ResourceKey], handle: Callable[[ResourceKey], Awaitable[T]]
) -> tuple[dict[ResourceKey, T], list[Failure]]:
    """`handle` every key, run by run; what each returned, and the keys that failed with why.
    Anything but a ClusterError is a bug, and raised once the run has ended."""
    done: dict[ResourceKey, T] = {}
    failures: list[Failure] = []
    for run in kind_runs(keys):
        outcomes = await asyncio.gather(*(handle(key) for key in run), return_exceptions=True)
        for key, outcome in zip(run, outcomes, strict=True):
            if isinstance(outcome, ClusterError):
                failures.append((key, outcome))
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                done[key] = outcome
    return done, failures


def failed(failures: Sequence[Failure]) -> ClusterError:
    """One error for the objects that failed: permanent naming each if any failure is permanent,
    else the first temporary one, naming its object."""
    if any(not error.temporary for _, error in failures):
        permanent_first = sorted(failures, key=lambda failure: failure[1].temporary)
        return PermanentError.for_objects([error.resource_error(key) for key, error in permanent_first])
    key, error = failures[0]
    return about(str(key), error)
