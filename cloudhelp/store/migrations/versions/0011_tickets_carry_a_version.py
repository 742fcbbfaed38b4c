"""tickets carry a version, bumped with every state change (snapshots are ordered by it)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 09:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("version")
