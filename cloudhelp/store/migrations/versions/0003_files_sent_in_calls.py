"""files sent in calls

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ticket_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sender", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("ticket_id", "sha256", "name"),
    )
    with op.batch_alter_table("ticket_files", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_ticket_files_sha256"), ["sha256"], unique=False)
        batch_op.create_index(batch_op.f("ix_ticket_files_ticket_id"), ["ticket_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ticket_files", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_ticket_files_ticket_id"))
        batch_op.drop_index(batch_op.f("ix_ticket_files_sha256"))

    op.drop_table("ticket_files")
