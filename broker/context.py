"""The authenticated caller of the RPC being served: set by the API interceptor, read by the
servicers and the session stream (which is why it lives beside them, not inside either)."""

from __future__ import annotations

from contextvars import ContextVar

from broker.domain.model import Principal

_principal: ContextVar[Principal] = ContextVar("brokkr_principal")


def set_principal(principal: Principal) -> None:
    _principal.set(principal)


def current_principal() -> Principal:
    """The caller; only valid inside an RPC that went through the interceptor."""
    return _principal.get()
