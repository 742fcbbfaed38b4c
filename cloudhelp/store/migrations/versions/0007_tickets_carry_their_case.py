"""tickets carry their case

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("case_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("preferred_staff_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_tickets_case_id"), ["case_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_tickets_preferred_staff_id", "staff", ["preferred_staff_id"], ["id"]
        )
        batch_op.create_foreign_key("fk_tickets_case_id", "cases", ["case_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tickets_case_id", type_="foreignkey")
        batch_op.drop_constraint("fk_tickets_preferred_staff_id", type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_tickets_case_id"))
        batch_op.drop_column("preferred_staff_id")
        batch_op.drop_column("case_id")
