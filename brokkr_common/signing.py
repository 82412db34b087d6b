"""Webhook signatures: how a receiver knows a request came from Brokkr, unchanged and recently.

Every webhook request carries three headers:

    Brokkr-Event-Id:   the event's id; the same on every retry, so receivers can drop repeats
    Brokkr-Timestamp:  when this attempt was signed, in whole seconds since the Unix epoch
    Brokkr-Signature:  v1=<hex HMAC-SHA256 of "<timestamp>." followed by the raw body>

To verify a request, a receiver:

1. reads the raw body bytes, before any JSON parsing (re-serialising changes the bytes);
2. computes HMAC-SHA256 with the webhook's secret over the timestamp header's value, a period
   and the body, and hex-encodes it;
3. compares it, in constant time, with each `v1=` entry of the signature header (the header may
   list several, comma-separated, while a secret is being rotated);
4. refuses the request if the timestamp is more than five minutes away from its own clock:
   signing the timestamp means an intercepted request cannot be replayed later;
5. optionally remembers event ids it has handled: deliveries are at least once.

In Python, with this module or without it:

    import hashlib, hmac, time

    def verify(secret: bytes, headers, body: bytes, tolerance: int = 300) -> bool:
        timestamp = headers.get("Brokkr-Timestamp", "")
        if not timestamp.isdecimal() or abs(time.time() - int(timestamp)) > tolerance:
            return False
        mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        return any(
            hmac.compare_digest(f"v1={mac}".encode(), part.strip().encode())
            for part in headers.get("Brokkr-Signature", "").split(",")
        )
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

SIGNATURE_HEADER = "Brokkr-Signature"
TIMESTAMP_HEADER = "Brokkr-Timestamp"
EVENT_ID_HEADER = "Brokkr-Event-Id"
#: How far a request's timestamp may be from the receiver's clock, either way.
DEFAULT_TOLERANCE_SECONDS = 300
_SCHEME = "v1="


def sign(secret: bytes, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`: `v1=<hex>`."""
    return _signature(secret, str(timestamp), body)


def headers(secret: bytes, body: bytes, now: float, event_id: str) -> dict[str, str]:
    """The headers that sign one delivery attempt of event `event_id` at `now` (Unix seconds)."""
    timestamp = int(now)
    return {
        EVENT_ID_HEADER: event_id,
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: sign(secret, timestamp, body),
    }


def verify(
    secret: bytes,
    headers: Mapping[str, str],
    body: bytes,
    now: float,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `body` with `headers` (names in any case) was signed with `secret` within the window."""
    by_name = {name.lower(): value for name, value in headers.items()}
    timestamp = by_name.get(TIMESTAMP_HEADER.lower(), "")
    if not (timestamp.isascii() and timestamp.isdigit()) or abs(now - int(timestamp)) > tolerance_seconds:
        return False
    expected = _signature(secret, timestamp, body).encode()
    offered = by_name.get(SIGNATURE_HEADER.lower(), "").split(",")
    return any(hmac.compare_digest(expected, entry.strip().encode()) for entry in offered)


def _signature(secret: bytes, timestamp: str, body: bytes) -> str:
    """Over the timestamp exactly as the header carries it, a period, and the raw body."""
    return _SCHEME + hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
