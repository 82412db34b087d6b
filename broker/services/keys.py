"""Keys (PAKs): who is calling, the admin key's bootstrap, and issuing and rotating keys.

`authenticate` reads the key's row on every call, so a rotated or revoked key stops working at
once on every replica: there is no cache to go stale. Keys of deleted agents and generators are
revoked with them, and a key whose owner is gone is refused as well.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from broker.domain.changes import KeyRevoked
from broker.domain.model import ADMIN, Principal, Role
from broker.domain.ports import ApiKeyRecord, UnitOfWork
from broker.services import access
from brokkr_common import keys
from brokkr_common.errors import AlreadyExists, InvalidArgument, Unauthenticated

_CONFIGURED_HASH = re.compile(r"([0-9a-z]{8,32}):([0-9a-f]{64})")


async def authenticate(uow: UnitOfWork, authorization: str | None) -> Principal:
    """The principal a presented key belongs to: the `authorization` value, `Bearer <key>` or bare.

    UNAUTHENTICATED with reason KEY_MISSING, KEY_MALFORMED or KEY_INVALID (unknown, revoked, wrong
    secret, or its owner deleted).
    """
    try:
        parsed = keys.parse(_presented(authorization))
    except keys.MalformedKey as error:
        raise Unauthenticated(f"malformed key: {error}", reason="KEY_MALFORMED") from None
    async with uow:
        found = await uow.keys.find_with_owner(parsed.short_token)
    if found is None:
        raise _invalid()
    record, owner = found
    if record.revoked_at is not None or not keys.verify(parsed, record.long_hash):
        raise _invalid()
    if record.role is Role.ADMIN:
        return ADMIN
    if owner is None or owner.deleted:
        raise _invalid()
    return Principal(record.role, record.principal_id, owner.name)


def _presented(authorization: str | None) -> str:
    value = (authorization or "").strip()
    scheme, _, rest = value.partition(" ")
    if scheme.lower() == "bearer":
        value = rest.strip()
    if not value:
        raise Unauthenticated("no key: send `authorization: Bearer <key>`", reason="KEY_MISSING")
    return value


def _invalid() -> Unauthenticated:
    return Unauthenticated("the key is not valid (unknown, revoked or rotated)", reason="KEY_INVALID")


async def issue_key(uow: UnitOfWork, role: Role, principal_id: str | None, at: datetime) -> str:
    """Revoke the principal's keys and store a new one, in the caller's transaction; the plaintext."""
    await uow.keys.revoke(role, principal_id, at)
    new = keys.generate()
    await uow.keys.add(ApiKeyRecord(new.short_token, new.long_hash, role, principal_id, at))
    return new.plaintext


async def ensure_admin_key(uow: UnitOfWork, configured_hash: str | None) -> str | None:
    """Make sure the admin can log in; the new admin key's plaintext if one was created.

    With `configured_hash` (`<short>:<sha256>` from `brokkr-broker hash-key`), that key becomes the
    only admin key, replacing any other. Without it, the first start creates a random admin key and
    returns it (to be shown once); later starts find it and return None. Replicas starting together
    agree: the one that loses the race to create the key returns None.
    """
    try:
        if configured_hash is None:
            return await _first_admin_key(uow)
        await _install_admin_key(uow, *_parse_configured(configured_hash))
    except AlreadyExists:
        pass  # another replica did the same at the same moment
    return None


def _parse_configured(configured_hash: str) -> tuple[str, str]:
    found = _CONFIGURED_HASH.fullmatch(configured_hash.strip())
    if not found:
        raise InvalidArgument.for_field(
            "auth.admin_key_hash",
            "must be `<short>:<sha256 hex>` as printed by `brokkr-broker hash-key`",
            "INVALID_ADMIN_KEY_HASH",
        )
    return found.group(1), found.group(2)


async def _first_admin_key(uow: UnitOfWork) -> str | None:
    async with uow:
        if await uow.keys.active_admin_keys():
            return None
        plaintext = await issue_key(uow, Role.ADMIN, None, datetime.now(UTC))
        await uow.commit()
    return plaintext


async def _install_admin_key(uow: UnitOfWork, short_token: str, long_hash: str) -> None:
    now = datetime.now(UTC)
    wanted = ApiKeyRecord(short_token, long_hash, Role.ADMIN, None, now)
    async with uow:
        active = await uow.keys.active_admin_keys()
        if [(key.short_token, key.long_hash) for key in active] == [(short_token, long_hash)]:
            return
        await uow.keys.revoke(Role.ADMIN, None, now)
        stored = await uow.keys.find(short_token)
        if stored is None:
            await uow.keys.add(wanted)
        elif stored.role is Role.ADMIN:
            await uow.keys.reinstate(wanted)
        else:
            raise InvalidArgument.for_field(
                "auth.admin_key_hash", "names a key that is not an admin key", "INVALID_ADMIN_KEY_HASH"
            )
        uow.record(KeyRevoked(Role.ADMIN, None))
        await uow.commit()


async def rotate_admin_key(uow: UnitOfWork, actor: Principal) -> str:
    """Replace the admin key; the old one stops working at once. The new key's plaintext."""
    access.require_admin(actor, "rotate the admin key")
    async with uow:
        plaintext = await issue_key(uow, Role.ADMIN, None, datetime.now(UTC))
        uow.record(KeyRevoked(Role.ADMIN, None))
        await uow.commit()
    return plaintext
