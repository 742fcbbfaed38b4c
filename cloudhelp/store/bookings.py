"""Tables of appointments (预约) and campaigns (集中办理): service hours per department and
station, booked slots, campaigns and their roster entries (docs/appointments.md)."""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudhelp.core.clock import utcnow
from cloudhelp.store.base import Base, UTCDateTime

if TYPE_CHECKING:
    from cloudhelp.store.models import ServiceItem, Station


class ServiceHours(Base):
    """A weekday's hours at a station for a department's items, and how many staff serve them."""

    __tablename__ = "service_hours"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday_range"),
        CheckConstraint("staff > 0", name="staff_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 Monday … 6 Sunday
    opens: Mapped[str] = mapped_column(String(5))  # "09:00", local time
    closes: Mapped[str] = mapped_column(String(5))
    # A break inside the hours (午休), both or neither: no slot overlaps it.
    break_starts: Mapped[str | None] = mapped_column(String(5), default=None)
    break_ends: Mapped[str | None] = mapped_column(String(5), default=None)
    staff: Mapped[int] = mapped_column(Integer)


class ServiceHoursException(Base):
    """One date's hours that differ from the weekday's (``staff`` 0: closed that day)."""

    __tablename__ = "service_hours_exceptions"
    __table_args__ = (CheckConstraint("staff >= 0", name="staff_not_negative"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    day: Mapped[date] = mapped_column(Date)
    opens: Mapped[str] = mapped_column(String(5), default="09:00")
    closes: Mapped[str] = mapped_column(String(5), default="17:00")
    break_starts: Mapped[str | None] = mapped_column(String(5), default=None)
    break_ends: Mapped[str | None] = mapped_column(String(5), default=None)
    staff: Mapped[int] = mapped_column(Integer)
    note: Mapped[str] = mapped_column(String(100), default="")


class Appointment(Base):
    """A booked slot for one item at one station (预约), found again by its code."""

    __tablename__ = "appointments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(16), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    day: Mapped[date] = mapped_column(Date)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20))
    id_number: Mapped[str] = mapped_column(String(18), default="")
    # The ticket taken at check-in points here (tickets.appointment_id).
    # booked, checked_in, cancelled or rebooked (replaced by ``rebooked_to``); a booked one
    # whose check-in window has closed is a no-show (domain.appointments.status_at).
    status: Mapped[str] = mapped_column(String(16), default="booked")
    booked_by: Mapped[str] = mapped_column(String(50))  # "resident", a login or "campaign"
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rebooked_from_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", name="fk_appointments_rebooked_from_id")
    )
    campaign_entry_id: Mapped[int | None] = mapped_column(
        ForeignKey("campaign_entries.id", name="fk_appointments_campaign_entry_id"), index=True
    )
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    item: Mapped[ServiceItem] = relationship(lazy="joined")
    station: Mapped[Station] = relationship(lazy="joined")


Index("ix_appointments_slots", Appointment.department_id, Appointment.station_id, Appointment.day)


class Campaign(Base):
    """A planned drive (集中办理): items, a street and its stations, a date range."""

    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    street_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    item_ids: Mapped[list[int]] = mapped_column(JSON)
    station_ids: Mapped[list[int]] = mapped_column(JSON)
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    created_by: Mapped[str] = mapped_column(String(50))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CampaignEntry(Base):
    """One row of a campaign's roster (a boat and its owner) and the preferences stated."""

    __tablename__ = "campaign_entries"
    __table_args__ = (UniqueConstraint("campaign_id", "row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), index=True
    )
    row: Mapped[int] = mapped_column(Integer)  # the roster's row number (header is row 1)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"))
    name: Mapped[str] = mapped_column(String(50))
    phone: Mapped[str] = mapped_column(String(20))
    id_number: Mapped[str] = mapped_column(String(18))
    boat_number: Mapped[str] = mapped_column(String(40), default="")
    licence_number: Mapped[str] = mapped_column(String(40), default="")
    # {"station": id, "half": "am"|"pm", "not_before": "YYYY-MM-DD"}: what the roster stated.
    preferences: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
