"""daily rollups and time-out warnings

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 17:05:11.699758
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "daily_stats",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("week", sa.Date(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("dimension", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("final", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(), nullable=False),
        sa.Column("tickets", sa.Integer(), nullable=False),
        sa.Column("answered", sa.Integer(), nullable=False),
        sa.Column("abandoned", sa.Integer(), nullable=False),
        sa.Column("short_abandons", sa.Integer(), nullable=False),
        sa.Column("within_service_level", sa.Integer(), nullable=False),
        sa.Column("wait_n", sa.Integer(), nullable=False),
        sa.Column("handling_n", sa.Integer(), nullable=False),
        sa.Column("ratings", sa.Integer(), nullable=False),
        sa.Column("bad_ratings", sa.Integer(), nullable=False),
        sa.Column("cases_opened", sa.Integer(), nullable=False),
        sa.Column("cases_concluded", sa.Integer(), nullable=False),
        sa.Column("cases_passed", sa.Integer(), nullable=False),
        sa.Column("correction_rounds", sa.Integer(), nullable=False),
        sa.Column("first_pass", sa.Integer(), nullable=False),
        sa.Column("wait_h0", sa.Integer(), nullable=False),
        sa.Column("wait_h1", sa.Integer(), nullable=False),
        sa.Column("wait_h2", sa.Integer(), nullable=False),
        sa.Column("wait_h3", sa.Integer(), nullable=False),
        sa.Column("wait_h4", sa.Integer(), nullable=False),
        sa.Column("wait_h5", sa.Integer(), nullable=False),
        sa.Column("wait_h6", sa.Integer(), nullable=False),
        sa.Column("wait_h7", sa.Integer(), nullable=False),
        sa.Column("wait_h8", sa.Integer(), nullable=False),
        sa.Column("wait_h9", sa.Integer(), nullable=False),
        sa.Column("wait_h10", sa.Integer(), nullable=False),
        sa.Column("wait_h11", sa.Integer(), nullable=False),
        sa.Column("wait_h12", sa.Integer(), nullable=False),
        sa.Column("wait_h13", sa.Integer(), nullable=False),
        sa.Column("wait_h14", sa.Integer(), nullable=False),
        sa.Column("wait_h15", sa.Integer(), nullable=False),
        sa.Column("wait_h16", sa.Integer(), nullable=False),
        sa.Column("wait_h17", sa.Integer(), nullable=False),
        sa.Column("wait_h18", sa.Integer(), nullable=False),
        sa.Column("wait_h19", sa.Integer(), nullable=False),
        sa.Column("wait_h20", sa.Integer(), nullable=False),
        sa.Column("wait_h21", sa.Integer(), nullable=False),
        sa.Column("wait_h22", sa.Integer(), nullable=False),
        sa.Column("wait_h23", sa.Integer(), nullable=False),
        sa.Column("wait_h24", sa.Integer(), nullable=False),
        sa.Column("wait_h25", sa.Integer(), nullable=False),
        sa.Column("handling_h0", sa.Integer(), nullable=False),
        sa.Column("handling_h1", sa.Integer(), nullable=False),
        sa.Column("handling_h2", sa.Integer(), nullable=False),
        sa.Column("handling_h3", sa.Integer(), nullable=False),
        sa.Column("handling_h4", sa.Integer(), nullable=False),
        sa.Column("handling_h5", sa.Integer(), nullable=False),
        sa.Column("handling_h6", sa.Integer(), nullable=False),
        sa.Column("handling_h7", sa.Integer(), nullable=False),
        sa.Column("handling_h8", sa.Integer(), nullable=False),
        sa.Column("handling_h9", sa.Integer(), nullable=False),
        sa.Column("handling_h10", sa.Integer(), nullable=False),
        sa.Column("handling_h11", sa.Integer(), nullable=False),
        sa.Column("handling_h12", sa.Integer(), nullable=False),
        sa.Column("handling_h13", sa.Integer(), nullable=False),
        sa.Column("handling_h14", sa.Integer(), nullable=False),
        sa.Column("handling_h15", sa.Integer(), nullable=False),
        sa.Column("handling_h16", sa.Integer(), nullable=False),
        sa.Column("handling_h17", sa.Integer(), nullable=False),
        sa.Column("handling_h18", sa.Integer(), nullable=False),
        sa.Column("handling_h19", sa.Integer(), nullable=False),
        sa.Column("handling_h20", sa.Integer(), nullable=False),
        sa.Column("handling_h21", sa.Integer(), nullable=False),
        sa.Column("handling_h22", sa.Integer(), nullable=False),
        sa.Column("handling_h23", sa.Integer(), nullable=False),
        sa.Column("handling_h24", sa.Integer(), nullable=False),
        sa.Column("handling_h25", sa.Integer(), nullable=False),
        sa.Column("wait_sum", sa.Float(), nullable=False),
        sa.Column("handling_sum", sa.Float(), nullable=False),
        sa.Column("wait_max", sa.Float(), nullable=False),
        sa.Column("handling_max", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dimension", "day", "key", name="uq_daily_stats_dimension_day_key"),
    )
    op.create_table(
        "timeout_warnings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("station_id", sa.Integer(), nullable=True),
        sa.Column("staff_id", sa.Integer(), nullable=True),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("cleared_at", sa.DateTime(), nullable=True),
        sa.Column("acked_at", sa.DateTime(), nullable=True),
        sa.Column("acked_by", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["service_items.id"],
        ),
        sa.ForeignKeyConstraint(
            ["staff_id"],
            ["staff.id"],
        ),
        sa.ForeignKeyConstraint(
            ["station_id"],
            ["stations.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("timeout_warnings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_timeout_warnings_cleared_at"), ["cleared_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_timeout_warnings_raised_at"), ["raised_at"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_timeout_warnings_staff_id"), ["staff_id"], unique=False
        )

    op.create_table(
        "warning_thresholds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
        ),
        sa.ForeignKeyConstraint(
            ["item_id"],
            ["service_items.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "kind", "department_id", "item_id", name="uq_warning_thresholds_kind_scope"
        ),
    )
    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_events_at"), ["at"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cases_concluded_at"), ["concluded_at"], unique=False)

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.create_index("ix_tickets_enqueued_at", ["enqueued_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_enqueued_at")

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cases_concluded_at"))

    with op.batch_alter_table("case_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_events_at"))

    op.drop_table("warning_thresholds")
    with op.batch_alter_table("timeout_warnings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_timeout_warnings_staff_id"))
        batch_op.drop_index(batch_op.f("ix_timeout_warnings_raised_at"))
        batch_op.drop_index(batch_op.f("ix_timeout_warnings_cleared_at"))

    op.drop_table("timeout_warnings")
    op.drop_table("daily_stats")
