"""The difference between what an agent holds of a stack and what it should hold.

Deltas are computed per resource from content hashes alone, never from deployment object ids:
whatever version an agent claims, sending it the objects whose hash differs and removing the keys
it should not have brings it exactly to the desired state. That is what lets an agent resume after
a restart, or from a version this broker has never seen, without a full resend.

A `Delta` is sorted and hashable: equal deltas towards the same deployment object encode to the
same bytes, which is how one encoded update serves thousands of agents (see `updates`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from brokkr_common.session.resource_key import ResourceKey

#: What an agent holds of one stack, or should: content hash by resource key.
Hashes = Mapping[ResourceKey, str]


@dataclass(frozen=True)
class Delta:
    """Objects to apply, as (key, content hash) pairs, and keys to remove; both sorted by key."""

    to_apply: tuple[tuple[ResourceKey, str], ...] = ()
    to_remove: tuple[ResourceKey, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.to_apply or self.to_remove)


def compute_delta(held: Hashes, desired: Hashes) -> Delta:
    """What turns `held` into `desired`: changed or missing objects, and objects not desired."""
    return Delta(
        to_apply=tuple(sorted((key, digest) for key, digest in desired.items() if held.get(key) != digest)),
        to_remove=tuple(sorted(key for key in held if key not in desired)),
    )


def apply_delta(held: Hashes, delta: Delta) -> dict[ResourceKey, str]:
    """What an agent holds after applying `delta` to `held`."""
    after = dict(held)  # copied at C speed: a small change to a large stack is the common case
    for key in delta.to_remove:
        after.pop(key, None)
    after.update(delta.to_apply)
    return after
