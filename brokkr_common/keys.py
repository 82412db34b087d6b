"""Prefixed API keys (PAKs): `brokkr_<short>_<long>`.

The short token is a public lookup id (stored in clear, indexed); the long token is 256 bits from
`secrets` and only its SHA-256 is stored. A fast hash is right here: the secret is high-entropy
random, so there is nothing to brute-force, and verification must be cheap on every call.
Verification compares digests with `hmac.compare_digest`, in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "brokkr"
SHORT_BYTES = 8
LONG_BYTES = 32
_KEY_PATTERN = re.compile(r"^brokkr_([0-9a-z]{8,32})_([A-Za-z0-9]{20,128})$")
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


class MalformedKey(ValueError):
    """The presented string is not shaped like a Brokkr key."""


@dataclass(frozen=True)
class ParsedKey:
    short_token: str
    long_token: str

    @property
    def long_hash(self) -> str:
        return hash_long_token(self.long_token)


@dataclass(frozen=True)
class NewKey:
    """A freshly generated key: `plaintext` is shown once, the rest is stored."""

    plaintext: str
    short_token: str
    long_hash: str


def _base62(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    digits = []
    while number:
        number, remainder = divmod(number, 62)
        digits.append(_BASE62[remainder])
    return "".join(reversed(digits)) or "0"


def hash_long_token(long_token: str) -> str:
    return hashlib.sha256(long_token.encode()).hexdigest()


def generate() -> NewKey:
    short = secrets.token_hex(SHORT_BYTES)
    long = _base62(secrets.token_bytes(LONG_BYTES)).rjust(43, "0")
    return NewKey(plaintext=f"{PREFIX}_{short}_{long}", short_token=short, long_hash=hash_long_token(long))


def parse(presented: str) -> ParsedKey:
    match = _KEY_PATTERN.match(presented.strip())
    if not match:
        raise MalformedKey("key is not of the form brokkr_<short>_<long>")
    return ParsedKey(short_token=match.group(1), long_token=match.group(2))


def verify(presented: ParsedKey, stored_long_hash: str) -> bool:
    """Constant-time comparison of the presented key's hash with the stored one."""
    return hmac.compare_digest(presented.long_hash.encode(), stored_long_hash.encode())


def hash_for_config(plaintext: str) -> str:
    """The `<short>:<sha256 of long>` form an admin key takes in configuration (e.g. Helm)."""
    parsed = parse(plaintext)
    return f"{parsed.short_token}:{parsed.long_hash}"
