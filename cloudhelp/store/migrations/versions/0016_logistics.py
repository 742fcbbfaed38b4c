"""document logistics: tracked items, their events, runs and their manifests

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def _at(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "logistics_runs",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(12), nullable=False, unique=True),
        sa.Column("from_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("to_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        _at("created_at", False),
        sa.Column("created_by", sa.String(50), nullable=False),
        _at("dispatched_at"),
        sa.Column("dispatched_by", sa.String(50), nullable=True),
        _at("received_at"),
        sa.Column("received_by", sa.String(50), nullable=True),
        sa.Column("missing", sa.JSON(), nullable=False),
        sa.Column("extra", sa.JSON(), nullable=False),
    )
    op.create_index("ix_logistics_runs_from_id", "logistics_runs", ["from_id"])
    op.create_index("ix_logistics_runs_to_id", "logistics_runs", ["to_id"])
    op.create_index("ix_logistics_runs_status", "logistics_runs", ["status"])
    op.create_table(
        "tracked_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(12), nullable=False, unique=True),
        sa.Column("case_id", sa.Integer(), sa.ForeignKey("cases.id"), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("origin_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("destination_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("at_station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("logistics_runs.id"), nullable=True),
        sa.Column("pickup_code", sa.String(6), nullable=False),
        _at("created_at", False),
        sa.Column("created_by", sa.String(50), nullable=False),
        _at("ready_at"),
        _at("finished_at"),
        sa.Column("exception", sa.String(16), nullable=True),
        sa.Column("exception_reason", sa.Text(), nullable=False),
        sa.Column("responsible", sa.String(50), nullable=True),
        _at("exception_at"),
        sa.Column("signature_sha256", sa.String(64), nullable=True),
        sa.Column("picked_up_by", sa.String(50), nullable=False),
    )
    for column in ("case_id", "status", "destination_id", "at_station_id", "created_at",
                   "finished_at"):  # fmt: skip
        op.create_index(f"ix_tracked_items_{column}", "tracked_items", [column])
    op.create_table(
        "tracked_item_events",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "item_id",
            sa.Integer(),
            sa.ForeignKey("tracked_items.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _at("at", False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=True),
        sa.Column("run_id", sa.Integer(), sa.ForeignKey("logistics_runs.id"), nullable=True),
        sa.Column("actor", sa.String(50), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_tracked_item_events_item_id", "tracked_item_events", ["item_id"])
    op.create_index("ix_tracked_item_events_at", "tracked_item_events", ["at"])
    op.create_table(
        "logistics_run_items",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "run_id",
            sa.Integer(),
            sa.ForeignKey("logistics_runs.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("tracked_items.id"), nullable=False),
        sa.Column("received", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.UniqueConstraint("run_id", "item_id"),
    )
    op.create_index("ix_logistics_run_items_item_id", "logistics_run_items", ["item_id"])


def downgrade() -> None:
    op.drop_table("logistics_run_items")
    op.drop_table("tracked_item_events")
    op.drop_table("tracked_items")
    op.drop_table("logistics_runs")
