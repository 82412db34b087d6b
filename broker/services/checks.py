"""Request checks shared by the services: ids, request ids and update masks.

They add to a `Violations` collector instead of raising, so a service reports every problem of a
request at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from broker.domain.validation import Violations, validate_uuid


def resource_id(violations: Violations, field: str, value: str) -> str:
    """A resource id (a UUID), normalised to lower case; "" when invalid (the violation is recorded)."""
    return violations.check(validate_uuid, field, value) or ""


def request_id(violations: Violations, value: str | None) -> str | None:
    """An optional AIP-155 request id (a UUID)."""
    if value is None:
        return None
    return violations.check(validate_uuid, "request_id", value) or None


def update_mask(
    violations: Violations, changes: Mapping[str, Any], allowed: Collection[str], resource: str
) -> None:
    """Every field named in `changes` must be one the service may update."""
    for name in sorted(set(changes) - set(allowed)):
        violations.add(
            "update_mask",
            f"{name!r} is not an updatable field of {resource}; updatable: {', '.join(sorted(allowed))}",
            "INVALID_UPDATE_MASK",
        )
