"""deadlines kept with their rows: a ring's time-out and an abandon after grace on the ticket,
a wrap-up's end on the staff member's presence (claimed once by any server process)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 07:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("ring_deadline", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("abandon_deadline", sa.DateTime(), nullable=True))
        batch.create_index("ix_tickets_ring_deadline", ["ring_deadline"])
        batch.create_index("ix_tickets_abandon_deadline", ["abandon_deadline"])
    with op.batch_alter_table("staff_presence") as batch:
        batch.add_column(sa.Column("wrapup_deadline", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("staff_presence") as batch:
        batch.drop_column("wrapup_deadline")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_index("ix_tickets_abandon_deadline")
        batch.drop_index("ix_tickets_ring_deadline")
        batch.drop_column("abandon_deadline")
        batch.drop_column("ring_deadline")
