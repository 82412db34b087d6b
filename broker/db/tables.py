"""The relational schema, one SQLAlchemy Core table per stored thing, for SQLite and PostgreSQL alike.

Shape decisions:

* Ids are UUID strings made in Python, so both backends store the same text and a row's id is
  known before it is written.
* Times are `UtcDateTime`: timezone-aware UTC going in and coming out on both backends (SQLite
  keeps no offset, PostgreSQL uses `timestamptz`).
* Nothing is erased. Deleting sets `deleted_at` (`revoked_at` for keys), and the "unique" rules
  (stack name, generator name, agent name within a cluster, one live target or registration per
  pair, one active key per principal) are partial unique indexes over the live rows only, which
  both backends support, so a name is free again once its holder is deleted.
* Labels and annotations live in child tables with an index on (key, value), not in JSON columns.
  Targeting asks "which agents share a label with this stack" and back; with child tables that is
  an indexed join that touches only the matching rows, so it stays cheap at 10,000 agents, where
  JSON would mean loading every agent's labels into Python. Annotation values may be long (256 KiB
  per object), longer than a PostgreSQL B-tree entry may be, so their index holds the SHA-256 of
  the value instead of the value.
* A stack's `latest_sequence_id` is the counter for its deployment objects: incrementing it with
  `UPDATE ... RETURNING` takes the stack's row lock (a write transaction on SQLite), so concurrent
  writers take turns, and it points at the desired deployment object without a MAX() query.
* Deployment objects are immutable, keyed (stack_id, sequence_id); their parsed resources are
  stored beside them with the content hash agent sessions compute deltas from.
* An agent's connection (state, session, replica, peer, heartbeat) lives on its row and only agent
  sessions write it, so admin updates never overwrite a heartbeat and need no extra join to show it.
* `deployment_statuses` keeps, per agent x stack, only the newest of what the agent reported (acks,
  nacks, health), upserted in bulk; per-resource results are JSON, since they are only ever shown
  whole. What the agent *should* hold is not stored there: it follows from the stack and targeting
  at read time, so it can never go stale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.types import TypeDecorator

#: Deterministic constraint names on both backends (error mapping and migrations rely on them).
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

ID = 36  # a UUID in its 8-4-4-4-12 text form
DIGEST = 64  # a SHA-256 in lower-case hex
LABEL_KEY = 317  # "<DNS subdomain, 253>/<name, 63>"


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend; naive datetimes are refused."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: Brokkr stores timezone-aware UTC only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _live(column: str = "deleted_at") -> dict[str, Any]:
    """The WHERE clause of a partial index over live rows, for both backends."""
    condition = text(f"{column} IS NULL")
    return {"sqlite_where": condition, "postgresql_where": condition}


def _created() -> Column[datetime]:
    return Column("created_at", UtcDateTime(), nullable=False)


def _deleted() -> Column[datetime]:
    return Column("deleted_at", UtcDateTime(), nullable=True)


def _labels_table(name: str, owner: str) -> Table:
    """key=value labels of an agent or a stack; the (key, value) index serves targeting joins."""
    return Table(
        name,
        metadata,
        Column("owner_id", String(ID), ForeignKey(f"{owner}.id"), nullable=False),
        Column("key", String(LABEL_KEY), nullable=False),
        Column("value", String(63), nullable=False),
        PrimaryKeyConstraint("owner_id", "key"),
        Index(f"ix_{name}_key_value", "key", "value"),
    )


def _annotations_table(name: str, owner: str) -> Table:
    """Annotations of an agent or a stack; indexed by (key, SHA-256 of value), see the module docstring."""
    return Table(
        name,
        metadata,
        Column("owner_id", String(ID), ForeignKey(f"{owner}.id"), nullable=False),
        Column("key", String(LABEL_KEY), nullable=False),
        Column("value", Text(), nullable=False),
        Column("value_digest", String(DIGEST), nullable=False),
        PrimaryKeyConstraint("owner_id", "key"),
        Index(f"ix_{name}_key_value_digest", "key", "value_digest"),
    )


generators = Table(
    "generators",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("description", Text(), nullable=False),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    _deleted(),
    Index("ix_generators_order", "name", "id"),
    Index("ux_generators_live_name", "name", unique=True, **_live()),
)

agents = Table(
    "agents",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("cluster_name", String(253), nullable=False),
    Column("status", String(16), nullable=False),
    Column("connection_state", String(32), nullable=False),
    Column("last_heartbeat_at", UtcDateTime(), nullable=True),
    Column("kubernetes_reachable", Boolean(), nullable=False),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    _deleted(),
    # The newest session: which stream, on which replica, from where, since when.
    Column("session_id", String(ID), nullable=True),
    Column("replica", String(253), nullable=True),
    Column("peer", Text(), nullable=True),
    Column("agent_version", String(128), nullable=True),
    Column("connected_at", UtcDateTime(), nullable=True),
    Index("ix_agents_order", "name", "cluster_name", "id"),
    Index("ux_agents_live_name_cluster", "name", "cluster_name", unique=True, **_live()),
    Index("ix_agents_connection", "connection_state", "replica"),
)

agent_labels = _labels_table("agent_labels", "agents")
agent_annotations = _annotations_table("agent_annotations", "agents")

stacks = Table(
    "stacks",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("description", Text(), nullable=False),
    Column("generator_id", String(ID), ForeignKey("generators.id"), nullable=True),
    Column("latest_sequence_id", BigInteger(), nullable=False),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    _deleted(),
    Index("ix_stacks_order", "name", "id"),
    Index("ix_stacks_generator_id", "generator_id"),
    Index("ux_stacks_live_name", "name", unique=True, **_live()),
)

stack_labels = _labels_table("stack_labels", "stacks")
stack_annotations = _annotations_table("stack_annotations", "stacks")

deployment_objects = Table(
    "deployment_objects",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("stack_id", String(ID), ForeignKey("stacks.id"), nullable=False),
    Column("sequence_id", BigInteger(), nullable=False),
    Column("yaml_content", Text(), nullable=False),
    Column("checksum", String(DIGEST), nullable=False),
    Column("is_deletion_marker", Boolean(), nullable=False),
    Column("provenance", JSON(), nullable=True),
    _created(),
    UniqueConstraint("stack_id", "sequence_id", name="ux_deployment_objects_stack_sequence"),
)

deployment_object_resources = Table(
    "deployment_object_resources",
    metadata,
    Column(
        "deployment_object_id",
        String(ID),
        # The conventional name would pass PostgreSQL's 63-character limit.
        ForeignKey("deployment_objects.id", name="fk_deployment_object_resources_deployment_objects"),
        nullable=False,
    ),
    Column("position", Integer(), nullable=False),
    Column("api_group", String(253), nullable=False),
    Column("version", String(63), nullable=False),
    Column("kind", String(63), nullable=False),
    Column("namespace", String(63), nullable=False),
    Column("name", String(253), nullable=False),
    Column("content_hash", String(DIGEST), nullable=False),
    Column("manifest_json", Text(), nullable=False),
    PrimaryKeyConstraint("deployment_object_id", "position"),
)

targets = Table(
    "targets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("agent_id", String(ID), ForeignKey("agents.id"), nullable=False),
    Column("stack_id", String(ID), ForeignKey("stacks.id"), nullable=False),
    _created(),
    _deleted(),
    Index("ux_targets_live", "agent_id", "stack_id", unique=True, **_live()),
    Index("ix_targets_stack", "stack_id", "agent_id"),
)

registrations = Table(
    "registrations",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("agent_id", String(ID), ForeignKey("agents.id"), nullable=False),
    Column("generator_id", String(ID), ForeignKey("generators.id"), nullable=False),
    _created(),
    _deleted(),
    Index("ux_registrations_live", "agent_id", "generator_id", unique=True, **_live()),
    Index("ix_registrations_generator", "generator_id", "agent_id"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("short_token", String(32), primary_key=True),
    Column("long_hash", String(DIGEST), nullable=False),
    Column("role", String(16), nullable=False),
    Column("principal_id", String(ID), nullable=True),
    _created(),
    Column("revoked_at", UtcDateTime(), nullable=True),
    # One active key per agent or generator, and one active admin key.
    Index("ux_api_keys_active_principal", "principal_id", unique=True, **_live("revoked_at")),
    Index(
        "ux_api_keys_active_admin",
        "role",
        unique=True,
        sqlite_where=text("role = 'admin' AND revoked_at IS NULL"),
        postgresql_where=text("role = 'admin' AND revoked_at IS NULL"),
    ),
)

idempotency_records = Table(
    "idempotency_records",
    metadata,
    Column("principal", String(64), nullable=False),
    Column("method", String(64), nullable=False),
    Column("request_id", String(ID), nullable=False),
    Column("request_fingerprint", String(DIGEST), nullable=False),
    Column("resource_id", String(ID), nullable=False),
    _created(),
    PrimaryKeyConstraint("principal", "method", "request_id"),
)

deployment_statuses = Table(
    "deployment_statuses",
    metadata,
    Column("agent_id", String(ID), ForeignKey("agents.id"), nullable=False),
    Column("stack_id", String(ID), ForeignKey("stacks.id"), nullable=False),
    # The last ack or nack: APPLIED, FAILED, REMOVED; NULL before the first.
    Column("outcome", String(16), nullable=True),
    Column(
        "applied_deployment_object_id",
        String(ID),
        ForeignKey("deployment_objects.id", name="fk_deployment_statuses_applied"),
        nullable=True,
    ),
    Column(
        "failed_deployment_object_id",
        String(ID),
        ForeignKey("deployment_objects.id", name="fk_deployment_statuses_failed"),
        nullable=True,
    ),
    Column("error_code", String(32), nullable=False),
    Column("error_message", Text(), nullable=False),
    Column("resources", JSON(), nullable=False),
    # When the agent reported the stored outcome (or said what it holds); older reports lose.
    Column("reported_at", UtcDateTime(), nullable=True),
    Column("health", String(16), nullable=True),
    Column("health_resources", JSON(), nullable=False),
    Column("health_reported_at", UtcDateTime(), nullable=True),
    Column("updated_at", UtcDateTime(), nullable=False),
    PrimaryKeyConstraint("agent_id", "stack_id"),
    Index("ix_deployment_statuses_stack", "stack_id", "agent_id"),
)

# --- events and audit log (see docs/explanation/events.md) ---------------------------------------
#: An integer primary key that is the rowid on SQLite (only `INTEGER PRIMARY KEY` aliases it).
_SERIAL = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    # Ascending in commit order (appends are serialised, see broker/db/repositories/events.py): the
    # resume cursor of WatchEvents and the order of ListEvents.
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("time", UtcDateTime(), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor_id", String(ID), nullable=True),
    Column("agent_id", String(ID), nullable=True),
    Column("stack_id", String(ID), nullable=True),
    Column("deployment_object_id", String(ID), nullable=True),
    Column("template_id", String(ID), nullable=True),
    Column("labels", JSON(), nullable=False),
    Column("payload", JSON(), nullable=False),
    Index("ix_events_stack", "stack_id", "id"),
    Index("ix_events_agent", "agent_id", "id"),
    Index("ix_events_time", "time"),
    sqlite_autoincrement=True,
)

audit_logs = Table(
    "audit_logs",
    metadata,
    Column("id", _SERIAL, primary_key=True, autoincrement=True),
    Column("time", UtcDateTime(), nullable=False),
    Column("actor_role", String(16), nullable=False),
    Column("actor_id", String(ID), nullable=True),
    Column("action", String(128), nullable=False),
    Column("resource", Text(), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("peer", Text(), nullable=False),
    Column("request_id", String(64), nullable=False),
    Index("ix_audit_logs_time", "time"),
    Index("ix_audit_logs_actor", "actor_id", "id"),
    Index("ix_audit_logs_action", "action", "id"),
    sqlite_autoincrement=True,
)

# Templates: one row per template, one per version. A version's content, schema, labels and
# annotations never change once written, so provenance (template id + version) always names the
# exact text that was rendered. Template labels and annotations are JSON on the version row: unlike
# stack labels they are never joined on, only read with their version. `latest_version` counts the
# versions the way `stacks.latest_sequence_id` counts deployment objects (row lock, no MAX()).
# Names are unique per owner among live templates; system templates (no generator) get their own
# partial index, since NULLs never collide in a unique index.
templates = Table(
    "templates",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(63), nullable=False),
    Column("generator_id", String(ID), ForeignKey("generators.id"), nullable=True),
    Column("latest_version", BigInteger(), nullable=False),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    _deleted(),
    Index("ix_templates_order", "name", "id"),
    Index("ix_templates_generator_id", "generator_id"),
    Index(
        "ux_templates_live_owner_name",
        "generator_id",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL AND generator_id IS NOT NULL"),
        postgresql_where=text("deleted_at IS NULL AND generator_id IS NOT NULL"),
    ),
    Index(
        "ux_templates_live_system_name",
        "name",
        unique=True,
        sqlite_where=text("deleted_at IS NULL AND generator_id IS NULL"),
        postgresql_where=text("deleted_at IS NULL AND generator_id IS NULL"),
    ),
)

template_versions = Table(
    "template_versions",
    metadata,
    Column("template_id", String(ID), ForeignKey("templates.id"), nullable=False),
    Column("version", BigInteger(), nullable=False),
    Column("description", Text(), nullable=False),
    Column("content", Text(), nullable=False),
    Column("parameters_schema", JSON(), nullable=False),
    Column("labels", JSON(), nullable=False),
    Column("annotations", JSON(), nullable=False),
    _created(),
    PrimaryKeyConstraint("template_id", "version"),
)

# --- webhooks (see broker/domain/webhooks_records.py) ----------------------------------------------
# Subscriptions keep URL, auth header and signing secret sealed (encrypted), never in clear; the
# filter is JSON, since it is only ever read whole, by the outbox. Deliveries are the outbox: one row
# per event x subscription, claimed by the workers of every replica. A claimed row is IN_FLIGHT with
# `next_attempt_at` moved to the end of its lease, so one index, (state, next_attempt_at), finds both
# due rows and rows whose worker died; `claim_token` tells a late worker its claim was taken over.
webhook_subscriptions = Table(
    "webhook_subscriptions",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("url_sealed", Text(), nullable=False),
    Column("url_redacted", Text(), nullable=False),
    Column("auth_header_sealed", Text(), nullable=True),
    Column("secret_sealed", Text(), nullable=False),
    Column("event_types", JSON(), nullable=False),
    Column("stack_ids", JSON(), nullable=False),
    Column("agent_ids", JSON(), nullable=False),
    Column("label_selector", Text(), nullable=False),
    Column("enabled", Boolean(), nullable=False),
    Column("max_attempts", Integer(), nullable=False),
    Column("timeout_ms", Integer(), nullable=False),
    Column("owner_role", String(16), nullable=False),
    Column("owner_id", String(ID), nullable=True),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    _deleted(),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("subscription_id", String(ID), ForeignKey("webhook_subscriptions.id"), nullable=False),
    Column("event_id", String(64), nullable=False),
    Column("event_type", String(64), nullable=False),
    Column("body", Text(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("next_attempt_at", UtcDateTime(), nullable=False),
    Column("last_status_code", Integer(), nullable=True),
    Column("last_error", Text(), nullable=False),
    Column("claimed_by", String(253), nullable=True),
    Column("claim_token", String(ID), nullable=True),
    _created(),
    Column("updated_at", UtcDateTime(), nullable=False),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_subscription", "subscription_id", "created_at", "id"),
)

webhook_delivery_attempts = Table(
    "webhook_delivery_attempts",
    metadata,
    Column(
        "delivery_id",
        String(ID),
        ForeignKey("webhook_deliveries.id", name="fk_webhook_delivery_attempts_deliveries"),
        nullable=False,
    ),
    Column("number", Integer(), nullable=False),
    Column("started_at", UtcDateTime(), nullable=False),
    Column("duration_ms", Integer(), nullable=False),
    Column("status_code", Integer(), nullable=True),
    Column("error", Text(), nullable=False),
    Column("outcome", String(16), nullable=False),
    PrimaryKeyConstraint("delivery_id", "number"),
)

# --- diagnostics (see broker/domain/diagnostics.py) ------------------------------------------------
# One row per request; the report is JSON since it is only ever shown whole. Sessions look up the
# open requests of one agent (agent_id, state); the sweep finds overdue and erasable rows by
# (state, expires_at); lists go newest first, optionally per agent or stack.
diagnostics = Table(
    "diagnostics",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("agent_id", String(ID), ForeignKey("agents.id"), nullable=False),
    Column("stack_id", String(ID), ForeignKey("stacks.id"), nullable=False),
    Column("log_tail_lines", Integer(), nullable=False),
    Column("max_log_bytes", Integer(), nullable=False),
    Column("include_previous_logs", Boolean(), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requested_at", UtcDateTime(), nullable=False),
    Column("sent_at", UtcDateTime(), nullable=True),
    Column("completed_at", UtcDateTime(), nullable=True),
    Column("expires_at", UtcDateTime(), nullable=False),
    Column("error_code", Integer(), nullable=True),
    Column("error_reason", String(128), nullable=True),
    Column("error_message", Text(), nullable=True),
    Column("report", JSON(), nullable=True),
    Index("ix_diagnostics_agent_state", "agent_id", "state"),
    Index("ix_diagnostics_state_expires", "state", "expires_at"),
    Index("ix_diagnostics_requested", "requested_at", "id"),
)
