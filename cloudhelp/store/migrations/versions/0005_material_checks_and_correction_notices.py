"""material checks and correction notices

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "correction_notices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("issued_at", sa.DateTime(), nullable=False),
        sa.Column("issued_by", sa.String(length=50), nullable=False),
        sa.Column("items", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "round"),
    )
    with op.batch_alter_table("correction_notices", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_correction_notices_case_id"), ["case_id"], unique=False
        )

    op.create_table(
        "material_checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("round", sa.Integer(), nullable=False),
        sa.Column("material_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("file_ids", sa.JSON(), nullable=False),
        sa.Column("checked_by", sa.String(length=50), nullable=False),
        sa.Column("checked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(
            ["material_id"],
            ["materials.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("case_id", "round", "material_id"),
    )
    with op.batch_alter_table("material_checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_material_checks_case_id"), ["case_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("material_checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_material_checks_case_id"))

    op.drop_table("material_checks")
    with op.batch_alter_table("correction_notices", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_correction_notices_case_id"))

    op.drop_table("correction_notices")
