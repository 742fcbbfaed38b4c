"""service items the catalog features on the kiosks' home screen

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_items") as batch:
        batch.add_column(
            sa.Column("featured", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("service_items") as batch:
        batch.drop_column("featured")
