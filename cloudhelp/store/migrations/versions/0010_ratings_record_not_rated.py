"""ratings record whether the resident rated, declined or did not answer

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 09:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.add_column(
            sa.Column("outcome", sa.String(length=12), nullable=False, server_default="rated")
        )
    # Before this column a skip and a walk-away were both an empty level: call them no answer.
    op.execute("UPDATE ratings SET outcome = 'no_answer' WHERE level IS NULL")


def downgrade() -> None:
    with op.batch_alter_table("ratings") as batch:
        batch.drop_column("outcome")
