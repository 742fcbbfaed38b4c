"""Tables of the document logistics (物流流转): tracked items, their events, runs and manifests.

The rules (states, allowed moves, who may scan what) are in cloudhelp/domain/logistics/."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cloudhelp.core.clock import utcnow
from cloudhelp.store.base import Base, UTCDateTime


class TrackedItem(Base):
    """A paper thing tied to a case that travels between the tiers (originals, a certificate)."""

    __tablename__ = "tracked_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)  # 12 digits, the last a check
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # originals_in, originals_back, certificate
    description: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), index=True)
    origin_id: Mapped[int] = mapped_column(ForeignKey("stations.id"))
    destination_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    # Where it lies now (None while in a run on the road) and the run carrying or last carrying it.
    at_station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"), index=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_runs.id"))
    pickup_code: Mapped[str] = mapped_column(String(6))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    created_by: Mapped[str] = mapped_column(String(50))
    ready_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The open exception (lost, damaged, wrong_station, not_collected) sending it back to the hall.
    exception: Mapped[str | None] = mapped_column(String(16))
    exception_reason: Mapped[str] = mapped_column(Text, default="")
    responsible: Mapped[str | None] = mapped_column(String(50))
    exception_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The applicant's handwritten signature at pickup (a PNG in the file store).
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    picked_up_by: Mapped[str] = mapped_column(String(50), default="")

    case: Mapped[Any] = relationship("Case", lazy="joined")
    origin: Mapped[Any] = relationship("Station", foreign_keys=[origin_id], lazy="joined")
    destination: Mapped[Any] = relationship("Station", foreign_keys=[destination_id], lazy="joined")
    at_station: Mapped[Any] = relationship("Station", foreign_keys=[at_station_id], lazy="joined")


class TrackedItemEvent(Base):
    """One scan or change of a tracked item: from, to, where, which run, who, why."""

    __tablename__ = "tracked_item_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("tracked_items.id", ondelete="CASCADE"), index=True
    )
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    kind: Mapped[str] = mapped_column(String(24))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    station_id: Mapped[int | None] = mapped_column(ForeignKey("stations.id"))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("logistics_runs.id"))
    actor: Mapped[str] = mapped_column(String(50))
    reason: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class LogisticsRun(Base):
    """A bundle of items carried from one station to the next tier up or down (one hop)."""

    __tablename__ = "logistics_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(12), unique=True)
    from_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    to_id: Mapped[int] = mapped_column(ForeignKey("stations.id"), index=True)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open, dispatched, received
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(50))
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_by: Mapped[str | None] = mapped_column(String(50))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_by: Mapped[str | None] = mapped_column(String(50))
    # At receipt: manifest codes not scanned, and codes scanned that the manifest does not hold.
    missing: Mapped[list[str]] = mapped_column(JSON, default=list)
    extra: Mapped[list[str]] = mapped_column(JSON, default=list)

    origin: Mapped[Any] = relationship("Station", foreign_keys=[from_id], lazy="joined")
    destination: Mapped[Any] = relationship("Station", foreign_keys=[to_id], lazy="joined")


class LogisticsRunItem(Base):
    """An item on a run's manifest, and whether it was scanned at receipt."""

    __tablename__ = "logistics_run_items"
    __table_args__ = (UniqueConstraint("run_id", "item_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("logistics_runs.id", ondelete="CASCADE"))
    item_id: Mapped[int] = mapped_column(ForeignKey("tracked_items.id"), index=True)
    received: Mapped[bool] = mapped_column(Boolean, default=False)
    position: Mapped[int] = mapped_column(Integer)


Index("ix_logistics_runs_status", LogisticsRun.status)
