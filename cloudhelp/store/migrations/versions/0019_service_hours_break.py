"""service hours with a break (午休): the hall's staff are not at their desks 12:00–13:30, so
no slot is booked then

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 15:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

TABLES = ("service_hours", "service_hours_exceptions")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("break_starts", sa.String(5), nullable=True))
            batch.add_column(sa.Column("break_ends", sa.String(5), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.drop_column("break_ends")
            batch.drop_column("break_starts")
