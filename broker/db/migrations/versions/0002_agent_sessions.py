"""Agent sessions: each agent's connection on its row, and the deployment status per agent x stack.

See `broker/db/tables.py` for why they are shaped this way. Adding nullable columns is a plain
ALTER TABLE on both backends, so existing agents keep their rows untouched (no session yet).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)
_SESSION_COLUMNS = ("session_id", "replica", "peer", "agent_version", "connected_at")


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column("agents", sa.Column("session_id", ID, nullable=True))
    op.add_column("agents", sa.Column("replica", sa.String(253), nullable=True))
    op.add_column("agents", sa.Column("peer", sa.Text(), nullable=True))
    op.add_column("agents", sa.Column("agent_version", sa.String(128), nullable=True))
    op.add_column("agents", _time("connected_at", nullable=True))
    op.create_index("ix_agents_connection", "agents", ["connection_state", "replica"])

    op.create_table(
        "deployment_statuses",
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("stack_id", ID, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("applied_deployment_object_id", ID, nullable=True),
        sa.Column("failed_deployment_object_id", ID, nullable=True),
        sa.Column("error_code", sa.String(32), nullable=False),
        sa.Column("error_message", sa.Text(), nullable=False),
        sa.Column("resources", sa.JSON(), nullable=False),
        _time("reported_at", nullable=True),
        sa.Column("health", sa.String(16), nullable=True),
        sa.Column("health_resources", sa.JSON(), nullable=False),
        _time("health_reported_at", nullable=True),
        _time("updated_at"),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_deployment_statuses_agent_id_agents"),
        sa.ForeignKeyConstraint(["stack_id"], ["stacks.id"], name="fk_deployment_statuses_stack_id_stacks"),
        sa.ForeignKeyConstraint(
            ["applied_deployment_object_id"], ["deployment_objects.id"], name="fk_deployment_statuses_applied"
        ),
        sa.ForeignKeyConstraint(
            ["failed_deployment_object_id"], ["deployment_objects.id"], name="fk_deployment_statuses_failed"
        ),
        sa.PrimaryKeyConstraint("agent_id", "stack_id", name="pk_deployment_statuses"),
    )
    op.create_index("ix_deployment_statuses_stack", "deployment_statuses", ["stack_id", "agent_id"])


def downgrade() -> None:
    op.drop_table("deployment_statuses")
    op.drop_index("ix_agents_connection", table_name="agents")
    for column in reversed(_SESSION_COLUMNS):
        op.drop_column("agents", column)
