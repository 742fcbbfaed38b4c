"""The audit trail (全程留痕): an append-only, hash-chained log of who did what, when, from where.

Each row holds ``prev_hash`` (the previous row's ``row_hash``; 64 zeros before the first row)
and ``row_hash`` = SHA-256 of the row's canonical content (see ``canonical``), which includes
``prev_hash``. Rows are numbered 1, 2, 3 … (``seq``) without gaps; the single ``audit_head`` row
holds the last number and hash. An append first updates the head row: on PostgreSQL that row
lock serialises appends across server processes until the transaction commits; on SQLite the
update takes the database's write lock (and ``Database.write`` serialises writers in-process).
Appends go in the same transaction as the change they record, so a change is never committed
without its row, nor a row without its change.

``verify`` walks the chain and names the first row that was altered, removed or inserted.
"""

from __future__ import annotations

import hashlib
import json
import os
import pwd
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.core.clock import day_start, utcnow
from cloudhelp.store.audit_log import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
# What is recorded (each has a catalog text audit.action.<code> for the page).
ACTIONS = (
    "auth.sign_in", "auth.sign_in_failed", "auth.sign_out", "account.changed",
    "account.password_set",
    "case.opened", "case.transition", "case.material_marked", "case.verdict",
    "case.pii_revealed", "notice.issued",
    "case.looked_up", "case.items_looked_up", "case.lookup_throttled",
    "file.downloaded", "file.purged",
    "kiosk.enrol_code_issued", "kiosk.enrolled", "kiosk.revoked",
    "warning.acknowledged", "follow_up.closed",
    "setting.department", "setting.warning_threshold", "setting.calendar",
    "setting.capacity", "campaign.changed", "appointment.booked_for",
    "appointment.reminders_exported",
    "backup.created", "backup.restored",
    "logistics.item", "logistics.bundled", "logistics.pickup_refused", "logistics.run_opened",
    "logistics.run_dispatched", "logistics.run_received",
)  # fmt: skip
PAGE_ROWS = 1000  # rows read at a time by verify

# The address of the HTTP request being handled (set by ``request_address``), so that code deep
# in a transaction (cases.transition) records where the change came from.
_request_address: ContextVar[str] = ContextVar("audit_request_address", default="")
# True while `cloudhelp demo` loads its data (demo_load): those rows say so in their detail.
_demo_load: ContextVar[bool] = ContextVar("audit_demo_load", default=False)


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff member, a kiosk, someone at the command line, the server itself, or
    an unknown person (a failed sign-in names the account tried)."""

    kind: str  # staff, kiosk, cli, system, anonymous
    name: str
    id: int | None = None
    address: str = ""


SYSTEM = Actor("system", "cloudhelp")


def staff_actor(staff: Any, address: str = "") -> Actor:
    return Actor("staff", staff.username, staff.id, address)


def kiosk_actor(kiosk: Any, address: str = "") -> Actor:
    return Actor("kiosk", kiosk.code, kiosk.id, address)


def cli_actor(name: str | None = None) -> Actor:
    """The operator at the command line: the given name, else the operating-system user."""
    if name:
        return Actor("cli", name, None, "local")
    try:
        user = os.getlogin()
    except OSError:  # no controlling terminal (cron, systemd, a script): the account's name
        user = os.environ.get("USER", "") or _account_name(os.getuid())
    return Actor("cli", user, None, "local")


def _account_name(uid: int) -> str:
    """The operating-system account's name (``root``), or its number if it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


@contextmanager
def request_address(address: str) -> Iterator[None]:
    """Audit appends made inside name ``address`` (the web request's; see
    cloudhelp.http.forwarded.remember_address)."""
    token = _request_address.set(address)
    try:
        yield
    finally:
        _request_address.reset(token)


@contextmanager
def demo_load() -> Iterator[None]:
    """Audit appends made inside were made by `cloudhelp demo` writing its made-up history:
    their detail carries ``demo: true`` (the audit page marks them), as their time is the
    moment of loading, not the moment the history shows."""
    token = _demo_load.set(True)
    try:
        yield
    finally:
        _demo_load.reset(token)


def _timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_detail(detail: dict[str, Any]) -> str:
    return json.dumps(
        detail, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str
    )


def canonical(row: AuditEvent) -> bytes:
    """The bytes a row's hash is taken over: its fields (and ``prev_hash``) as sorted JSON."""
    content = {
        "seq": row.seq,
        "at": _timestamp(row.at),
        "actor_kind": row.actor_kind,
        "actor_id": row.actor_id,
        "actor_name": row.actor_name,
        "address": row.address,
        "action": row.action,
        "subject_kind": row.subject_kind,
        "subject": row.subject,
        "case_number": row.case_number,
        "detail": row.detail,
        "prev_hash": row.prev_hash,
    }
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def row_hash(row: AuditEvent) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()


async def append(
    session: AsyncSession,
    actor: Actor,
    action: str,
    *,
    subject_kind: str = "",
    subject: str = "",
    case_number: str | None = None,
    at: datetime | None = None,
    **detail: Any,
) -> AuditEvent:
    """Append one row in the caller's transaction (commit comes with the change it records)."""
    head = (
        await session.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(seq=AuditHead.seq + 1)
            .returning(AuditHead.seq, AuditHead.row_hash)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if head is None:  # the migration creates it; if someone deleted it, rebuild it from the rows
        last = await session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
        seq, prev = (last.seq + 1, last.row_hash) if last else (1, GENESIS_HASH)
        session.add(AuditHead(id=1, seq=seq, row_hash=prev))
        await session.flush()
    else:
        seq, prev = head
    moment = (at or utcnow()).astimezone(UTC)
    if _demo_load.get():
        detail["demo"] = True
    event = AuditEvent(
        seq=seq,
        at=moment,
        actor_kind=actor.kind,
        actor_id=actor.id,
        actor_name=actor.name[:128],
        address=(actor.address or _request_address.get())[:64],
        action=action,
        subject_kind=subject_kind,
        subject=str(subject)[:128],
        case_number=case_number,
        detail=canonical_detail(detail),
        prev_hash=prev,
    )
    event.row_hash = row_hash(event)
    session.add(event)
    await session.flush()
    await session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(row_hash=event.row_hash)
        .execution_options(synchronize_session=False)
    )
    return event


# ------------------------------------------------------------------------------ verification


@dataclass(frozen=True)
class Problem:
    """The first place the chain does not hold: ``kind`` is altered, removed or inserted."""

    seq: int
    kind: str
    message: str


@dataclass(frozen=True)
class Verdict:
    rows: int
    head_seq: int
    head_hash: str
    problem: Problem | None


async def _all_rows(session: AsyncSession) -> AsyncIterator[AuditEvent]:
    last = 0
    while True:
        page = (
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.seq > last)
                .order_by(AuditEvent.seq)
                .limit(PAGE_ROWS)
            )
        ).all()
        for row in page:
            yield row
        if len(page) < PAGE_ROWS:
            return
        last = page[-1].seq


async def verify(session: AsyncSession) -> Verdict:
    """Walk the chain from the first row and report the first row altered, removed or inserted.

    - a gap in the numbers: removed; fewer rows than the head names: removed at the end;
    - a row whose ``prev_hash`` is not the previous row's hash while the row after it links
      straight to that previous row, or the row links to the one two back: inserted (a row
      slipped in with the later rows renumbered);
    - any other broken link: the previous row was rewritten with a new hash (altered), or rows
      between them were removed and the rest renumbered; both are named;
    - a row whose content no longer gives its ``row_hash``: altered;
    - rows beyond the head (read after the walk, so rows appended meanwhile are covered):
      inserted.
    """
    rows, window, problem = await _walk(session)
    head = await session.get(AuditHead, 1, populate_existing=True)
    head_seq, head_hash = (head.seq, head.row_hash) if head else (0, GENESIS_HASH)
    if problem is None:
        problem = await _against_head(session, window, head_seq, head_hash)
    return Verdict(rows, head_seq, head_hash, problem)


async def _walk(session: AsyncSession) -> tuple[int, list[AuditEvent], Problem | None]:
    """Read the chain in order up to its first problem: the rows read, the last two rows that
    held, and the problem (None when every row held)."""
    rows = 0
    window: list[AuditEvent] = []  # the last two rows that held
    pending: AuditEvent | None = None  # a row with a broken link, judged once the next is read
    async for row in _all_rows(session):
        rows += 1
        if pending is not None:
            return rows, window, _judge_link(window, pending, row)
        expected = window[-1].seq + 1 if window else 1
        if row.seq != expected:
            missing = f"row {expected}" if row.seq == expected + 1 else (
                f"rows {expected}–{row.seq - 1}")  # fmt: skip
            return rows, window, Problem(expected, "removed", f"{missing} removed (row "
                                         f"{row.seq} follows row {expected - 1})")  # fmt: skip
        if row.prev_hash != (window[-1].row_hash if window else GENESIS_HASH):
            if not window:
                problem = Problem(row.seq, "inserted", f"row {row.seq} does not start the chain")
                return rows, window, problem
            pending = row
            continue
        if row_hash(row) != row.row_hash:
            return rows, window, Problem(row.seq, "altered", f"row {row.seq} was altered: its "
                                         "content no longer gives its hash")  # fmt: skip
        window = [*window[-1:], row]
    return rows, window, _judge_link(window, pending, None) if pending is not None else None


def _judge_link(window: list[AuditEvent], row: AuditEvent, after: AuditEvent | None) -> Problem:
    """Name what a broken link means, from the row after it (None: it was the last row)."""
    previous = window[-1]
    before = window[-2].row_hash if len(window) > 1 else GENESIS_HASH
    if after is not None and after.prev_hash == previous.row_hash:
        return Problem(row.seq, "inserted", f"row {row.seq} was inserted: it does not link "
                       f"to row {previous.seq}, and row {after.seq} links past it")  # fmt: skip
    if row.prev_hash == before:
        return Problem(previous.seq, "inserted", f"row {previous.seq} was inserted: the row "
                       f"after it links to the row before it")  # fmt: skip
    return Problem(previous.seq, "altered", f"row {previous.seq} was altered (rewritten with "
                   f"a new hash), or rows after it were removed: the next row does not link "
                   "to it")  # fmt: skip


async def _against_head(
    session: AsyncSession, window: list[AuditEvent], head_seq: int, head_hash: str
) -> Problem | None:
    """Compare the last row that held with the row the chain's head names (read after the
    walk, so rows appended meanwhile are covered)."""
    last_seq = window[-1].seq if window else 0
    last_hash = window[-1].row_hash if window else GENESIS_HASH
    if last_seq > head_seq:
        return Problem(head_seq + 1, "inserted", f"row {head_seq + 1} was inserted after the "
                       f"last row the chain's head names ({head_seq})")  # fmt: skip
    if last_seq < head_seq:
        appended = await session.scalar(
            select(AuditEvent.seq).where(AuditEvent.seq == last_seq + 1)
        )
        if appended is None:
            return Problem(last_seq + 1, "removed", f"rows {last_seq + 1}–{head_seq} removed "
                           f"from the end (the chain's head names row {head_seq})")  # fmt: skip
        return None
    if last_hash != head_hash:
        return Problem(last_seq, "altered", f"row {last_seq} was altered: it is not the row "
                       "the chain's head names")  # fmt: skip
    return None


# ------------------------------------------------------------------------------ reading


def event_json(row: AuditEvent) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "at": row.at.isoformat(),
        "actor": {"kind": row.actor_kind, "id": row.actor_id, "name": row.actor_name},
        "address": row.address,
        "action": row.action,
        "subject": {"kind": row.subject_kind, "id": row.subject},
        "case": row.case_number,
        "detail": json.loads(row.detail or "{}"),
        "prev_hash": row.prev_hash,
        "row_hash": row.row_hash,
    }


async def search(
    session: AsyncSession,
    *,
    person: str | None = None,
    case_number: str | None = None,
    first: date | None = None,
    last: date | None = None,
    action: str | None = None,
    before: int | None = None,
    limit: int = 200,
) -> list[AuditEvent]:
    """Rows newest first: by person (login or kiosk code), case number, local days, action;
    ``before`` pages back from a row number."""
    stmt = select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)
    if person:
        stmt = stmt.where(AuditEvent.actor_name == person)
    if case_number:
        stmt = stmt.where(
            or_(AuditEvent.case_number == case_number, AuditEvent.subject == case_number)
        )
    if first:
        stmt = stmt.where(AuditEvent.at >= day_start(first))
    if last:
        stmt = stmt.where(AuditEvent.at < day_start(last + timedelta(days=1)))
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    if before:
        stmt = stmt.where(AuditEvent.seq < before)
    return list((await session.scalars(stmt)).all())
