"""tickets keep the kiosk's pre-call network check; calls keep their media figures per side

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 10:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("netcheck", sa.JSON(), nullable=True))
    op.create_table(
        "call_quality",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "call_id", sa.Integer(), sa.ForeignKey("calls.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("ticket_id", sa.Integer(), sa.ForeignKey("tickets.id"), nullable=False),
        sa.Column("side", sa.String(8), nullable=False),
        sa.Column("samples", sa.Integer(), nullable=False),
        sa.Column("rtt_median_ms", sa.Float(), nullable=True),
        sa.Column("rtt_worst_ms", sa.Float(), nullable=True),
        sa.Column("loss_median", sa.Float(), nullable=True),
        sa.Column("loss_worst", sa.Float(), nullable=True),
        sa.Column("fps_median", sa.Float(), nullable=True),
        sa.Column("fps_worst", sa.Float(), nullable=True),
        sa.Column("freezes", sa.Integer(), nullable=False),
        sa.Column("poor_samples", sa.Integer(), nullable=False),
        sa.Column("relay", sa.Boolean(), nullable=False),
        sa.Column("level", sa.String(8), nullable=False),
        sa.UniqueConstraint("call_id", "side"),
    )
    op.create_index("ix_call_quality_ticket_id", "call_quality", ["ticket_id"])


def downgrade() -> None:
    op.drop_index("ix_call_quality_ticket_id", table_name="call_quality")
    op.drop_table("call_quality")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("netcheck")
