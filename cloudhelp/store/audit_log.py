"""The audit trail's tables (全程留痕); cloudhelp/domain/audit.py appends and verifies."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cloudhelp.store.base import Base, UTCDateTime


class AuditEvent(Base):
    """One row of the append-only audit trail (全程留痕): who did what, when, from where, to
    what. ``row_hash`` is the SHA-256 of the row's canonical content and ``prev_hash`` (the
    previous row's ``row_hash``): see cloudhelp/domain/audit.py."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    actor_kind: Mapped[str] = mapped_column(String(16))  # staff, kiosk, cli, system, anonymous
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str] = mapped_column(String(128), default="")
    address: Mapped[str] = mapped_column(String(64), default="")
    action: Mapped[str] = mapped_column(String(48))
    # case, file, kiosk, account, department, threshold, calendar or backup
    subject_kind: Mapped[str] = mapped_column(String(24), default="")
    subject: Mapped[str] = mapped_column(String(128), default="")
    case_number: Mapped[str | None] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text, default="{}")  # canonical JSON, hashed as stored
    prev_hash: Mapped[str] = mapped_column(String(64))
    row_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row (id 1) naming the chain's last row: appends lock it to serialise, and
    ``audit verify`` compares it with the last row (a removed tail shows)."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(Integer)
    row_hash: Mapped[str] = mapped_column(String(64))
