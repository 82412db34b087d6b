"""Templates: one row per template and one per immutable version.

See `broker/db/tables.py` for why they are shaped this way. Both tables are new, so existing rows
are untouched; deployment objects already had their `provenance` column.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(36)


def _time(name: str, *, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _where(condition: str) -> dict[str, sa.TextClause]:
    return {"sqlite_where": sa.text(condition), "postgresql_where": sa.text(condition)}


def upgrade() -> None:
    op.create_table(
        "templates",
        sa.Column("id", ID, nullable=False),
        sa.Column("name", sa.String(63), nullable=False),
        sa.Column("generator_id", ID, nullable=True),
        sa.Column("latest_version", sa.BigInteger(), nullable=False),
        _time("created_at"),
        _time("updated_at"),
        _time("deleted_at", nullable=True),
        sa.ForeignKeyConstraint(
            ["generator_id"], ["generators.id"], name="fk_templates_generator_id_generators"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_templates"),
    )
    op.create_index("ix_templates_order", "templates", ["name", "id"])
    op.create_index("ix_templates_generator_id", "templates", ["generator_id"])
    op.create_index(
        "ux_templates_live_owner_name",
        "templates",
        ["generator_id", "name"],
        unique=True,
        **_where("deleted_at IS NULL AND generator_id IS NOT NULL"),
    )
    op.create_index(
        "ux_templates_live_system_name",
        "templates",
        ["name"],
        unique=True,
        **_where("deleted_at IS NULL AND generator_id IS NULL"),
    )
    op.create_table(
        "template_versions",
        sa.Column("template_id", ID, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("parameters_schema", sa.JSON(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("annotations", sa.JSON(), nullable=False),
        _time("created_at"),
        sa.ForeignKeyConstraint(
            ["template_id"], ["templates.id"], name="fk_template_versions_template_id_templates"
        ),
        sa.PrimaryKeyConstraint("template_id", "version", name="pk_template_versions"),
    )


def downgrade() -> None:
    op.drop_table("template_versions")
    op.drop_table("templates")
