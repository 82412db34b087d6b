"""Agents on both backends: status on creation, uniqueness within a cluster, updates, deletion."""

from __future__ import annotations

import pytest

from broker.domain.changes import AgentChanged, EventsAppended, KeyRevoked
from broker.domain.model import ADMIN, AgentStatus, ConnectionState, Role
from broker.services import agents
from brokkr_common.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from tests.integration.services.builders import Builder, RowCounter


async def test_new_agents_are_inactive_unless_created_active(uow_factory, build: Builder):
    quiet = await agents.create_agent(
        uow_factory(), ADMIN, name="quiet", cluster_name="c", labels={}, annotations={}, request_id=None
    )
    busy = await build.agent("busy", active=True)
    assert quiet.resource.status is AgentStatus.INACTIVE and busy.status is AgentStatus.ACTIVE
    read = await agents.get_agent(uow_factory(), ADMIN, quiet.resource.id)
    assert read == quiet.resource
    assert (read.connection_state, read.last_heartbeat_at, read.kubernetes_reachable) == (
        ConnectionState.NEVER_CONNECTED,
        None,
        False,
    )


async def test_an_agent_name_is_unique_within_its_cluster_among_live_agents(uow_factory, build: Builder):
    first = await build.agent("edge", cluster_name="east")
    await build.agent("edge", cluster_name="west")
    with pytest.raises(AlreadyExists) as raised:
        await build.agent("edge", cluster_name="east")
    assert raised.value.reason == "AGENT_ALREADY_EXISTS"
    await agents.delete_agent(uow_factory(), ADMIN, first.id)
    await build.agent("edge", cluster_name="east")


async def test_invalid_agents_are_refused_whole_and_nothing_is_written(uow_factory, count_rows: RowCounter):
    before = await count_rows()
    with pytest.raises(InvalidArgument) as raised:
        await agents.create_agent(
            uow_factory(),
            ADMIN,
            name="Edge",
            cluster_name="-bad-",
            labels={"k": "bad value!"},
            annotations={"no/good/key": "v"},
            request_id=None,
        )
    assert {v.field.split("[")[0] for v in raised.value.field_violations} == {
        "agent.name",
        "agent.cluster_name",
        "agent.labels",
        "agent.annotations",
    }
    assert await count_rows() == before


async def test_activation_and_label_changes_are_stored_and_announced(database, build: Builder):
    published = []

    async def on_commit(changes):
        published.extend(changes)

    agent = await build.agent(active=False, labels={"env": "dev"})
    updated = await agents.update_agent(
        database.uow_factory(on_commit)(),
        ADMIN,
        agent.id,
        {"status": AgentStatus.ACTIVE, "labels": {"env": "prod"}, "annotations": {"note": "hi"}},
    )
    read = await agents.get_agent(database.uow_factory()(), ADMIN, agent.id)
    assert read == updated and read.status is AgentStatus.ACTIVE
    assert (dict(read.labels), dict(read.annotations)) == ({"env": "prod"}, {"note": "hi"})
    assert published == [EventsAppended(), AgentChanged(agent.id)]  # agent.activated, then the change


async def test_a_bad_status_is_a_field_violation(uow_factory, build: Builder):
    agent = await build.agent()
    with pytest.raises(InvalidArgument) as raised:
        await agents.update_agent(uow_factory(), ADMIN, agent.id, {"status": "SLEEPING"})
    assert raised.value.field_violations[0].field == "agent.status"


async def test_deleting_an_agent_announces_it_and_its_revoked_key(database, build: Builder):
    published = []

    async def on_commit(changes):
        published.extend(changes)

    agent = await build.agent()
    deleted = await agents.delete_agent(database.uow_factory(on_commit)(), ADMIN, agent.id)
    assert deleted.deleted_at is not None
    assert published == [EventsAppended(), AgentChanged(agent.id), KeyRevoked(Role.AGENT, agent.id)]
    with pytest.raises(FailedPrecondition) as raised:
        await agents.update_agent(database.uow_factory()(), ADMIN, agent.id, {"labels": {}})
    assert raised.value.reason == "AGENT_DELETED"


async def test_lists_filter_by_label_selector_and_hide_deleted_agents(uow_factory, build: Builder):
    await build.agent("a", labels={"env": "prod"})
    await build.agent("b", labels={"env": "dev"})
    gone = await build.agent("c", labels={"env": "prod"})
    await agents.delete_agent(uow_factory(), ADMIN, gone.id)

    prod = await agents.list_agents(
        uow_factory(), ADMIN, page_size=0, page_token="", label_selector="env=prod"
    )
    not_dev = await agents.list_agents(
        uow_factory(), ADMIN, page_size=0, page_token="", label_selector="env!=dev", show_deleted=True
    )
    assert [a.name for a in prod.items] == ["a"]
    assert [a.name for a in not_dev.items] == ["a", "c"]
