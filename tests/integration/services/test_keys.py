"""Keys on both backends: authentication, the admin key's bootstrap, rotation and revocation."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from broker.domain.model import ADMIN, Principal, Role
from broker.services import agents, generators, keys
from brokkr_common import keys as pak
from brokkr_common.errors import InvalidArgument, PermissionDenied, Unauthenticated
from tests.integration.services.builders import Builder, as_generator


async def _reason(uow_factory, authorization: str | None) -> str:
    with pytest.raises(Unauthenticated) as raised:
        await keys.authenticate(uow_factory(), authorization)
    return raised.value.reason


async def test_the_first_start_creates_one_admin_key_and_later_starts_none(uow_factory):
    first = await keys.ensure_admin_key(uow_factory(), None)
    assert first is not None
    assert await keys.ensure_admin_key(uow_factory(), None) is None
    assert await keys.authenticate(uow_factory(), f"Bearer {first}") == ADMIN


async def test_missing_malformed_and_unknown_keys_have_distinct_reasons(uow_factory):
    assert await _reason(uow_factory, None) == "KEY_MISSING"
    assert await _reason(uow_factory, "Bearer ") == "KEY_MISSING"
    assert await _reason(uow_factory, "Bearer not-a-key") == "KEY_MALFORMED"
    assert await _reason(uow_factory, "Basic dXNlcjpwYXNz") == "KEY_MALFORMED"
    assert await _reason(uow_factory, f"Bearer {pak.generate().plaintext}") == "KEY_INVALID"


async def test_a_key_with_the_right_short_token_but_wrong_secret_is_invalid(uow_factory):
    admin_key = await keys.ensure_admin_key(uow_factory(), None)
    assert admin_key is not None
    short = pak.parse(admin_key).short_token
    forged = f"brokkr_{short}_{'A' * 43}"
    assert await _reason(uow_factory, forged) == "KEY_INVALID"


async def test_a_configured_admin_key_replaces_every_other(uow_factory):
    generated = await keys.ensure_admin_key(uow_factory(), None)
    configured = pak.generate().plaintext

    assert await keys.ensure_admin_key(uow_factory(), pak.hash_for_config(configured)) is None

    assert await keys.authenticate(uow_factory(), configured) == ADMIN
    assert await _reason(uow_factory, generated) == "KEY_INVALID"
    # A restart with the same setting keeps it; one after a rotation brings it back.
    assert await keys.ensure_admin_key(uow_factory(), pak.hash_for_config(configured)) is None
    rotated = await keys.rotate_admin_key(uow_factory(), ADMIN)
    assert await _reason(uow_factory, configured) == "KEY_INVALID"
    await keys.ensure_admin_key(uow_factory(), pak.hash_for_config(configured))
    assert await keys.authenticate(uow_factory(), configured) == ADMIN
    assert await _reason(uow_factory, rotated) == "KEY_INVALID"


async def test_a_malformed_configured_hash_is_refused(uow_factory):
    with pytest.raises(InvalidArgument) as raised:
        await keys.ensure_admin_key(uow_factory(), "not-a-hash")
    assert raised.value.field_violations[0].field == "auth.admin_key_hash"


async def test_rotating_the_admin_key_stops_the_old_one_at_once(uow_factory):
    old = await keys.ensure_admin_key(uow_factory(), None)
    new = await keys.rotate_admin_key(uow_factory(), ADMIN)
    assert await _reason(uow_factory, old) == "KEY_INVALID"
    assert await keys.authenticate(uow_factory(), new) == ADMIN


async def test_only_the_admin_rotates_the_admin_key(uow_factory, build: Builder):
    generator = await build.generator()
    with pytest.raises(PermissionDenied):
        await keys.rotate_admin_key(uow_factory(), as_generator(generator))


async def test_generator_and_agent_keys_name_their_owner(uow_factory):
    generator = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=None
    )
    agent = await agents.create_agent(
        uow_factory(), ADMIN, name="edge", cluster_name="east", labels={}, annotations={}, request_id=None
    )
    assert await keys.authenticate(uow_factory(), generator.key) == Principal(
        Role.GENERATOR, generator.resource.id, "ci"
    )
    assert await keys.authenticate(uow_factory(), agent.key) == Principal(
        Role.AGENT, agent.resource.id, "edge"
    )


async def test_a_generator_rotates_its_own_key_and_the_old_one_dies(uow_factory):
    created = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=None
    )
    me = await keys.authenticate(uow_factory(), created.key)
    new = await generators.rotate_generator_key(uow_factory(), me, created.resource.id)
    assert await _reason(uow_factory, created.key) == "KEY_INVALID"
    assert (await keys.authenticate(uow_factory(), new)).id == created.resource.id


async def test_deleting_an_agent_or_generator_revokes_its_key(uow_factory):
    generator = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=None
    )
    agent = await agents.create_agent(
        uow_factory(), ADMIN, name="edge", cluster_name="east", labels={}, annotations={}, request_id=None
    )
    await generators.delete_generator(uow_factory(), ADMIN, generator.resource.id)
    await agents.delete_agent(uow_factory(), ADMIN, agent.resource.id)
    assert await _reason(uow_factory, generator.key) == "KEY_INVALID"
    assert await _reason(uow_factory, agent.key) == "KEY_INVALID"


async def test_rotating_an_agent_key_invalidates_the_old_one(uow_factory):
    agent = await agents.create_agent(
        uow_factory(), ADMIN, name="edge", cluster_name="east", labels={}, annotations={}, request_id=None
    )
    new = await agents.rotate_agent_key(uow_factory(), ADMIN, agent.resource.id)
    assert await _reason(uow_factory, agent.key) == "KEY_INVALID"
    assert (await keys.authenticate(uow_factory(), new)).id == agent.resource.id


async def test_authenticating_a_key_reads_the_database_once_whoever_owns_it(uow_factory, database):
    """Every agent connect and every API call authenticates: the key and its owner come in one
    query, not one for the key and more for the owner."""
    generator = await generators.create_generator(
        uow_factory(), ADMIN, name="ci", description="", request_id=None
    )
    agent = await agents.create_agent(
        uow_factory(),
        ADMIN,
        name="edge",
        cluster_name="east",
        labels={"env": "prod"},
        annotations={"a": "b"},
        request_id=None,
    )
    statements: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:
        if not statement.lstrip().upper().startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            statements.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", count)
    try:
        for key in (generator.key, agent.key):
            statements.clear()
            await keys.authenticate(uow_factory(), key)
            assert len(statements) == 1, statements
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", count)
