"""ORM tables. One schema for SQLite and PostgreSQL; changes go through Alembic migrations.

The base and column type are in base.py, the daily rollups in rollups.py and the audit trail in
audit_log.py; their names are importable from here too, so every table is registered whenever
this module is imported (Alembic's env.py imports it)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudhelp.core.clock import utcnow as utcnow
from cloudhelp.store.audit_log import AuditEvent as AuditEvent
from cloudhelp.store.audit_log import AuditHead as AuditHead
from cloudhelp.store.base import Base as Base
from cloudhelp.store.base import UTCDateTime as UTCDateTime
from cloudhelp.store.bookings import Appointment as Appointment
from cloudhelp.store.bookings import Campaign as Campaign
from cloudhelp.store.bookings import CampaignEntry as CampaignEntry
from cloudhelp.store.bookings import ServiceHours as ServiceHours
from cloudhelp.store.bookings import ServiceHoursException as ServiceHoursException
from cloudhelp.store.logistics_tables import LogisticsRun as LogisticsRun
from cloudhelp.store.logistics_tables import LogisticsRunItem as LogisticsRunItem
from cloudhelp.store.logistics_tables import TrackedItem as TrackedItem
from cloudhelp.store.logistics_tables import TrackedItemEvent as TrackedItemEvent
from cloudhelp.store.rollups import HISTOGRAM_EDGES as HISTOGRAM_EDGES
from cloudhelp.store.rollups import STAT_COUNTERS as STAT_COUNTERS
from cloudhelp.store.rollups import STAT_HISTOGRAMS as STAT_HISTOGRAMS
from cloudhelp.store.rollups import STAT_MAXIMA as STAT_MAXIMA
from cloudhelp.store.rollups import STAT_SUMS as STAT_SUMS
from cloudhelp.store.rollups import daily_stats as daily_stats

TIERS = ("community", "street", "district")
# The roles that sign in on the console (answer calls, see cases).
ROLES = ("staff", "supervisor", "admin")
SUPERVISOR_ROLES = ("supervisor", "admin")
# A station attendant (驿站工作人员): receives runs and hands items over at their own station only.
ATTENDANT_ROLE = "attendant"
ACCOUNT_ROLES = (*ROLES, ATTENDANT_ROLE)


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    # Queue settings per department (see docs/queue.md).
    ring_seconds: Mapped[int] = mapped_column(Integer, default=20, server_default="20")
    wrapup_seconds: Mapped[int] = mapped_column(Integer, default=60, server_default="60")
    max_missed_offers: Mapped[int] = mapped_column(Integer, default=2, server_default="2")


class Category(Base):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    letter: Mapped[str] = mapped_column(String(1), unique=True)
    name: Mapped[str] = mapped_column(String(100))


class ServiceItem(Base):
    __tablename__ = "service_items"
    __table_args__ = (
        CheckConstraint("promised_days <= statutory_days", name="promised_within_statutory"),
        CheckConstraint("promised_days > 0", name="promised_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    pinyin_initials: Mapped[str] = mapped_column(String(200), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"), index=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    statutory_days: Mapped[float] = mapped_column(Float)
    promised_days: Mapped[float] = mapped_column(Float)
    tiers: Mapped[list[str]] = mapped_column(JSON)
    cloud: Mapped[bool] = mapped_column(Boolean, default=True)
    # On the kiosks' home screen until ticket history says which items are asked for most.
    featured: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    description: Mapped[str] = mapped_column(Text, default="")

    department: Mapped[Department] = relationship(lazy="joined")
    category: Mapped[Category] = relationship(lazy="joined")
    materials: Mapped[list[Material]] = relationship(
        back_populates="item",
        order_by="Material.position",
        cascade="all, delete-orphan",
        lazy="selectin",
    )


class Material(Base):
    __tablename__ = "materials"
    __table_args__ = (UniqueConstraint("item_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    requirement: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(Text, default="")
    form: Mapped[str] = mapped_column(String(24))
    copies: Mapped[int] = mapped_column(Integer, default=1)
    notes: Mapped[str] = mapped_column(Text, default="")
    common_mistakes: Mapped[list[str]] = mapped_column(JSON, default=list)

    item: Mapped[ServiceItem] = relationship(back_populates="materials")


class Station(Base):
    __tablename__ = "stations"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    tier: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    address: Mapped[str] = mapped_column(String(200), default="")
    contact: Mapped[str] = mapped_column(String(50), default="")
    phone: Mapped[str] = mapped_column(String(30), default="")


class Kiosk(Base):
    __tablename__ = "kiosks"
    __table_args__ = (
        UniqueConstraint("enrol_code_hash", name="uq_kiosks_enrol_code_hash"),
        UniqueConstraint("credential_hash", name="uq_kiosks_credential_hash"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(100))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Enrolment: a one-time code (hashed) is exchanged once for a device credential (hashed).
    enrol_code_hash: Mapped[str | None] = mapped_column(String(64))
    enrol_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    credential_hash: Mapped[str | None] = mapped_column(String(64))
    enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    station: Mapped[Station] = relationship(lazy="joined")


class Staff(Base):
    __tablename__ = "staff"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    display_name: Mapped[str] = mapped_column(String(50))
    role: Mapped[str] = mapped_column(String(16), default="staff")
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    password_hash: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    station: Mapped[Station] = relationship(lazy="joined")
    skills: Mapped[list[StaffSkill]] = relationship(cascade="all, delete-orphan", lazy="selectin")


class StaffSkill(Base):
    """A department (all its items) or a single item that a staff member handles."""

    __tablename__ = "staff_skills"
    __table_args__ = (
        CheckConstraint("(department_id IS NULL) <> (item_id IS NULL)", name="department_xor_item"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))


class StaffLogin(Base):
    """A signed-in browser (or peer) of a staff member: the cookie's token, hashed."""

    __tablename__ = "staff_logins"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StaffPresence(Base):
    """A staff member's routing state; the database decides claims atomically."""

    __tablename__ = "staff_presence"

    staff_id: Mapped[int] = mapped_column(
        ForeignKey("staff.id", ondelete="CASCADE"), primary_key=True
    )
    # offline, available, ringing, in_call, wrapup or away
    state: Mapped[str] = mapped_column(String(16), default="offline")
    since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    idle_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    missed_offers: Mapped[int] = mapped_column(Integer, default=0)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    session_id: Mapped[str | None] = mapped_column(String(64))
    # When wrap-up closes by itself; set while in wrap-up, claimed once (domain.deadlines).
    wrapup_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)


class TicketCounter(Base):
    """The daily sequence of ticket numbers per category letter."""

    __tablename__ = "ticket_counters"

    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Ticket(Base):
    __tablename__ = "tickets"
    __table_args__ = (UniqueConstraint("day", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    number: Mapped[str] = mapped_column(String(8))
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64))
    # A correction session carries its case and prefers the staff member who pre-reviewed it.
    case_id: Mapped[int | None] = mapped_column(
        ForeignKey("cases.id", name="fk_tickets_case_id"), index=True
    )
    preferred_staff_id: Mapped[int | None] = mapped_column(
        ForeignKey("staff.id", name="fk_tickets_preferred_staff_id")
    )
    # Taken by checking in an appointment: served ahead of walk-ins of the same item
    # (domain.queue.service_order, docs/appointments.md).
    appointment_id: Mapped[int | None] = mapped_column(
        ForeignKey("appointments.id", name="fk_tickets_appointment_id"), index=True
    )
    # waiting, offered, connected, wrapup (open: domain.queue.OPEN_STATES); completed, cancelled
    # or abandoned
    status: Mapped[str] = mapped_column(String(16), default="waiting")
    # Bumped in the same UPDATE as every state change: snapshots of the ticket are ordered by
    # it, so neither the server nor a page ever goes back to an older state (docs/protocol.md).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    enqueued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    offered_to: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    offer_count: Mapped[int] = mapped_column(Integer, default=0)
    # When the ring times out (set while offered) and when the ticket is abandoned unless its
    # kiosk comes back (set while queued without a kiosk session); each claimed once by
    # whichever server process sees it due (domain.deadlines).
    ring_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    abandon_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    wrapup_done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    # The kiosk's pre-call network check, as the server judged it (docs/protocol.md, netcheck).
    netcheck: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    item: Mapped[ServiceItem] = relationship(lazy="joined")
    department: Mapped[Department] = relationship(lazy="joined")
    station: Mapped[Station] = relationship(lazy="joined")
    case: Mapped[Case | None] = relationship(lazy="joined", foreign_keys=[case_id])
    appointment: Mapped[Appointment | None] = relationship(
        lazy="joined", foreign_keys=[appointment_id]
    )


Index("ix_tickets_queue", Ticket.department_id, Ticket.status, Ticket.enqueued_at)
Index("ix_tickets_enqueued_at", Ticket.enqueued_at)


class TicketEvent(Base):
    """Every state change of a ticket, with its time: enqueued, each offer, connected, …"""

    __tablename__ = "ticket_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Call(Base):
    """One video session between a kiosk and a staff member, for one ticket."""

    __tablename__ = "calls"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    staff_id: Mapped[int] = mapped_column(ForeignKey("staff.id"))
    kiosk_id: Mapped[int] = mapped_column(ForeignKey("kiosks.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    end_reason: Mapped[str | None] = mapped_column(String(32))


class CallQuality(Base):
    """One side's media figures over one call (from its pages' ``call.stats``), for the reports."""

    __tablename__ = "call_quality"
    __table_args__ = (UniqueConstraint("call_id", "side"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(ForeignKey("calls.id", ondelete="CASCADE"))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    side: Mapped[str] = mapped_column(String(8))  # kiosk or staff
    samples: Mapped[int] = mapped_column(Integer)
    rtt_median_ms: Mapped[float | None] = mapped_column(Float)
    rtt_worst_ms: Mapped[float | None] = mapped_column(Float)
    loss_median: Mapped[float | None] = mapped_column(Float)
    loss_worst: Mapped[float | None] = mapped_column(Float)
    fps_median: Mapped[float | None] = mapped_column(Float)
    fps_worst: Mapped[float | None] = mapped_column(Float)  # the lowest
    freezes: Mapped[int] = mapped_column(Integer, default=0)
    poor_samples: Mapped[int] = mapped_column(Integer, default=0)
    relay: Mapped[bool] = mapped_column(Boolean, default=False)
    level: Mapped[str] = mapped_column(String(8))  # good, fair or poor (of the medians)

    # The figures the reports list for a side (netquality.report).
    JSON_NAMES: ClassVar[tuple[str, ...]] = (
        "call_id", "side", "samples", "rtt_median_ms", "rtt_worst_ms", "loss_median",
        "loss_worst", "fps_median", "fps_worst", "freezes", "poor_samples", "relay", "level",
    )  # fmt: skip


class TicketFile(Base):
    """A file sent during a call, stored on the server by content hash."""

    __tablename__ = "ticket_files"
    __table_args__ = (UniqueConstraint("ticket_id", "sha256", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    name: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sender: Mapped[str] = mapped_column(String(16))  # kiosk or staff
    uploaded_by: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Set when the retention purge removed the content (the row, name and SHA-256 stay).
    purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CaseCounter(Base):
    """The daily sequence of case numbers."""

    __tablename__ = "case_counters"

    day: Mapped[str] = mapped_column(String(8), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """One resident's matter for one service item (办件), across sessions."""

    __tablename__ = "cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("service_items.id"), index=True)
    station_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    applicant_name: Mapped[str] = mapped_column(String(50))
    applicant_phone: Mapped[str] = mapped_column(String(20), index=True)
    applicant_id_number: Mapped[str] = mapped_column(String(18))
    status: Mapped[str] = mapped_column(String(24), default="pre_review", index=True)
    rounds: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    concluded_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    not_accepted_reason: Mapped[str] = mapped_column(Text, default="")

    item: Mapped[ServiceItem] = relationship(lazy="joined")
    station: Mapped[Station] = relationship(lazy="joined")


class CaseEvent(Base):
    """Every state change of a case: from, to, who, when, why."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    from_state: Mapped[str | None] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    actor: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text, default="")


class MaterialCheck(Base):
    """One material's pre-review result in one round of a case (材料预审)."""

    __tablename__ = "material_checks"
    __table_args__ = (UniqueConstraint("case_id", "round", "material_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    material_id: Mapped[int] = mapped_column(ForeignKey("materials.id"))
    status: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    file_ids: Mapped[list[int]] = mapped_column(JSON, default=list)
    checked_by: Mapped[str] = mapped_column(String(50))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CorrectionNotice(Base):
    """The one-time correction notice (一次性告知书): every problem of a round, told at once."""

    __tablename__ = "correction_notices"
    __table_args__ = (UniqueConstraint("case_id", "round"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    round: Mapped[int] = mapped_column(Integer)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by: Mapped[str] = mapped_column(String(50))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    # The notice as a PDF in the file store, rendered once on first request (notice_store.py).
    pdf_sha256: Mapped[str | None] = mapped_column(String(64))


class Rating(Base):
    """The resident's rating of one session (好差评); not rating is recorded too (``outcome``)."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), unique=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    level: Mapped[int | None] = mapped_column(Integer)  # 5 非常满意 … 1 非常不满意; None: not rated
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    # rated; declined (the resident pressed 跳过); no_answer (the kiosk timed out unrated).
    outcome: Mapped[str] = mapped_column(String(12), default="rated", server_default="rated")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class FollowUp(Base):
    """A bad rating's follow-up (回访整改), assigned to a supervisor with a deadline."""

    __tablename__ = "follow_ups"

    id: Mapped[int] = mapped_column(primary_key=True)
    rating_id: Mapped[int] = mapped_column(ForeignKey("ratings.id"), unique=True)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"))
    due_date: Mapped[date] = mapped_column(Date)
    due_estimated: Mapped[bool] = mapped_column(Boolean, default=False)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(50))
    note: Mapped[str] = mapped_column(Text, default="")


class TimeoutWarning(Base):
    """A time-out warning (超时预警): raised when a condition holds, cleared when it stops."""

    __tablename__ = "timeout_warnings"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject: Mapped[str] = mapped_column(String(64))  # "ticket:12", "case:5", "follow_up:3"
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("staff.id"), index=True)
    threshold: Mapped[float] = mapped_column(Float)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    cleared_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    acked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acked_by: Mapped[str | None] = mapped_column(String(50))


class WarningThreshold(Base):
    """A threshold for one kind of warning: district-wide, per department or per item."""

    __tablename__ = "warning_thresholds"
    __table_args__ = (
        UniqueConstraint(
            "kind", "department_id", "item_id", name="uq_warning_thresholds_kind_scope"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"))
    item_id: Mapped[int | None] = mapped_column(ForeignKey("service_items.id"))
    value: Mapped[float] = mapped_column(Float)


class CalendarYear(Base):
    """A year of the official working-day calendar the district holds (its source and when)."""

    __tablename__ = "calendar_years"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    source: Mapped[str] = mapped_column(String(24))  # "chinesecalendar" or "import"
    loaded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    loaded_by: Mapped[str] = mapped_column(String(50))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CalendarDay(Base):
    """A day that differs from Monday–Friday: a holiday, or an adjusted working day (调休上班)."""

    __tablename__ = "calendar_days"
    __table_args__ = (CheckConstraint("kind IN ('holiday', 'workday')", name="kind"),)

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    year: Mapped[int] = mapped_column(ForeignKey("calendar_years.year"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    name: Mapped[str] = mapped_column(String(64), default="")
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_by: Mapped[str] = mapped_column(String(50))


class DueDateChange(Base):
    """A due date moved by a change of the calendar (a case's promised date or a follow-up's)."""

    __tablename__ = "due_date_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    subject: Mapped[str] = mapped_column(String(64))  # "case:5", "follow_up:3"
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    follow_up_id: Mapped[int | None] = mapped_column(ForeignKey("follow_ups.id"))
    reason: Mapped[str] = mapped_column(String(120))
    actor: Mapped[str] = mapped_column(String(50))
    old_due: Mapped[date | None] = mapped_column(Date)
    new_due: Mapped[date | None] = mapped_column(Date)
    old_estimated: Mapped[bool] = mapped_column(Boolean)
    new_estimated: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
