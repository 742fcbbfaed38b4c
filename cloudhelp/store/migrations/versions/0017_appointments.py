"""appointments and campaigns: service hours, booked slots, campaigns and their rosters

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 12:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "service_hours",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("opens", sa.String(5), nullable=False),
        sa.Column("closes", sa.String(5), nullable=False),
        sa.Column("staff", sa.Integer(), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        sa.CheckConstraint("staff > 0", name="staff_positive"),
    )
    op.create_index("ix_service_hours_department_id", "service_hours", ["department_id"])
    op.create_index("ix_service_hours_station_id", "service_hours", ["station_id"])
    op.create_table(
        "service_hours_exceptions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("opens", sa.String(5), nullable=False),
        sa.Column("closes", sa.String(5), nullable=False),
        sa.Column("staff", sa.Integer(), nullable=False),
        sa.Column("note", sa.String(100), nullable=False),
        sa.CheckConstraint("staff >= 0", name="staff_not_negative"),
    )
    op.create_index(
        "ix_service_hours_exceptions_department_id", "service_hours_exceptions", ["department_id"]
    )
    op.create_table(
        "campaigns",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("street_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("item_ids", sa.JSON(), nullable=False),
        sa.Column("station_ids", sa.JSON(), nullable=False),
        sa.Column("starts_on", sa.Date(), nullable=False),
        sa.Column("ends_on", sa.Date(), nullable=False),
        sa.Column("created_by", sa.String(50), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("imported_at", sa.DateTime(), nullable=True),
        sa.Column("scheduled_at", sa.DateTime(), nullable=True),
    )
    op.create_table(
        "campaign_entries",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "campaign_id",
            sa.Integer(),
            sa.ForeignKey("campaigns.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("row", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("service_items.id"), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("boat_number", sa.String(40), nullable=False),
        sa.Column("licence_number", sa.String(40), nullable=False),
        sa.Column("preferences", sa.JSON(), nullable=False),
        sa.UniqueConstraint("campaign_id", "row"),
    )
    op.create_index("ix_campaign_entries_campaign_id", "campaign_entries", ["campaign_id"])
    op.create_table(
        "appointments",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("service_items.id"), nullable=False),
        sa.Column("department_id", sa.Integer(), sa.ForeignKey("departments.id"), nullable=False),
        sa.Column("station_id", sa.Integer(), sa.ForeignKey("stations.id"), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("starts_at", sa.DateTime(), nullable=False),
        sa.Column("ends_at", sa.DateTime(), nullable=False),
        sa.Column("name", sa.String(50), nullable=False),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("id_number", sa.String(18), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("booked_by", sa.String(50), nullable=False),
        sa.Column("booked_at", sa.DateTime(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.Column(
            "rebooked_from_id",
            sa.Integer(),
            sa.ForeignKey("appointments.id", name="fk_appointments_rebooked_from_id"),
            nullable=True,
        ),
        sa.Column(
            "campaign_entry_id",
            sa.Integer(),
            sa.ForeignKey("campaign_entries.id", name="fk_appointments_campaign_entry_id"),
            nullable=True,
        ),
        sa.Column("reminded_at", sa.DateTime(), nullable=True),
    )
    op.create_index("ix_appointments_item_id", "appointments", ["item_id"])
    op.create_index("ix_appointments_campaign_entry_id", "appointments", ["campaign_entry_id"])
    op.create_index("ix_appointments_slots", "appointments", ["department_id", "station_id", "day"])
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("appointment_id", sa.Integer(), nullable=True))
        batch_op.create_index("ix_tickets_appointment_id", ["appointment_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_tickets_appointment_id", "appointments", ["appointment_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_constraint("fk_tickets_appointment_id", type_="foreignkey")
        batch_op.drop_index("ix_tickets_appointment_id")
        batch_op.drop_column("appointment_id")
    op.drop_index("ix_appointments_slots", table_name="appointments")
    op.drop_index("ix_appointments_campaign_entry_id", table_name="appointments")
    op.drop_index("ix_appointments_item_id", table_name="appointments")
    op.drop_table("appointments")
    op.drop_index("ix_campaign_entries_campaign_id", table_name="campaign_entries")
    op.drop_table("campaign_entries")
    op.drop_table("campaigns")
    op.drop_index("ix_service_hours_exceptions_department_id", "service_hours_exceptions")
    op.drop_table("service_hours_exceptions")
    op.drop_index("ix_service_hours_station_id", table_name="service_hours")
    op.drop_index("ix_service_hours_department_id", table_name="service_hours")
    op.drop_table("service_hours")
