"""The call centre: tickets, routing and calls on top of the signaling hub.

The hub carries sessions and relays media negotiation; this module decides who talks to whom.
Every change is written to the database (cloudhelp.queue) before it is announced.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import Counter
from collections.abc import Awaitable
from datetime import datetime
from typing import Annotated, Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import select, update

from cloudhelp.core import signed
from cloudhelp.core.inputs import RowId
from cloudhelp.core.logs import log_event
from cloudhelp.domain import accounts, metrics, outcomes, prereview, queue, ratings, timeouts
from cloudhelp.store.db import Database
from cloudhelp.store.models import (
    SUPERVISOR_ROLES,
    Case,
    Department,
    Kiosk,
    ServiceItem,
    Staff,
    StaffPresence,
    StaffSkill,
    Ticket,
    TicketEvent,
    utcnow,
)
from cloudhelp.views import board, warning_labels
from signaling.errors import CLOSE_REPLACED, CLOSE_REVOKED, SignalingError
from signaling.hub import Handler, Hub, HubSettings, Principal, Session, drain
from signaling.messages import Message

STAFF_COOKIE = "cloudhelp_session"
REVOCATION_CHECK_SECONDS = 3.0
# A resident may call back on a case waiting for corrections, or one whose pre-review a dropped
# call left unfinished.
CORRECTION_STATES = ("correction_needed", "pre_review")
PUSH_COALESCE_SECONDS = 0.05
BOARD_COALESCE_SECONDS = 1.0  # the board is pushed at most once a second
BOARD_REFRESH_SECONDS = 10.0  # and at least this often while someone watches
CASE_WARNING_CHECK_SECONDS = 60.0  # case and follow-up deadlines move by the day
QUEUE_LIST_LIMIT = 50
# What a staff member's session is for (hello.auth.purpose): the console that takes calls, or
# the supervisors' board. One person may hold one of each at once.
CONSOLE = "console"
STAFF_PURPOSES = (CONSOLE, "board")
OUTCOMES = ("resolved", "needs_correction", "referred", "no_show", "other")


# ---------------------------------------------------------------------------- messages

Code = Annotated[str, Field(min_length=1, max_length=32)]


class TakeTicket(Message):
    """A ticket for an item, or for a correction session of a case (by its number, with the
    grant the kiosk's case lookup gave: docs/protocol.md)."""

    type: Literal["ticket.take"]
    item: Code | None = None
    case: Annotated[str, Field(min_length=1, max_length=32)] | None = None
    grant: Annotated[str, Field(max_length=64)] | None = None


class CancelTicket(Message):
    type: Literal["ticket.cancel"]


class Hangup(Message):
    type: Literal["call.hangup"]
    # Why, when it is not a person's choice: the page's media could not recover.
    reason: Literal["media_failed"] | None = None


class StaffStatus(Message):
    type: Literal["staff.status"]
    status: Literal["available", "away"]


class OfferReply(Message):
    type: Literal["ring.accept", "ring.decline"]
    ticket: RowId


class PickTicket(Message):
    type: Literal["ticket.pick"]
    ticket: RowId


class WrapupDone(Message):
    type: Literal["wrapup.done"]
    outcome: Literal["resolved", "needs_correction", "referred", "no_show", "other"] | None = None
    note: Annotated[str, Field(max_length=1000)] = ""


class SubmitRating(Message):
    """The resident's rating of the session that just ended; ``level`` null: not rated.

    ``outcome`` says why there is no level (``declined``: 跳过; ``no_answer``: the kiosk went home
    by itself); it defaults to ``rated`` with a level and ``declined`` without.
    """

    type: Literal["rating.submit"]
    ticket: RowId
    level: Annotated[int, Field(ge=1, le=5)] | None
    reasons: Annotated[list[Annotated[str, Field(max_length=20)]], Field(max_length=10)] = Field(
        default_factory=list
    )
    outcome: Literal["rated", "declined", "no_answer"] | None = None


class TransferTicket(Message):
    type: Literal["ticket.transfer"]
    department: Code


class WatchBoard(Message):
    type: Literal["board.watch"]


class AckWarning(Message):
    type: Literal["warning.ack"]
    warning: RowId


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _console_only(handler: Handler) -> Handler:
    """A staff message that only the console session may send (not a board page)."""

    async def guarded(session: Session, message: Any) -> None:
        if session.principal.kind == "staff" and session.principal.purpose != CONSOLE:
            raise SignalingError("forbidden", "Send this from the console, not the board.")
        await handler(session, message)

    return guarded


Order = int | tuple[int, ...]
# Screen-sharing toggles kept in a call's session log (its ``ended`` ticket event); beyond that
# only the latest toggle and the count ``screen_toggles`` are kept.
SCREEN_LOG_MAX = 20
# A snapshot key (a ticket, a ring, a board page…) not used for this long is forgotten, so the
# gate holds only what is current, not every ticket ever seen. No read is in flight that long.
SNAPSHOT_IDLE_SECONDS = 600.0


class SnapshotGate:
    """The order of what each snapshot key (a ticket, a staff member's presence or queue, a
    board watcher…) last carried, so that an older snapshot is never sent after a newer one.

    Announcements read the database, then await a send per recipient; two of them interleave
    at those awaits. Each read takes a stamp first (a later read sees the same or newer rows),
    and a ticket's snapshots are ordered by its version first; ``admit`` refuses what is older
    than what was last sent for the key, and what equals it.
    """

    def __init__(self, idle_seconds: float = SNAPSHOT_IDLE_SECONDS) -> None:
        self._reads = 0
        self._last: dict[str, tuple[Order, Any]] = {}
        self._used: dict[str, float] = {}  # key → when last admitted; oldest first
        self.idle_seconds = idle_seconds

    def read(self) -> int:
        """A stamp for a read about to start."""
        self._reads += 1
        return self._reads

    def admit(self, key: str, order: Order, body: Any) -> bool:
        """Whether to send ``body`` for ``key``; if so it becomes the last one sent."""
        now = time.monotonic()
        self._prune(now)
        last = self._last.get(key)
        if last is not None and (_as_tuple(order) < _as_tuple(last[0]) or last[1] == body):
            return False
        self._last[key] = (order, body)
        self._used.pop(key, None)
        self._used[key] = now
        return True

    def _prune(self, now: float) -> None:
        """Forget the keys not admitted for ``idle_seconds`` (oldest first, so this is cheap)."""
        for key, used in list(itertools.islice(self._used.items(), 64)):
            if now - used < self.idle_seconds:
                break
            del self._used[key]
            self._last.pop(key, None)

    def __len__(self) -> int:
        return len(self._last)

    def sent_after(self, key: str, order: Order) -> bool:
        """Whether something from a read later than ``order`` was sent for ``key``."""
        last = self._last.get(key)
        return last is not None and _as_tuple(last[0]) > _as_tuple(order)

    def reset(self, key: str) -> None:
        """Send the next snapshot of ``key`` even if unchanged (a new session); its order stays."""
        last = self._last.get(key)
        if last is not None:
            self._last[key] = (last[0], None)


def _as_tuple(order: Order) -> tuple[int, ...]:
    return order if isinstance(order, tuple) else (order,)


class CallCenter:
    """Implements the hub's application interface for kiosks and staff."""

    def __init__(
        self,
        database: Database,
        hub_settings: HubSettings | None = None,
        broker: Any = None,
        prefer_reviewer_seconds: float = 120.0,
        follow_up_working_days: int = ratings.FOLLOW_UP_WORKING_DAYS,
        warning_check_seconds: float = 5.0,
        metric_rules: metrics.Rules | None = None,
        *,
        secret_key: bytes,
    ) -> None:
        self.db = database
        self.secret_key = secret_key  # checks the grants of kiosk case lookups
        self.hub = Hub(self, hub_settings, broker)
        self._dispatch_lock = asyncio.Lock()
        self.prefer_reviewer_seconds = prefer_reviewer_seconds
        self.follow_up_working_days = follow_up_working_days
        self.warning_check_seconds = warning_check_seconds
        self.metric_rules = metric_rules or metrics.DEFAULT_RULES
        self._board_watchers: set[str] = set()
        self._board_pending = False
        self._ring_timers: dict[int, asyncio.TimerHandle] = {}
        self._wrapup_timers: dict[int, asyncio.TimerHandle] = {}
        self._abandon_timers: dict[int, asyncio.TimerHandle] = {}
        self._gate = SnapshotGate()
        self._push_pending = False
        self._call_log: dict[str, dict[str, Any]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watches: list[asyncio.Task[None]] = []  # the background loops started by start()
        hub = self.hub
        hub.register("ticket.take", TakeTicket, self.on_take, {"kiosk"})
        hub.register("ticket.cancel", CancelTicket, self.on_cancel, {"kiosk"})
        console = _console_only
        hub.register("call.hangup", Hangup, console(self.on_hangup), {"kiosk", "staff"})
        hub.register("staff.status", StaffStatus, console(self.on_status), {"staff"})
        hub.register("ring.accept", OfferReply, console(self.on_offer_reply), {"staff"})
        hub.register("ring.decline", OfferReply, console(self.on_offer_reply), {"staff"})
        hub.register("ticket.pick", PickTicket, console(self.on_pick), {"staff"})
        hub.register("wrapup.done", WrapupDone, console(self.on_wrapup_done), {"staff"})
        hub.register("ticket.transfer", TransferTicket, console(self.on_transfer), {"staff"})
        hub.register("rating.submit", SubmitRating, self.on_rating, {"kiosk"})
        hub.register("board.watch", WatchBoard, self.on_watch_board, {"staff"})
        hub.register("warning.ack", AckWarning, self.on_ack_warning, {"staff"})

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover after a (re)start. Waiting tickets keep their place; rows whose sessions
        are still held by another server process (asked through the broker) are left alone."""
        now = utcnow()
        alive = self.hub.session_alive
        async with self.db.write() as s:
            for presence in (await s.scalars(select(StaffPresence))).all():
                if presence.session_id is None or not await alive(presence.session_id):
                    presence.state, presence.since = "offline", now
                    presence.session_id, presence.ticket_id = None, None
            open_tickets = select(Ticket).where(Ticket.status.in_(queue.OPEN_STATES))
            for ticket in (await s.scalars(open_tickets)).all():
                staff_session = await s.scalar(
                    select(StaffPresence.session_id).where(
                        StaffPresence.staff_id == (ticket.offered_to or ticket.staff_id or 0)
                    )
                )
                if ticket.status == "offered" and staff_session is None:
                    ticket.status, ticket.offered_to = "waiting", None
                    ticket.version += 1
                    await queue.record(s, ticket.id, "offer_reset", reason="server_restart")
                elif ticket.status in ("connected", "wrapup") and staff_session is None:
                    await queue.close_after_restart(s, ticket)
                if ticket.session_id is not None and not await alive(ticket.session_id):
                    ticket.session_id = None
            waiting = (
                await s.scalars(
                    select(Ticket.id).where(
                        Ticket.status.in_(queue.QUEUED), Ticket.session_id.is_(None)
                    )
                )
            ).all()
        for ticket_id in waiting:
            self._arm_abandon(ticket_id)
        self._watches = [asyncio.create_task(self._watch_revocations())]
        if self.warning_check_seconds > 0:  # 0: whoever needs them calls check_warnings (tests)
            self._watches.append(asyncio.create_task(self._watch_timeouts()))

    async def _watch_timeouts(self) -> None:
        """Check the time-out warnings every few seconds; keep the board's figures fresh."""
        last_board = last_full = 0.0
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.warning_check_seconds)
            try:
                every_kind = loop.time() - last_full >= CASE_WARNING_CHECK_SECONDS
                changed = await self.check_warnings(every_kind=every_kind)
                if every_kind:
                    last_full = loop.time()
                if not changed and loop.time() - last_board >= BOARD_REFRESH_SECONDS:
                    await self._push_board()
                    last_board = loop.time()
            except Exception as exc:  # a failed check must not stop the next ones
                log_event("warnings.check_failed", severity=logging.ERROR, error=repr(exc))

    async def _watch_revocations(self) -> None:
        """Disconnect kiosks revoked by another process (the CLI) within seconds."""
        while True:
            await asyncio.sleep(REVOCATION_CHECK_SECONDS)
            live = {
                int(s.principal.id)
                for s in self.hub.sessions.values()
                if s.principal.kind == "kiosk"
            }
            if not live:
                continue
            async with self.db.read() as s:
                revoked = (
                    await s.scalars(
                        select(Kiosk.id).where(Kiosk.id.in_(live), Kiosk.credential_hash.is_(None))
                    )
                ).all()
            for kiosk_id in revoked:
                await self.revoke_kiosk_sessions(kiosk_id)

    async def stop(self) -> None:
        """Close the sockets, stop the timers and let running work finish."""
        # Cancelled and awaited: a check cut off mid-transaction must be rolled back before the
        # engine is disposed, or the database driver can hang the shutdown.
        for watch in self._watches:
            watch.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        self._watches = []
        for timers in (self._ring_timers, self._wrapup_timers, self._abandon_timers):
            for handle in timers.values():
                handle.cancel()
            timers.clear()
        await self.hub.close()
        await drain(self._tasks)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        if self.hub.closing:
            coro.close()  # type: ignore[attr-defined]
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ authentication

    async def authenticate(self, auth: dict[str, Any] | None, request: web.Request) -> Principal:
        auth = auth or {}
        kind = auth.get("kind")
        try:
            async with self.db.read() as s:
                if kind == "kiosk":
                    credential = auth.get("credential")
                    if not isinstance(credential, str) or not credential:
                        raise SignalingError("auth_failed", "A kiosk signs in with its credential.")
                    kiosk = await accounts.kiosk_by_credential(s, credential)
                    return Principal(
                        "kiosk",
                        str(kiosk.id),
                        {"kiosk": kiosk.code, "name": kiosk.name, "station": kiosk.station.code,
                         "station_name": kiosk.station.name},
                    )  # fmt: skip
                if kind == "staff":
                    token = auth.get("token") or request.cookies.get(STAFF_COOKIE)
                    if not isinstance(token, str) or not token:
                        raise SignalingError("auth_failed", "Sign in first, then connect.")
                    purpose = auth.get("purpose") or CONSOLE
                    if purpose not in STAFF_PURPOSES:
                        raise SignalingError(
                            "bad_message", "hello.auth.purpose must be 'console' or 'board'."
                        )
                    staff = await accounts.staff_by_token(s, token)
                    return Principal(
                        "staff",
                        str(staff.id),
                        {
                            "username": staff.username,
                            "name": staff.display_name,
                            "role": staff.role,
                        },
                        str(purpose),
                    )
        except accounts.AccountError as exc:
            raise SignalingError(
                "auth_failed" if exc.code != "revoked" else "revoked", exc.message
            ) from None
        raise SignalingError("auth_failed", "hello.auth.kind must be 'kiosk' or 'staff'.")

    async def may_resume(self, session: Session, request: web.Request) -> bool:
        """A staff session is taken back only by a browser signed in as the same person (a
        tab's kept session never passes to whoever signs in next); kiosks prove it by token."""
        if session.principal.kind != "staff":
            return True
        token = request.cookies.get(STAFF_COOKIE)
        if not token:
            return True  # a non-browser client: the resume token alone
        try:
            async with self.db.read() as s:
                staff = await accounts.staff_by_token(s, token)
        except accounts.AccountError:
            return False
        return str(staff.id) == session.principal.id

    async def session_started(self, session: Session) -> None:
        principal = session.principal
        # A new sign-in replaces only a session of the same purpose: a supervisor's board
        # never closes their console (nor a call in it).
        for old in self.hub.find_sessions(principal.kind, principal.id, principal.purpose):
            if old is not session:
                await self._take_over(old, session)
                await self.hub.end_session(old, "replaced", CLOSE_REPLACED)
        if principal.kind == "kiosk":
            await self._kiosk_started(session)
        elif principal.purpose == CONSOLE:
            await self._staff_started(session)
        log_event(
            "session.started",
            kind=session.principal.kind,
            principal=session.principal.id,
            session=session.id,
        )

    async def session_resumed(self, session: Session, reloaded: bool) -> None:
        log_event(
            "session.resumed",
            kind=session.principal.kind,
            principal=session.principal.id,
            session=session.id,
            reloaded=reloaded,
        )
        if reloaded:
            await self._send_current_state(session)

    async def _send_current_state(self, session: Session) -> None:
        """A reloaded page resumed its session: send it what it shows now (snapshots, and a
        ring or wrap-up in progress); the hub adds ``joined`` if it is in a call."""
        principal = session.principal
        if principal.kind == "kiosk":
            async with self.db.read() as s:
                ticket = await queue.open_ticket_of_kiosk(s, int(principal.id))
            if ticket is not None and ticket.session_id == session.id:
                self._gate.reset(f"ticket:{ticket.id}")
                await self._push_ticket(ticket.id)
            return
        if principal.purpose != CONSOLE:
            return  # a board page asks again with board.watch
        staff_id = int(principal.id)
        for key in ("presence", "queue", "warnings"):
            self._gate.reset(f"{key}:{staff_id}")
        async with self.db.read() as s:
            presence = await s.get(StaffPresence, staff_id)
            ticket = (
                await s.get(Ticket, presence.ticket_id) if presence and presence.ticket_id else None
            )
            summary = self._ticket_summary(ticket) if ticket is not None else None
        await self._push_presence(staff_id)
        await self._push_staff_warnings(staff_id)
        self._schedule_push()
        if presence is None or ticket is None or summary is None:
            return
        if presence.state == "ringing" and ticket.status == "offered":
            left = ticket.department.ring_seconds - (utcnow() - presence.since).total_seconds()
            await self.hub.send(
                session.id, {"type": "ring", "ticket": summary, "ring_seconds": max(1, round(left))}
            )
        elif presence.state == "wrapup" and ticket.status == "wrapup":
            left = ticket.department.wrapup_seconds - (utcnow() - presence.since).total_seconds()
            async with self.db.read() as s:
                proposal = await outcomes.proposed_outcome(s, ticket, ticket.end_reason)
            await self.hub.send(
                session.id,
                {"type": "wrapup", "ticket": ticket.id, "seconds": max(1, round(left)),
                 "outcome": proposal, "version": ticket.version},
            )  # fmt: skip

    async def session_ended(self, session: Session, reason: str) -> None:
        self._board_watchers.discard(session.id)
        log_event(
            "session.ended",
            kind=session.principal.kind,
            principal=session.principal.id,
            session=session.id,
            reason=reason,
        )
        if session.principal.kind == "kiosk":
            if not await self._kiosk_gone(session, reason):
                return  # nothing queued or in a call: nobody else is affected
        elif session.principal.purpose == CONSOLE:
            await self._staff_gone(session)
        else:
            return  # a board page: nobody else is affected
        self._schedule_push()
        await self.dispatch()

    def relayed(self, session: Session, message: dict[str, Any]) -> None:
        """Count chat lines and note screen sharing of each call, for its session log."""
        data = message.get("data")
        if not isinstance(data, dict) or not session.room:
            return
        call = self._call_log.setdefault(session.room, {"chats": 0, "screen": []})
        if data.get("kind") == "chat":
            call["chats"] += 1
        elif data.get("kind") == "screen":
            who, on = session.principal.kind, bool(data.get("on"))
            toggle = {"by": who, "on": on, "at": utcnow().isoformat()}
            screen = call["screen"]
            if len(screen) < SCREEN_LOG_MAX:
                screen.append(toggle)
            else:  # bounded: the latest toggle replaces the last kept one, the total is counted
                screen[-1] = toggle
                call["screen_toggles"] = call.get("screen_toggles", SCREEN_LOG_MAX) + 1

    async def sign_out_staff(self, staff_id: int) -> None:
        for session in self.hub.find_sessions("staff", str(staff_id)):
            await self.hub.end_session(session, "signed_out")

    async def revoke_kiosk_sessions(self, kiosk_id: int) -> None:
        for session in self.hub.find_sessions("kiosk", str(kiosk_id)):
            await self.hub.end_session(session, "revoked", CLOSE_REVOKED)

    async def _take_over(self, old: Session, new: Session) -> None:
        """A second sign-in of the same kiosk or staff member replaces the first."""
        if old.principal.kind == "kiosk":
            async with self.db.write() as s:
                ticket = await queue.open_ticket_of_kiosk(s, int(old.principal.id))
                if ticket is not None and ticket.status in queue.QUEUED:
                    ticket.session_id = new.id

    # ------------------------------------------------------------------ kiosks

    async def _kiosk_started(self, session: Session) -> None:
        async with self.db.write() as s:
            ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
            if ticket is not None and ticket.status in queue.QUEUED:
                ticket.session_id = session.id
                ticket_id: int | None = ticket.id
            else:
                ticket_id = None
        if ticket_id is not None:
            handle = self._abandon_timers.pop(ticket_id, None)
            if handle:
                handle.cancel()
            self._gate.reset(f"ticket:{ticket_id}")
            await self._push_ticket(ticket_id)

    async def _kiosk_gone(self, session: Session, reason: str) -> bool:
        """Abandon the kiosk's queued ticket or end its call; False if it had neither."""
        async with self.db.read() as s:
            ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
        if ticket is None or ticket.session_id not in (session.id, None):
            return False
        if ticket.status in queue.QUEUED:
            why = "resident_left" if reason == "left" else "kiosk_gone"
            await self._close_queued(ticket.id, "abandoned", why)
        elif ticket.status == "connected":
            await self._end_call(ticket.id, "peer_gone")
        return True

    def _arm_abandon(self, ticket_id: int) -> None:
        loop = asyncio.get_running_loop()
        self._abandon_timers[ticket_id] = loop.call_later(
            self.hub.settings.grace_seconds,
            lambda: self._spawn(self._abandon_if_unclaimed(ticket_id)),
        )

    async def _abandon_if_unclaimed(self, ticket_id: int) -> None:
        self._abandon_timers.pop(ticket_id, None)
        async with self.db.read() as s:
            ticket = await s.get(Ticket, ticket_id)
        if ticket is not None and ticket.session_id is None and ticket.status in queue.QUEUED:
            await self._close_queued(ticket_id, "abandoned", "kiosk_gone")
            self._schedule_push()

    def _check_case_grant(self, kiosk_id: int, message: TakeTicket) -> None:
        """A correction session only for a case this kiosk looked up (number and last four
        digits) within the grant's lifetime: no kiosk opens one for any case number."""
        try:
            signed.check(
                self.secret_key, message.grant, signed.CASE_GRANT, (str(message.case), kiosk_id)
            )
        except signed.TokenRefused as refused:
            if refused.reason == "expired":
                raise SignalingError(
                    "case_grant_expired", "The case lookup expired; look the case up again."
                ) from None
            raise SignalingError(
                "case_grant_invalid",
                "Look the case up at this kiosk (number and last four digits) before calling.",
            ) from None

    async def on_take(self, session: Session, message: TakeTicket) -> None:
        kiosk_id = int(session.principal.id)
        if message.case is not None:
            self._check_case_grant(kiosk_id, message)
        async with self.db.write() as s:
            case = None
            if message.case is not None:
                case = await s.scalar(select(Case).where(Case.number == message.case))
                if case is None or case.status not in CORRECTION_STATES:
                    raise SignalingError(
                        "no_such_case", "No case with that number is waiting for corrections."
                    )
                item = case.item
            elif message.item is not None:
                item = await s.scalar(select(ServiceItem).where(ServiceItem.code == message.item))
            else:
                raise SignalingError("bad_message", "Say which item (item) or case (case).")
            if item is None:
                raise SignalingError("no_such_item", f"There is no service item {message.item!r}.")
            if not item.cloud:
                raise SignalingError(
                    "not_cloud", "This item cannot be handled by video; please go to the hall."
                )
            if await queue.open_ticket_of_kiosk(s, kiosk_id) is not None:
                raise SignalingError("ticket_open", "This kiosk already has a ticket in the queue.")
            kiosk = await s.get(Kiosk, kiosk_id)
            assert kiosk is not None
            ticket = await queue.take(
                s, item=item, kiosk_id=kiosk_id, station_id=kiosk.station_id, session_id=session.id
            )
            if case is not None:
                ticket.case_id, ticket.preferred_staff_id = case.id, case.staff_id
            ticket_id = ticket.id
        log_event("ticket.enqueued", ticket=ticket_id, item=item.code, kiosk=kiosk_id)
        if case is not None and case.staff_id is not None:
            # After the preference window any staff member who handles the item may answer.
            loop = asyncio.get_running_loop()
            loop.call_later(
                self.prefer_reviewer_seconds + 0.1, lambda: self._spawn(self.dispatch())
            )
        self._schedule_push()
        await self.dispatch()

    async def on_cancel(self, session: Session, message: CancelTicket) -> None:
        async with self.db.read() as s:
            ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
        if ticket is None or ticket.status not in queue.QUEUED:
            raise SignalingError("no_ticket", "There is no waiting ticket to cancel.")
        await self._close_queued(ticket.id, "cancelled", "resident_cancelled")
        self._schedule_push()
        await self.dispatch()

    async def _close_queued(self, ticket_id: int, status: str, reason: str) -> None:
        async with self.db.write() as s:
            ticket = await queue.close_queued(s, ticket_id, status, reason)
        if ticket is None:
            return
        log_event(f"ticket.{status}", ticket=ticket_id, reason=reason)
        self._cancel_timer(self._ring_timers, ticket_id)
        if ticket.offered_to is not None:
            await self._send_staff(
                ticket.offered_to,
                {"type": "ring.cancelled", "ticket": ticket_id, "reason": reason,
                 "version": ticket.version},
                (f"ring:{ticket_id}", ticket.version),
            )  # fmt: skip
            await self._push_presence(ticket.offered_to)
        await self._push_ticket(ticket_id)

    # ------------------------------------------------------------------ staff

    async def _staff_started(self, session: Session) -> None:
        staff_id = int(session.principal.id)
        now = utcnow()
        async with self.db.write() as s:
            presence = await s.get(StaffPresence, staff_id)
            if presence is None:
                presence = StaffPresence(staff_id=staff_id, state="away", since=now)
                s.add(presence)
            elif presence.state == "offline":
                presence.state, presence.since = "away", now
            presence.session_id = session.id
        for key in ("presence", "queue", "warnings"):
            self._gate.reset(f"{key}:{staff_id}")
        await self._push_presence(staff_id)
        await self._push_staff_warnings(staff_id)
        self._schedule_push()

    async def _staff_gone(self, session: Session) -> None:
        staff_id = int(session.principal.id)
        async with self.db.read() as s:
            presence = await s.get(StaffPresence, staff_id)
        if presence is None or presence.session_id not in (session.id, None):
            return
        if presence.state == "ringing" and presence.ticket_id is not None:
            await self._release(presence.ticket_id, staff_id, "staff_gone", missed=False)
        elif presence.state == "in_call" and presence.ticket_id is not None:
            await self._end_call(presence.ticket_id, "peer_gone")
        async with self.db.write() as s:
            await queue.finish_wrapup(s, staff_id, None, "", "staff_gone")
            await s.execute(
                update(StaffPresence)
                .where(StaffPresence.staff_id == staff_id, StaffPresence.session_id == session.id)
                .values(state="offline", since=utcnow(), session_id=None, ticket_id=None)
            )
        self._cancel_timer(self._wrapup_timers, staff_id)

    async def on_status(self, session: Session, message: StaffStatus) -> None:
        staff_id = int(session.principal.id)
        now = utcnow()
        async with self.db.write() as s:
            presence = await s.get(StaffPresence, staff_id)
            assert presence is not None
            if message.status == "available":
                if presence.state not in ("away", "available"):
                    raise SignalingError(
                        "invalid_state", f"You cannot become available while {presence.state}."
                    )
                if presence.state == "away":
                    presence.state, presence.since, presence.idle_since = "available", now, now
                presence.missed_offers = 0
            else:
                if presence.state not in ("available", "away"):
                    raise SignalingError(
                        "invalid_state", f"Finish first: you are {presence.state}."
                    )
                presence.state, presence.since = "away", now
        await self._push_presence(staff_id)
        self._schedule_push()
        await self.dispatch()

    async def on_offer_reply(self, session: Session, message: OfferReply) -> None:
        staff_id = int(session.principal.id)
        if message.type == "ring.decline":
            if not await self._release(message.ticket, staff_id, "declined", missed=False):
                raise SignalingError("not_your_offer", "That ticket is not ringing for you.")
            await self.dispatch()
            return
        try:
            async with self.db.write() as s:
                call = await queue.connect(s, message.ticket, staff_id, picked=False)
                if call is not None:  # a correction session opens the case's next round
                    await prereview.start_correction_round(
                        s, message.ticket, staff_id, session.principal.info["username"]
                    )
        except queue.Conflict:
            call = None
        if call is None:
            raise SignalingError("not_your_offer", "That ticket is no longer ringing for you.")
        self._cancel_timer(self._ring_timers, message.ticket)
        await self._open_call(message.ticket, call.id, session)

    async def on_pick(self, session: Session, message: PickTicket) -> None:
        staff_id = int(session.principal.id)
        async with self.db.read() as s:
            ticket = await s.get(Ticket, message.ticket)
            if ticket is None:
                raise SignalingError("no_such_ticket", "There is no such ticket.")
            if not await queue.skills_cover(s, staff_id, ticket):
                raise SignalingError("not_skilled", "That ticket is for an item you do not handle.")
        try:
            async with self.db.write() as s:
                call = await queue.connect(s, message.ticket, staff_id, picked=True)
                if call is not None:  # a correction session opens the case's next round
                    await prereview.start_correction_round(
                        s, message.ticket, staff_id, session.principal.info["username"]
                    )
        except queue.Conflict:
            call = None
        if call is None:
            raise SignalingError(
                "ticket_taken", "That ticket is no longer waiting, or you are busy."
            )
        await self._open_call(message.ticket, call.id, session)

    async def on_hangup(self, session: Session, message: Hangup) -> None:
        async with self.db.read() as s:
            if session.principal.kind == "kiosk":
                ticket = await queue.open_ticket_of_kiosk(s, int(session.principal.id))
                ticket_id = ticket.id if ticket and ticket.status == "connected" else None
            else:
                presence = await s.get(StaffPresence, int(session.principal.id))
                in_call = presence is not None and presence.state == "in_call"
                ticket_id = presence.ticket_id if in_call and presence else None
        reason = message.reason or f"{session.principal.kind}_hangup"
        if ticket_id is None or not await self._end_call(ticket_id, reason):
            raise SignalingError("not_in_call", "You are not in a call.")

    async def on_wrapup_done(self, session: Session, message: WrapupDone) -> None:
        staff_id = int(session.principal.id)
        if not await self._finish_wrapup(staff_id, message.outcome, message.note, "done"):
            raise SignalingError("invalid_state", "You are not in wrap-up.")

    async def on_rating(self, session: Session, message: SubmitRating) -> None:
        try:
            async with self.db.write() as s:
                ticket = await s.get(Ticket, message.ticket)
                if ticket is None or ticket.kiosk_id != int(session.principal.id):
                    raise SignalingError("no_such_ticket", "This kiosk has no such ticket.")
                rating, follow_up = await ratings.rate(
                    s,
                    ticket,
                    message.level,
                    message.reasons,
                    self.follow_up_working_days,
                    message.outcome,
                )
                rating_id = rating.id
        except ratings.RatingError as exc:
            raise SignalingError(exc.code, exc.message) from None
        log_event(
            "ticket.rated", ticket=message.ticket, level=message.level, follow_up=bool(follow_up)
        )
        await self.hub.send(
            session.id, {"type": "rating.saved", "ticket": message.ticket, "rating": rating_id}
        )

    async def on_transfer(self, session: Session, message: TransferTicket) -> None:
        staff_id = int(session.principal.id)
        async with self.db.read() as s:
            department = await s.scalar(
                select(Department).where(Department.code == message.department)
            )
            presence = await s.get(StaffPresence, staff_id)
        if department is None:
            raise SignalingError(
                "no_such_department", f"There is no department {message.department!r}."
            )
        if presence is None or presence.state != "in_call" or presence.ticket_id is None:
            raise SignalingError("not_in_call", "Only a ticket in your call can be transferred.")
        await self._end_call(presence.ticket_id, "transferred", transfer_to=department.id)
        await self.dispatch()

    # ------------------------------------------------------------------ routing

    async def dispatch(self) -> None:
        """Offer waiting tickets to available staff whose skills cover the item."""
        async with self._dispatch_lock:
            while await self._offer_one():
                pass

    async def _offer_one(self) -> bool:
        async with self.db.read() as s:
            tickets = (
                await s.scalars(
                    select(Ticket)
                    .where(Ticket.status == "waiting")
                    .order_by(Ticket.enqueued_at, Ticket.id)
                    .limit(500)
                )
            ).all()
            if not tickets:
                return False
            staff = (
                await s.scalars(
                    select(StaffPresence).where(
                        StaffPresence.state == "available", StaffPresence.session_id.is_not(None)
                    )
                )
            ).all()
            if not staff:
                return False
            skills = (
                await s.scalars(
                    select(StaffSkill).where(StaffSkill.staff_id.in_([p.staff_id for p in staff]))
                )
            ).all()
            offers = Counter(
                (e.ticket_id, e.staff_id)
                for e in (
                    await s.scalars(
                        select(TicketEvent).where(
                            TicketEvent.kind == "offered",
                            TicketEvent.ticket_id.in_([t.id for t in tickets]),
                        )
                    )
                ).all()
            )
        covers = queue.skill_sets([p.staff_id for p in staff], skills)
        now = utcnow()
        for ticket in tickets:
            preferred = ticket.preferred_staff_id
            waited = (now - ticket.enqueued_at).total_seconds()
            if preferred is not None and waited < self.prefer_reviewer_seconds:
                # A correction session first rings the staff member who did the pre-review.
                candidates = [p for p in staff if p.staff_id == preferred]
            else:
                candidates = [
                    p
                    for p in staff
                    if ticket.department_id in covers[p.staff_id][0]
                    or (
                        ticket.item_id in covers[p.staff_id][1]
                        and ticket.item.department_id == ticket.department_id
                    )
                ]
            if not candidates:
                continue
            # Fewest earlier offers of this ticket first, then longest idle.
            candidates.sort(
                key=lambda p: (offers[(ticket.id, p.staff_id)], p.idle_since or p.since, p.staff_id)
            )
            for presence in candidates:
                try:
                    async with self.db.write() as s:
                        claimed = await queue.claim_offer(s, ticket.id, presence.staff_id)
                except queue.Conflict:
                    continue
                if not claimed:
                    break
                await self._announce_offer(ticket.id, presence.staff_id)
                return True
        return False

    async def _announce_offer(self, ticket_id: int, staff_id: int) -> None:
        async with self.db.read() as s:
            ticket = await s.get(Ticket, ticket_id)
            assert ticket is not None
            ring = ticket.department.ring_seconds
            summary = self._ticket_summary(ticket)
            still_ringing = ticket.status == "offered" and ticket.offered_to == staff_id
        log_event("ticket.offered", ticket=ticket_id, staff=staff_id)
        if not still_ringing:  # cancelled, or answered, before the ring could be announced
            return
        loop = asyncio.get_running_loop()
        self._ring_timers[ticket_id] = loop.call_later(
            ring, lambda: self._spawn(self._ring_timeout(ticket_id, staff_id))
        )
        # Gated by the ticket's version: a ring.cancelled sent meanwhile is never overtaken.
        await self._send_staff(
            staff_id,
            {"type": "ring", "ticket": summary, "ring_seconds": ring},
            (f"ring:{ticket_id}", ticket.version),
        )
        await self._push_presence(staff_id)
        self._schedule_push()

    async def _ring_timeout(self, ticket_id: int, staff_id: int) -> None:
        self._ring_timers.pop(ticket_id, None)
        if await self._release(ticket_id, staff_id, "timeout", missed=True):
            await self.dispatch()

    async def _release(self, ticket_id: int, staff_id: int, reason: str, *, missed: bool) -> bool:
        async with self.db.write() as s:
            ticket = await s.get(Ticket, ticket_id)
            max_missed = ticket.department.max_missed_offers if ticket else 2
            state = await queue.release_offer(
                s, ticket_id, staff_id, reason, missed=missed, max_missed=max_missed
            )
            version = await s.scalar(select(Ticket.version).where(Ticket.id == ticket_id))
        if state is None:
            return False
        self._cancel_timer(self._ring_timers, ticket_id)
        log_event(f"ticket.offer_{reason}", ticket=ticket_id, staff=staff_id, staff_state=state)
        await self._send_staff(
            staff_id,
            {"type": "ring.cancelled", "ticket": ticket_id, "reason": reason, "version": version},
            (f"ring:{ticket_id}", version or 0),
        )
        await self._push_presence(staff_id)
        self._schedule_push()
        return True

    # ------------------------------------------------------------------ calls

    async def _open_call(self, ticket_id: int, call_id: int, staff_session: Session) -> None:
        async with self.db.read() as s:
            ticket = await s.get(Ticket, ticket_id)
            assert ticket is not None
            kiosk = await s.get(Kiosk, ticket.kiosk_id)
            kiosk_session = ticket.session_id
        log_event(
            "call.connected", ticket=ticket_id, call=call_id, staff=staff_session.principal.id
        )
        # The connected ticket goes before ``joined``: a queue snapshot read earlier (older
        # version) can then never reach the kiosk after the call has begun.
        await self._push_ticket(ticket_id)
        if kiosk_session is not None and kiosk is not None:
            await self.hub.open_room(
                f"call-{call_id}",
                {
                    kiosk_session: {
                        "role": "kiosk",
                        "kiosk": kiosk.code,
                        "station": kiosk.station.name,
                    },
                    staff_session.id: {
                        "role": "staff",
                        "name": staff_session.principal.info.get("name", ""),
                    },
                },
            )
        await self._push_presence(int(staff_session.principal.id))
        self._schedule_push()

    async def _end_call(self, ticket_id: int, reason: str, transfer_to: int | None = None) -> bool:
        stamp = self._gate.read()
        async with self.db.write() as s:
            log = self._call_log.get(f"call-{await queue.open_call_id(s, ticket_id)}", {})
            ended = await queue.end_call(s, ticket_id, reason, transfer_to=transfer_to, log=log)
            if ended is None:
                return False
            ticket, call = ended
            self._call_log.pop(f"call-{call.id}", None)
            presence = await s.get(StaffPresence, call.staff_id)
            staff_session = presence.session_id if presence else None
            wrapup_seconds = ticket.department.wrapup_seconds
            proposal = await outcomes.proposed_outcome(s, ticket, reason)
            kiosk_session = ticket.session_id
            version = ticket.version
        log_event("call.ended", ticket=ticket_id, call=call.id, reason=reason)
        loop = asyncio.get_running_loop()
        staff_id = call.staff_id
        self._cancel_timer(self._wrapup_timers, staff_id)
        self._wrapup_timers[staff_id] = loop.call_later(
            wrapup_seconds,
            lambda: self._spawn(self._finish_wrapup(staff_id, None, "", "timeout")),
        )
        # The ticket's new state (wrap-up) before ``left``: no snapshot of the call can reach
        # the kiosk after the call is over. A transferred ticket is back in a queue: its
        # position follows ``left``, for the waiting screen the kiosk returns to (anything
        # older than the call is dropped by its version).
        if transfer_to is None:
            await self._push_ticket(ticket_id)
        members = [sid for sid in (kiosk_session, staff_session) if sid]
        await self.hub.close_room(f"call-{call.id}", members, reason)
        if transfer_to is not None:
            await self._push_ticket(ticket_id)
        # Not after a presence read later than this call's end (the staff member may have
        # finished wrap-up already): the console would go back to a wrap-up that is over.
        if staff_session is not None and not self._gate.sent_after(f"presence:{staff_id}", stamp):
            await self.hub.send(
                staff_session,
                {"type": "wrapup", "ticket": ticket_id, "seconds": wrapup_seconds,
                 "outcome": proposal, "version": version},
            )  # fmt: skip
        await self._push_presence(staff_id)
        self._schedule_push()
        return True

    async def _finish_wrapup(
        self, staff_id: int, outcome: str | None, note: str, reason: str
    ) -> bool:
        self._cancel_timer(self._wrapup_timers, staff_id)
        async with self.db.write() as s:
            ticket_id = await queue.finish_wrapup(s, staff_id, outcome, note, reason)
        if ticket_id is None:
            return False
        if ticket_id:
            await self._push_ticket(ticket_id)
        await self._push_presence(staff_id)
        self._schedule_push()
        await self.dispatch()
        return True

    # ------------------------------------------------------------------ board and warnings

    async def on_watch_board(self, session: Session, message: WatchBoard) -> None:
        if session.principal.info.get("role") not in SUPERVISOR_ROLES:
            raise SignalingError("forbidden", "The board is for supervisors.")
        self._board_watchers.add(session.id)
        self._gate.reset(f"board:{session.id}")
        stamp = self._gate.read()
        message = await self._board_message()
        await self._send_if_changed(f"board:{session.id}", session.id, message, stamp)

    async def on_ack_warning(self, session: Session, message: AckWarning) -> None:
        async with self.db.write() as s:
            staff = await s.get(Staff, int(session.principal.id))
            assert staff is not None
            try:
                warning = await timeouts.acknowledge(s, message.warning, staff, utcnow())
            except timeouts.WarningError as exc:
                raise SignalingError(exc.code, exc.message) from None
            concerned = warning.staff_id
        await self.warnings_changed({concerned} if concerned else set())

    async def check_warnings(self, now: datetime | None = None, every_kind: bool = True) -> bool:
        """Raise and clear time-out warnings as of ``now``; push what changed."""
        async with self.db.write() as s:
            changes = await timeouts.evaluate(s, now or utcnow(), every_kind)
        if not changes:
            return False
        if changes.raised:  # one line with counts (a restart over history raises dozens)
            kinds = dict(sorted(Counter(w.kind for w in changes.raised).items()))
            log_event("warnings.raised", count=len(changes.raised), kinds=kinds)
        for warning in changes.raised:
            log_event("warning.raised", severity=logging.DEBUG, kind=warning.kind,
                      subject=warning.subject, warning=warning.id)  # fmt: skip
        await self.warnings_changed(changes.staff_concerned())
        return True

    async def warnings_changed(self, staff_ids: set[int]) -> None:
        for staff_id in staff_ids:
            await self._push_staff_warnings(staff_id)
        await self._push_board()

    async def _push_staff_warnings(self, staff_id: int) -> None:
        stamp = self._gate.read()
        async with self.db.read() as s:
            presence = await s.get(StaffPresence, staff_id)
            mine = await timeouts.active(s, staff_id)
        message = {
            "type": "warnings",
            "warnings": [warning_labels.warning_json(w) for w in mine],
            "_key": "warnings",
        }
        await self._send_if_changed(
            f"warnings:{staff_id}", presence.session_id if presence else None, message, stamp
        )

    async def _board_message(self) -> dict[str, Any]:
        return await board.snapshot(self.db, utcnow(), self.metric_rules) | {"_key": "board"}

    def _schedule_board(self) -> None:
        if self._board_pending or not self._board_watchers:
            return
        self._board_pending = True
        self._spawn(self._board_soon())

    async def _board_soon(self) -> None:
        await asyncio.sleep(BOARD_COALESCE_SECONDS)
        self._board_pending = False
        await self._push_board()

    async def _push_board(self) -> None:
        if not self._board_watchers:
            return
        stamp = self._gate.read()
        message = await self._board_message()
        for session_id in list(self._board_watchers):
            await self._send_if_changed(f"board:{session_id}", session_id, message, stamp)

    # ------------------------------------------------------------------ announcements

    def _cancel_timer(self, timers: dict[int, asyncio.TimerHandle], key: int) -> None:
        handle = timers.pop(key, None)
        if handle is not None:
            handle.cancel()

    async def _send_if_changed(
        self, key: str, session_id: str | None, message: dict[str, Any], order: Order
    ) -> None:
        """Send a snapshot unless it is unchanged or older than the last one sent for ``key``
        (no await between the check and the send: frames leave in the order admitted)."""
        if session_id is None or not self._gate.admit(key, order, message):
            return
        await self.hub.send(session_id, message)

    async def _send_staff(
        self, staff_id: int, message: dict[str, Any], gate: tuple[str, Order] | None = None
    ) -> None:
        """Send to the staff member's console; with ``gate`` (key, order) only if nothing newer
        was sent for that key (see SnapshotGate)."""
        async with self.db.read() as s:
            presence = await s.get(StaffPresence, staff_id)
        if presence is None or not presence.session_id:
            return
        if gate is not None and not self._gate.admit(gate[0], gate[1], message):
            return
        await self.hub.send(presence.session_id, message)

    @staticmethod
    def _ticket_summary(ticket: Ticket) -> dict[str, Any]:
        return {
            "id": ticket.id,
            "number": ticket.number,
            "status": ticket.status,
            "item": {"code": ticket.item.code, "name": ticket.item.name},
            "department": {"code": ticket.department.code, "name": ticket.department.name},
            "station": {"code": ticket.station.code, "name": ticket.station.name},
            # ``correction``: taken for a correction session of an existing case (not a first
            # session whose case was opened during the call, then transferred).
            "case": {
                "number": ticket.case.number,
                "round": ticket.case.rounds,
                "correction": ticket.case.created_at < ticket.enqueued_at,
            }
            if ticket.case
            else None,
            "enqueued_at": _iso(ticket.enqueued_at),
            "version": ticket.version,
        }

    async def _push_ticket(self, ticket_id: int) -> None:
        """Tell the kiosk about its ticket (queued tickets go through _push_all too)."""
        stamp = self._gate.read()
        async with self.db.read() as s:
            ticket = await s.get(Ticket, ticket_id)
            if ticket is None or ticket.session_id is None:
                return
            if ticket.status in queue.QUEUED:
                queued = await queue.queued_tickets(s)
                estimates = await queue.queue_estimates(s, queued)
            else:
                estimates = {}
            body = self._ticket_body(ticket, estimates.get(ticket_id))
        await self._send_if_changed(
            f"ticket:{ticket_id}",
            ticket.session_id,
            {"type": "ticket", "ticket": body, "_key": "ticket"},
            (ticket.version, stamp),
        )

    def _ticket_body(self, ticket: Ticket, estimate: queue.Estimate | None) -> dict[str, Any]:
        body = self._ticket_summary(ticket)
        body["end_reason"] = ticket.end_reason
        if estimate is not None:
            body |= {
                "position": estimate.position,
                "estimated_wait_seconds": estimate.wait_seconds,
                "staff_on_duty": estimate.staff_on_duty,
            }
        return body

    async def _push_presence(self, staff_id: int) -> None:
        stamp = self._gate.read()
        async with self.db.read() as s:
            presence = await s.get(StaffPresence, staff_id)
        if presence is None:
            return
        message = {
            "type": "presence",
            "state": presence.state,
            "since": _iso(presence.since),
            "missed_offers": presence.missed_offers,
            "ticket": presence.ticket_id,
            "_key": "presence",
        }
        await self._send_if_changed(f"presence:{staff_id}", presence.session_id, message, stamp)

    def _schedule_push(self) -> None:
        """Push queue state soon; events close together share one push."""
        if self._push_pending:
            return
        self._push_pending = True
        self._spawn(self._push_soon())

    async def _push_soon(self) -> None:
        await asyncio.sleep(PUSH_COALESCE_SECONDS)
        self._push_pending = False
        await self._push_all()
        self._schedule_board()

    async def _push_all(self) -> None:
        """Send each waiting kiosk its position and estimate, and each staff member their queue."""
        stamp = self._gate.read()
        async with self.db.read() as s:
            queued = await queue.queued_tickets(s)
            estimates = await queue.queue_estimates(s, queued)
            online = (
                await s.scalars(select(StaffPresence).where(StaffPresence.session_id.is_not(None)))
            ).all()
            skills = (
                await s.scalars(
                    select(StaffSkill).where(StaffSkill.staff_id.in_([p.staff_id for p in online]))
                )
            ).all()
        summaries = {t.id: self._ticket_summary(t) for t in queued}
        for ticket in queued:
            body = self._ticket_body(ticket, estimates[ticket.id])
            message = {"type": "ticket", "ticket": body, "_key": "ticket"}
            await self._send_if_changed(
                f"ticket:{ticket.id}", ticket.session_id, message, (ticket.version, stamp)
            )
        handles = queue.skill_sets([p.staff_id for p in online], skills)
        now = utcnow()
        for presence in online:
            departments, items = handles[presence.staff_id]
            visible = [t for t in queued if t.department_id in departments or t.item_id in items]
            # Waiting seconds change every second: push when the list itself changes.
            key = f"queue:{presence.staff_id}"
            signature = [(t.id, t.status) for t in visible]
            if presence.session_id is None or not self._gate.admit(key, stamp, signature):
                continue
            tickets = [
                summaries[t.id] | {"waiting_seconds": int((now - t.enqueued_at).total_seconds())}
                for t in visible[:QUEUE_LIST_LIMIT]
            ]
            message = {"type": "queue", "tickets": tickets, "total": len(visible), "_key": "queue"}
            await self.hub.send(presence.session_id, message)
