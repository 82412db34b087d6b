"""The initial schema: generators, agents, stacks, deployment objects, targets, registrations, keys.

See `broker/db/tables.py` for why it is shaped this way. Partial unique indexes (`WHERE deleted_at
IS NULL`) make names unique among live rows only, on SQLite and PostgreSQL alike.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)
DIGEST = sa.String(64)
LABEL_KEY = sa.String(317)


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def _labels(name: str, owner: str) -> None:
    op.create_table(
        name,
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("key", LABEL_KEY, nullable=False),
        sa.Column("value", sa.String(63), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], [f"{owner}.id"], name=f"fk_{name}_owner_id_{owner}"),
        sa.PrimaryKeyConstraint("owner_id", "key", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_key_value", name, ["key", "value"])


def _annotations(name: str, owner: str) -> None:
    op.create_table(
        name,
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("key", LABEL_KEY, nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_digest", DIGEST, nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], [f"{owner}.id"], name=f"fk_{name}_owner_id_{owner}"),
        sa.PrimaryKeyConstraint("owner_id", "key", name=f"pk_{name}"),
    )
    op.create_index(f"ix_{name}_key_value_digest", name, ["key", "value_digest"])


def upgrade() -> None:
    op.create_table(
        "generators",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_generators"),
    )
    op.create_index("ix_generators_order", "generators", ["name", "id"])
    op.create_index(
        "ux_generators_live_name", "generators", ["name"], unique=True, **_where("deleted_at IS NULL")
    )

    op.create_table(
        "agents",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("cluster_name", sa.String(253), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("connection_state", sa.String(32), nullable=False),
        _time("last_heartbeat_at", nullable=True),
        sa.Column("kubernetes_reachable", sa.Boolean(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_agents"),
    )
    op.create_index("ix_agents_order", "agents", ["name", "cluster_name", "id"])
    op.create_index(
        "ux_agents_live_name_cluster",
        "agents",
        ["name", "cluster_name"],
        unique=True,
        **_where("deleted_at IS NULL"),
    )
    _labels("agent_labels", "agents")
    _annotations("agent_annotations", "agents")

    op.create_table(
        "stacks",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("generator_id", ID, nullable=True),
        sa.Column("latest_sequence_id", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["generator_id"], ["generators.id"], name="fk_stacks_generator_id_generators"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_stacks"),
    )
    op.create_index("ix_stacks_order", "stacks", ["name", "id"])
    op.create_index("ix_stacks_generator_id", "stacks", ["generator_id"])
    op.create_index("ux_stacks_live_name", "stacks", ["name"], unique=True, **_where("deleted_at IS NULL"))
    _labels("stack_labels", "stacks")
    _annotations("stack_annotations", "stacks")

    op.create_table(
        "deployment_objects",
        sa.Column("id", ID, nullable=False),
        sa.Column("stack_id", ID, nullable=False),
        sa.Column("sequence_id", sa.BigInteger(), nullable=False),
        sa.Column("yaml_content", sa.Text(), nullable=False),
        sa.Column("checksum", DIGEST, nullable=False),
        sa.Column("is_deletion_marker", sa.Boolean(), nullable=False),
        sa.Column("provenance", sa.JSON(), nullable=True),
        _time("created_at"),
        sa.ForeignKeyConstraint(["stack_id"], ["stacks.id"], name="fk_deployment_objects_stack_id_stacks"),
        sa.PrimaryKeyConstraint("id", name="pk_deployment_objects"),
        sa.UniqueConstraint("stack_id", "sequence_id", name="ux_deployment_objects_stack_sequence"),
    )
    op.create_table(
        "deployment_object_resources",
        sa.Column("deployment_object_id", ID, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("api_group", sa.String(253), nullable=False),
        sa.Column("version", sa.String(63), nullable=False),
        sa.Column("kind", sa.String(63), nullable=False),
        sa.Column("namespace", sa.String(63), nullable=False),
        sa.Column("name", sa.String(253), nullable=False),
        sa.Column("content_hash", DIGEST, nullable=False),
        sa.Column("manifest_json", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_object_id"],
            ["deployment_objects.id"],
            name="fk_deployment_object_resources_deployment_objects",
        ),
        sa.PrimaryKeyConstraint("deployment_object_id", "position", name="pk_deployment_object_resources"),
    )

    op.create_table(
        "targets",
        sa.Column("id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("stack_id", ID, nullable=False),
        _time("created_at"),
        _time("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_targets_agent_id_agents"),
        sa.ForeignKeyConstraint(["stack_id"], ["stacks.id"], name="fk_targets_stack_id_stacks"),
        sa.PrimaryKeyConstraint("id", name="pk_targets"),
    )
    op.create_index(
        "ux_targets_live", "targets", ["agent_id", "stack_id"], unique=True, **_where("deleted_at IS NULL")
    )
    op.create_index("ix_targets_stack", "targets", ["stack_id", "agent_id"])

    op.create_table(
        "registrations",
        sa.Column("id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("generator_id", ID, nullable=False),
        _time("created_at"),
        _time("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_registrations_agent_id_agents"),
        sa.ForeignKeyConstraint(
            ["generator_id"], ["generators.id"], name="fk_registrations_generator_id_generators"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_registrations"),
    )
    op.create_index(
        "ux_registrations_live",
        "registrations",
        ["agent_id", "generator_id"],
        unique=True,
        **_where("deleted_at IS NULL"),
    )
    op.create_index("ix_registrations_generator", "registrations", ["generator_id", "agent_id"])

    op.create_table(
        "api_keys",
        sa.Column("short_token", sa.String(32), nullable=False),
        sa.Column("long_hash", DIGEST, nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("principal_id", ID, nullable=True),
        _time("created_at"),
        _time("revoked_at", nullable=True),
        sa.PrimaryKeyConstraint("short_token", name="pk_api_keys"),
    )
    op.create_index(
        "ux_api_keys_active_principal",
        "api_keys",
        ["principal_id"],
        unique=True,
        **_where("revoked_at IS NULL"),
    )
    op.create_index(
        "ux_api_keys_active_admin",
        "api_keys",
        ["role"],
        unique=True,
        **_where("role = 'admin' AND revoked_at IS NULL"),
    )

    op.create_table(
        "idempotency_records",
        sa.Column("principal", sa.String(64), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("request_id", ID, nullable=False),
        sa.Column("request_fingerprint", DIGEST, nullable=False),
        sa.Column("resource_id", ID, nullable=False),
        _time("created_at"),
        sa.PrimaryKeyConstraint("principal", "method", "request_id", name="pk_idempotency_records"),
    )


def downgrade() -> None:
    for table in (
        "idempotency_records",
        "api_keys",
        "registrations",
        "targets",
        "deployment_object_resources",
        "deployment_objects",
        "stack_annotations",
        "stack_labels",
        "stacks",
        "agent_annotations",
        "agent_labels",
        "agents",
        "generators",
    ):
        op.drop_table(table)
