"""Events and the audit log: two append-only tables with integer ids that order them.

See `broker/db/tables.py` and docs/explanation/events.md for why the ids are integers and how
appends to `events` are kept in commit order.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)
SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _time(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        _time("time"),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("agent_id", ID, nullable=True),
        sa.Column("stack_id", ID, nullable=True),
        sa.Column("deployment_object_id", ID, nullable=True),
        sa.Column("template_id", ID, nullable=True),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_stack", "events", ["stack_id", "id"])
    op.create_index("ix_events_agent", "events", ["agent_id", "id"])
    op.create_index("ix_events_time", "events", ["time"])

    op.create_table(
        "audit_logs",
        sa.Column("id", SERIAL, primary_key=True, autoincrement=True),
        _time("time"),
        sa.Column("actor_role", sa.String(16), nullable=False),
        sa.Column("actor_id", ID, nullable=True),
        sa.Column("action", sa.String(128), nullable=False),
        sa.Column("resource", sa.Text(), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("peer", sa.Text(), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_logs"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_logs_time", "audit_logs", ["time"])
    op.create_index("ix_audit_logs_actor", "audit_logs", ["actor_id", "id"])
    op.create_index("ix_audit_logs_action", "audit_logs", ["action", "id"])


def downgrade() -> None:
    op.drop_table("audit_logs")
    op.drop_table("events")
