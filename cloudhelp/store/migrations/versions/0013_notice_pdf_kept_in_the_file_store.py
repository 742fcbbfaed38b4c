"""a correction notice's PDF is kept in the file store, rendered once

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 14:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("correction_notices") as batch:
        batch.add_column(sa.Column("pdf_sha256", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("correction_notices") as batch:
        batch.drop_column("pdf_sha256")
