"""Diagnostics requests and their reports.

See `broker/db/tables.py` for why they are shaped this way.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "diagnostics",
        sa.Column("id", ID, nullable=False),
        sa.Column("agent_id", ID, nullable=False),
        sa.Column("stack_id", ID, nullable=False),
        sa.Column("log_tail_lines", sa.Integer(), nullable=False),
        sa.Column("max_log_bytes", sa.Integer(), nullable=False),
        sa.Column("include_previous_logs", sa.Boolean(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        _time("requested_at"),
        _time("sent_at", nullable=True),
        _time("completed_at", nullable=True),
        _time("expires_at"),
        sa.Column("error_code", sa.Integer(), nullable=True),
        sa.Column("error_reason", sa.String(128), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name="fk_diagnostics_agent_id_agents"),
        sa.ForeignKeyConstraint(["stack_id"], ["stacks.id"], name="fk_diagnostics_stack_id_stacks"),
        sa.PrimaryKeyConstraint("id", name="pk_diagnostics"),
    )
    op.create_index("ix_diagnostics_agent_state", "diagnostics", ["agent_id", "state"])
    op.create_index("ix_diagnostics_state_expires", "diagnostics", ["state", "expires_at"])
    op.create_index("ix_diagnostics_requested", "diagnostics", ["requested_at", "id"])


def downgrade() -> None:
    op.drop_table("diagnostics")
