"""Secrets at rest: webhook URLs and auth headers are stored encrypted, under keys that can rotate.

A webhook URL often carries a token (`https://hooks.slack.com/services/T000/B000/XXXX`) and an
auth header is a credential, so a database dump or backup must not reveal them. They are sealed
with Fernet (AES-128-CBC with HMAC-SHA256, from `cryptography`): a standard, authenticated
format, so a token altered in the database fails to open instead of decrypting to garbage.

Rotation: configure the keys newest first. The first key seals everything new; every key opens.
Add a new key in front, re-seal the stored values, then drop the old key.
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from brokkr_common.errors import FailedPrecondition


def generate_key() -> str:
    """A fresh random key, as settings hold it (32 bytes, URL-safe base64)."""
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens short secrets with the configured keys (newest first)."""

    def __init__(self, keys: Sequence[bytes | str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed (generate one with generate_key())")
        try:
            self._fernet = MultiFernet([Fernet(key) for key in keys])
        except ValueError as error:
            raise ValueError(f"an encryption key is malformed: {error}") from None

    def encrypt(self, plaintext: str) -> str:
        """`plaintext` sealed with the first key; different every time."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, token: str) -> str:
        """The plaintext of a value any of the keys sealed.

        FAILED_PRECONDITION (reason SECRET_UNREADABLE) when none of them opens it: the key that
        sealed it is no longer configured, or the stored value was altered.
        """
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise FailedPrecondition(
                "a stored secret cannot be decrypted with any configured key", reason="SECRET_UNREADABLE"
            ) from None
