"""Sessions: who may connect (kiosk credential, staff sign-in), and what a session starting,
resuming or ending means for its kiosk's ticket or its staff member's console."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from cloudhelp.callcenter import frames
from cloudhelp.callcenter.messages import CONSOLE, STAFF_PURPOSES
from cloudhelp.core.logs import log_event
from cloudhelp.domain import accounts, outcomes, queue, transfer
from cloudhelp.store.models import ROLES, StaffPresence, Ticket, utcnow
from signaling.errors import CLOSE_REPLACED, CLOSE_REVOKED, SignalingError
from signaling.hub import Principal, Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

# The broker channel on which a kiosk's or a console's new session tells every server process
# to replace the older ones it holds (a sign-in on another node than the older session's).
REPLACED_CHANNEL = "sessions.replaced"


class Sessions:
    """The hub's application callbacks about sessions (see signaling.hub.HubApplication)."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.hub = center.hub
        self.gate = center._gate
        self.pushes = center.pushes

    async def authenticate(self, auth: dict[str, Any] | None, request: web.Request) -> Principal:
        auth = auth or {}
        kind = auth.get("kind")
        try:
            if kind == "kiosk":
                return await self._kiosk(auth)
            if kind == "staff":
                return await self._staff(auth, request)
        except accounts.AccountError as exc:
            raise SignalingError(
                "auth_failed" if exc.code != "revoked" else "revoked", exc.message
            ) from None
        raise SignalingError("auth_failed", "hello.auth.kind must be 'kiosk' or 'staff'.")

    async def _kiosk(self, auth: dict[str, Any]) -> Principal:
        credential = auth.get("credential")
        if not isinstance(credential, str) or not credential:
            raise SignalingError("auth_failed", "A kiosk signs in with its credential.")
        async with self.db.read() as s:
            kiosk = await accounts.kiosk_by_credential(s, credential)
            busy = await self._kiosk_in_call(s, kiosk.id)
            principal = Principal(
                "kiosk",
                str(kiosk.id),
                {"kiosk": kiosk.code, "name": kiosk.name, "station": kiosk.station.code,
                 "station_name": kiosk.station.name},
            )  # fmt: skip
        await self._refuse_while_held(
            busy,
            "kiosk_busy",
            "This kiosk is in a call in another window: finish it there, then open the kiosk here.",
        )
        return principal

    async def _staff(self, auth: dict[str, Any], request: web.Request) -> Principal:
        token = auth.get("token") or request.cookies.get(accounts.STAFF_COOKIE)
        if not isinstance(token, str) or not token:
            raise SignalingError("auth_failed", "Sign in first, then connect.")
        purpose = auth.get("purpose") or CONSOLE
        if purpose not in STAFF_PURPOSES:
            raise SignalingError("bad_message", "hello.auth.purpose must be 'console' or 'board'.")
        async with self.db.read() as s:
            staff = await accounts.staff_by_token(s, token)
            if staff.role not in ROLES:  # a station attendant has no console and no board
                raise SignalingError("forbidden", "This account does not use the console.")
            staff_id = staff.id
            info = {"username": staff.username, "name": staff.display_name, "role": staff.role}
            busy = await self._console_in_call(s, staff_id) if purpose == CONSOLE else None
        await self._refuse_while_held(
            busy,
            "console_busy",
            "Your console is in a call (or its wrap-up) in another window: finish it there,"
            " then open the console here.",
        )
        return Principal("staff", str(staff_id), info, str(purpose))

    async def _refuse_while_held(self, in_call: str | None, code: str, message: str) -> None:
        """Refuse a sign-in (``code``) while ``in_call``, the session a new one would replace in
        the middle of a call, is held by a node: replacing it would cut the resident off."""
        if in_call is not None and await self.hub.session_alive(in_call):
            raise SignalingError(code, message)

    @staticmethod
    async def _console_in_call(s: AsyncSession, staff_id: int) -> str | None:
        """The session of the staff member's console if it is in a call or its wrap-up.

        A new console replaces the older one (session_started), which ends whatever that one
        was in: not while it is in a call or its wrap-up and still held by a node (in its grace
        period too: its window may come back) — a second window opened by mistake (the console
        in /cases' nav) would cut the resident off. A console whose session no node holds (the
        server restarted mid-call, the page's resume found nothing) is replaced as before."""
        row = await s.get(StaffPresence, staff_id)
        if row is not None and row.session_id and row.state in ("in_call", "wrapup"):
            return row.session_id
        return None

    @staticmethod
    async def _kiosk_in_call(s: AsyncSession, kiosk_id: int) -> str | None:
        """The session of the kiosk's call, if it is in one.

        A kiosk's new sign-in replaces its older session (session_started) and takes a queued
        ticket over, but a call cannot follow it there: replacing the session in a call would
        cut the resident off (a second window opened on the kiosk, a launcher that opens the
        page again). So, as for consoles, the new one is refused while that session is held by
        a node (in its grace period too: a reload resumes it). One no node holds (the server
        restarted mid-call) is replaced as before."""
        ticket = await queue.open_ticket_of_kiosk(s, kiosk_id)
        if ticket is not None and ticket.status == "connected" and ticket.session_id:
            return ticket.session_id
        return None

    async def may_resume(self, session: Session, request: web.Request) -> bool:
        """A staff session is taken back only by a browser signed in as the same person (a
        tab's kept session never passes to whoever signs in next); kiosks prove it by token."""
        if session.principal.kind != "staff":
            return True
        token = request.cookies.get(accounts.STAFF_COOKIE)
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
        # A kiosk, and a staff member's console, is one session: a new sign-in replaces the
        # older one (its page says so). Boards are not replaced: a supervisor's board on the
        # wall screen goes on while they open it on their laptop, and never closes their
        # console (nor a call in it).
        replaces = principal.kind == "kiosk" or principal.purpose == CONSOLE
        olds = [
            old
            for old in self.hub.find_sessions(principal.kind, principal.id, principal.purpose)
            if replaces and old is not session
        ]
        # A console that takes over one answering calls answers them (the other window says
        # it no longer does; 在本窗口继续接听 is "answer calls here").
        answering = principal.kind == "staff" and replaces and await self._answering(session)
        for old in olds:
            if old.principal.kind == "kiosk":
                await self.center.tickets.take_over(old, session)
            await self.hub.end_session(old, "replaced", CLOSE_REPLACED)
        if principal.kind == "kiosk":
            await self.center.tickets.kiosk_started(session)
        elif principal.purpose == CONSOLE:
            await self.center.presence.staff_started(session, available=answering)
        if replaces:  # and the older sessions other server processes hold (on_replaced)
            await self.hub.broker.broadcast(
                REPLACED_CHANNEL,
                {"type": "session.replaces", "kind": principal.kind, "principal": principal.id,
                 "purpose": principal.purpose, "session": session.id, "started": session.started},
            )  # fmt: skip
        log_event(
            "session.started", kind=principal.kind, principal=principal.id, session=session.id
        )

    async def _answering(self, console: Session) -> bool:
        """Whether the console this new one replaces — held here or by another server
        process — is available (or being rung)."""
        async with self.db.read() as s:
            row = await s.get(StaffPresence, int(console.principal.id))
        if row is None or row.state not in ("available", "ringing"):
            return False
        return row.session_id not in (None, console.id) and await self.hub.session_alive(
            row.session_id
        )

    async def on_replaced(self, message: dict[str, Any]) -> None:
        """A kiosk's or a console's new session began, here or on another server process: the
        older ones held here end as replaced (4009), as they do where it began. Not one in a
        call: a sign-in while the kiosk or console is in one is refused (kiosk_busy,
        console_busy), so this one got into a call since, and ending it would cut the resident
        off. Its queued ticket, if any, already follows the new session (kiosk_started), and
        its presence row names the new console: ending it changes neither."""
        try:
            kind, principal_id = str(message["kind"]), str(message["principal"])
            purpose, newer = str(message["purpose"]), str(message["session"])
            started = float(message["started"])
        except (KeyError, TypeError, ValueError):
            return  # not a notice this version understands
        for old in self.hub.find_sessions(kind, principal_id, purpose):
            if old.id != newer and old.started < started and old.room is None:
                await self.hub.end_session(old, "replaced", CLOSE_REPLACED)

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

    def session_moved(self, session: Session) -> None:
        """The session was resumed on another node, which holds it from now on (the database
        rows name the session, not the node: nothing there changes). A board page sends
        ``board.watch`` again on its welcome there."""
        self.center._board_watchers.discard(session.id)
        if session.principal.kind == "staff" and session.principal.purpose == CONSOLE:
            # Queue lists come from the node holding the console (Pushes.push_queues): what
            # this node sent is no longer what the console shows once another node sends.
            self.gate.reset(f"queue:{session.principal.id}")
        log_event(
            "session.moved", kind=session.principal.kind, principal=session.principal.id,
            session=session.id,
        )  # fmt: skip

    async def _send_current_state(self, session: Session) -> None:
        """A reloaded page resumed its session: send it what it shows now (snapshots, and a
        ring or wrap-up in progress); the hub adds ``joined`` if it is in a call."""
        principal = session.principal
        if principal.kind == "kiosk":
            async with self.db.read() as s:
                ticket = await queue.open_ticket_of_kiosk(s, int(principal.id))
            if ticket is not None and ticket.session_id == session.id:
                self.gate.reset(f"ticket:{ticket.id}")
                await self.pushes.push_ticket(ticket.id)
            return
        if principal.purpose != CONSOLE:
            return  # a board page asks again with board.watch
        staff_id = int(principal.id)
        async with self.db.read() as s:
            row = await s.get(StaffPresence, staff_id)
            ticket = await s.get(Ticket, row.ticket_id) if row and row.ticket_id else None
            summary = frames.ticket_summary(ticket) if ticket is not None else None
            # Who transferred the call: read only for a ring to send again.
            transfers = (
                await transfer.transferred_by(s, [ticket.id])
                if ticket is not None and row is not None and row.state == "ringing"
                else {}
            )
        await self.center.presence.send_snapshots(staff_id)
        if row is None or ticket is None or summary is None:
            return
        if row.state == "ringing" and ticket.status == "offered":
            left = ticket.department.ring_seconds - (utcnow() - row.since).total_seconds()
            ring = frames.ring_frame(summary, max(1, round(left)), transfers.get(ticket.id))
            await self.hub.send(session.id, ring)
        elif row.state == "wrapup" and ticket.status == "wrapup":
            left = ticket.department.wrapup_seconds - (utcnow() - row.since).total_seconds()
            async with self.db.read() as s:
                proposal = await outcomes.proposed_outcome(s, ticket, ticket.end_reason)
            await self.hub.send(
                session.id,
                {"type": "wrapup", "ticket": ticket.id, "seconds": max(1, round(left)),
                 "outcome": proposal, "version": ticket.version,
                 "end_reason": ticket.end_reason},
            )  # fmt: skip

    async def session_ended(self, session: Session, reason: str) -> None:
        principal = session.principal
        self.center._board_watchers.discard(session.id)
        log_event(
            "session.ended",
            kind=principal.kind,
            principal=principal.id,
            session=session.id,
            reason=reason,
        )
        if principal.kind == "kiosk":
            await self.gone("kiosk", int(principal.id), session.id, reason)
        elif principal.purpose == CONSOLE:
            await self.gone("staff", int(principal.id), session.id, reason)
        # a board page: nobody else is affected

    async def gone(self, kind: str, principal_id: int, session_id: str, reason: str) -> None:
        """A kiosk's session or a staff console's ended (here, or on a node that died: the
        orphans watcher): what it held goes back to the queue, and routing runs."""
        if kind == "kiosk":
            if not await self.center.tickets.kiosk_gone(principal_id, session_id, reason):
                return  # nothing queued or in a call: nobody else is affected
        else:
            await self.center.presence.staff_gone(principal_id, session_id)
        self.pushes.schedule_queues()
        await self.center.routing.dispatch()

    async def sign_out_staff(self, staff_id: int) -> None:
        """End every session of the staff member (console and board): they signed out."""
        for session in self.hub.find_sessions("staff", str(staff_id)):
            await self.hub.end_session(session, "signed_out")

    async def revoke_kiosk_sessions(self, kiosk_id: int) -> None:
        """End the revoked kiosk's sessions, for good (it cannot resume)."""
        for session in self.hub.find_sessions("kiosk", str(kiosk_id)):
            await self.hub.end_session(session, "revoked", CLOSE_REVOKED)
