"""audit trail: an append-only, hash-chained log of who did what, and the chain's head;
files sent in calls record when their content was purged under the retention policy

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_kind", sa.String(16), nullable=False),
        sa.Column("actor_id", sa.Integer(), nullable=True),
        sa.Column("actor_name", sa.String(128), nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
        sa.Column("action", sa.String(48), nullable=False),
        sa.Column("subject_kind", sa.String(24), nullable=False, server_default=""),
        sa.Column("subject", sa.String(128), nullable=False, server_default=""),
        sa.Column("case_number", sa.String(32), nullable=True),
        sa.Column("detail", sa.Text(), nullable=False, server_default="{}"),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor", "audit_events", ["actor_kind", "actor_id"])
    op.create_index("ix_audit_events_case_number", "audit_events", ["case_number"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    with op.batch_alter_table("ticket_files") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(), nullable=True))
    op.execute("INSERT INTO audit_head (id, seq, row_hash) VALUES (1, 0, '" + "0" * 64 + "')")


def downgrade() -> None:
    with op.batch_alter_table("ticket_files") as batch:
        batch.drop_column("purged_at")
    op.drop_table("audit_head")
    op.drop_index("ix_audit_events_case_number", table_name="audit_events")
    op.drop_index("ix_audit_events_actor", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
