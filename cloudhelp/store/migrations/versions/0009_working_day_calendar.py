"""working-day calendar in the database, seeded from chinesecalendar; due-date changes

Revision ID: 0009
Revises: 0008
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    years = op.create_table(
        "calendar_years",
        sa.Column("year", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.String(length=24), nullable=False),
        sa.Column("loaded_at", sa.DateTime(), nullable=False),
        sa.Column("loaded_by", sa.String(length=50), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("year", name=op.f("pk_calendar_years")),
    )
    days = op.create_table(
        "calendar_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("changed_at", sa.DateTime(), nullable=False),
        sa.Column("changed_by", sa.String(length=50), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_days_kind")),
        sa.ForeignKeyConstraint(
            ["year"], ["calendar_years.year"], name=op.f("fk_calendar_days_year_calendar_years")
        ),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_calendar_days")),
    )
    op.create_index(op.f("ix_calendar_days_year"), "calendar_days", ["year"])
    op.create_table(
        "due_date_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("follow_up_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=120), nullable=False),
        sa.Column("actor", sa.String(length=50), nullable=False),
        sa.Column("old_due", sa.Date(), nullable=True),
        sa.Column("new_due", sa.Date(), nullable=True),
        sa.Column("old_estimated", sa.Boolean(), nullable=False),
        sa.Column("new_estimated", sa.Boolean(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_due_date_changes_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["follow_up_id"],
            ["follow_ups.id"],
            name=op.f("fk_due_date_changes_follow_up_id_follow_ups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_due_date_changes")),
    )
    op.create_index(op.f("ix_due_date_changes_case_id"), "due_date_changes", ["case_id"])
    op.create_index(op.f("ix_due_date_changes_at"), "due_date_changes", ["at"])
    _seed(years, days)


def _seed(years: sa.Table, days: sa.Table) -> None:
    """The years the installed chinesecalendar knows, as it knows them (a snapshot: later
    changes go through ``cloudhelp calendar``)."""
    from cloudhelp.core.workdays import package_entries

    now = datetime.now(UTC).replace(tzinfo=None)
    entries = package_entries()
    known = sorted({e.day.year for e in entries})
    op.bulk_insert(
        years,
        [{"year": y, "source": "chinesecalendar", "loaded_at": now, "loaded_by": "migration",
          "changed_at": now} for y in known],
    )  # fmt: skip
    op.bulk_insert(
        days,
        [{"day": e.day, "year": e.day.year, "kind": e.kind, "name": e.name, "changed_at": now,
          "changed_by": "chinesecalendar"} for e in entries],
    )  # fmt: skip


def downgrade() -> None:
    op.drop_index(op.f("ix_due_date_changes_at"), table_name="due_date_changes")
    op.drop_index(op.f("ix_due_date_changes_case_id"), table_name="due_date_changes")
    op.drop_table("due_date_changes")
    op.drop_index(op.f("ix_calendar_days_year"), table_name="calendar_days")
    op.drop_table("calendar_days")
    op.drop_table("calendar_years")
