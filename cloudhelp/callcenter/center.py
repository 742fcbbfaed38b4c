"""CallCenter: the hub's application for kiosks and staff, a façade over the call centre's parts.

The façade owns the in-memory state the parts share (snapshot gate, timers, tasks, call logs,
board watchers: one place to see what the call centre holds), wires the parts and the
message handlers, and is what the rest of the server calls (start, stop, dispatch,
check_warnings, warnings_changed, sign_out_staff, revoke_kiosk_sessions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from cloudhelp.callcenter import messages as m
from cloudhelp.callcenter.board import Board
from cloudhelp.callcenter.calls import Calls
from cloudhelp.callcenter.expiries import Expiries
from cloudhelp.callcenter.netcheck import Netcheck
from cloudhelp.callcenter.presence import Presence
from cloudhelp.callcenter.pushes import BOARD_CHANNEL, Pushes, SnapshotGate
from cloudhelp.callcenter.quality import QUALITY_CHANNEL, Quality
from cloudhelp.callcenter.routing import Routing
from cloudhelp.callcenter.sessions import REPLACED_CHANNEL, Sessions
from cloudhelp.callcenter.tasks import TaskSet, Timers
from cloudhelp.callcenter.tickets import Tickets
from cloudhelp.callcenter.watchers import Watchers
from cloudhelp.domain import metrics, presence, queue, ratings
from cloudhelp.store.db import Database
from cloudhelp.store.models import utcnow
from cloudhelp.store.outage import is_unavailable
from signaling.errors import SignalingError
from signaling.hub import Hub, HubSettings, Principal, Session


def database_failure(exc: Exception) -> SignalingError | None:
    """The error frame for a handler that failed because the database is out (the client
    says "briefly unavailable" and retries), or None for any other failure (a bug)."""
    if is_unavailable(exc):
        return SignalingError(
            "service_unavailable",
            "The service is briefly unavailable (its database cannot be reached); retry shortly.",
        )
    return None


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
        netcheck_max_peers: int = 4,
        netcheck_seconds: float = 10.0,
    ) -> None:
        self.db = database
        self.secret_key = secret_key  # checks the grants of kiosk case lookups
        self.hub = Hub(self, hub_settings, broker, failures=database_failure)
        self.prefer_reviewer_seconds = prefer_reviewer_seconds
        # The clock the appointment rules read (check-in window, no-shows): tests set it to
        # walk through a campaign's days.
        self.appointment_clock: Callable[[], datetime] = utcnow
        self.follow_up_working_days = follow_up_working_days
        self.warning_check_seconds = warning_check_seconds
        self.metric_rules = metric_rules or metrics.DEFAULT_RULES
        # The shared state.
        self._gate = SnapshotGate()
        self._tasks = TaskSet(closing=lambda: self.hub.closing)
        self._timers = Timers(self._tasks)
        self.expiries = Expiries(self)  # deadlines kept in the database, and their timers
        self._call_log: dict[str, dict[str, Any]] = {}  # call room → its session log so far
        self._board_watchers: set[str] = set()  # session ids of boards being watched
        # The parts (each takes what it needs from the façade).
        self.pushes = Pushes(database, self.hub, self._gate, self._tasks, self._board_watchers)
        self.sessions = Sessions(self)
        self.tickets = Tickets(self)
        self.routing = Routing(self)
        self.calls = Calls(self)
        self.presence = Presence(self)
        self.board = Board(self)
        self.watchers = Watchers(self)
        self.quality = Quality(self)
        self.netcheck = Netcheck(self, netcheck_max_peers, netcheck_seconds)
        self.pushes.call_quality = self.quality.board_view
        self._register()

    def _register(self) -> None:
        hub, console = self.hub, m.console_only
        tickets, routing, calls = self.tickets, self.routing, self.calls
        hub.register("ticket.take", m.TakeTicket, tickets.on_take, {"kiosk"})
        hub.register("ticket.cancel", m.CancelTicket, tickets.on_cancel, {"kiosk"})
        hub.register("call.hangup", m.Hangup, console(calls.on_hangup), {"kiosk", "staff"})
        hub.register("staff.status", m.StaffStatus, console(self.presence.on_status), {"staff"})
        hub.register("ring.accept", m.OfferReply, console(routing.on_offer_reply), {"staff"})
        hub.register("ring.decline", m.OfferReply, console(routing.on_offer_reply), {"staff"})
        hub.register("ticket.pick", m.PickTicket, console(routing.on_pick), {"staff"})
        hub.register("wrapup.done", m.WrapupDone, console(calls.on_wrapup_done), {"staff"})
        hub.register("ticket.transfer", m.TransferTicket, console(routing.on_transfer), {"staff"})
        hub.register("rating.submit", m.SubmitRating, calls.on_rating, {"kiosk"})
        hub.register("board.watch", m.WatchBoard, self.board.on_watch_board, {"staff"})
        hub.register("warning.ack", m.AckWarning, self.board.on_ack_warning, {"staff"})
        hub.register("netcheck.offer", m.NetcheckOffer, self.netcheck.on_offer, {"kiosk"})
        hub.register("netcheck.result", m.NetcheckResult, self.netcheck.on_result, {"kiosk"})
        stats = console(self.quality.on_stats)
        hub.register("call.stats", m.CallStats, stats, {"kiosk", "staff"})

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Recover after a (re)start, then start the background loops. Waiting tickets keep
        their place; rows whose sessions are still held by another server process (asked
        through the broker) are left alone. A queued ticket without a kiosk session is
        abandoned unless its kiosk comes back within the grace time; the deadline sweep fires
        what a previous process left due."""
        alive, now = self.hub.session_alive, utcnow()
        abandon_at = now + timedelta(seconds=self.hub.settings.grace_seconds)
        async with self.db.write() as s:
            await presence.reset_after_restart(s, alive, now)
            unattended = await queue.recover_after_restart(s, alive, abandon_at)
        for ticket_id, deadline in unattended.items():
            self.expiries.arm("abandon", ticket_id, deadline)
        self.expiries.start()
        await self.hub.broker.listen(BOARD_CHANNEL, self.pushes.on_board_notice)
        await self.hub.broker.listen(BOARD_CHANNEL, self.watchers.on_board_notice)
        await self.hub.broker.listen(QUALITY_CHANNEL, self.quality.on_shared)
        await self.hub.broker.listen(REPLACED_CHANNEL, self.sessions.on_replaced)
        self.watchers.start()

    async def stop(self) -> None:
        """Stop the loops (cancelled and awaited) and the timers, close the sockets, and let
        running work finish. Safe to call twice."""
        await self.hub.broker.unlisten(BOARD_CHANNEL, self.pushes.on_board_notice)
        await self.hub.broker.unlisten(BOARD_CHANNEL, self.watchers.on_board_notice)
        await self.hub.broker.unlisten(QUALITY_CHANNEL, self.quality.on_shared)
        await self.hub.broker.unlisten(REPLACED_CHANNEL, self.sessions.on_replaced)
        await self._tasks.stop_loops()
        self._timers.cancel_all()
        await self.netcheck.echo.close_all()
        await self.hub.close()
        await self._tasks.stop()

    # ------------------------------------------------------------------ hub application

    async def authenticate(self, auth: dict[str, Any] | None, request: web.Request) -> Principal:
        return await self.sessions.authenticate(auth, request)

    async def may_resume(self, session: Session, request: web.Request) -> bool:
        return await self.sessions.may_resume(session, request)

    async def session_started(self, session: Session) -> None:
        await self.sessions.session_started(session)

    async def session_resumed(self, session: Session, reloaded: bool) -> None:
        await self.sessions.session_resumed(session, reloaded)

    async def session_ended(self, session: Session, reason: str) -> None:
        self.quality.forget(session.id)
        await self.netcheck.forget(session.id)
        await self.sessions.session_ended(session, reason)

    async def session_moved(self, session: Session) -> None:
        self.quality.forget(session.id)
        await self.netcheck.forget(session.id)
        self.sessions.session_moved(session)

    def relayed(self, session: Session, message: dict[str, Any]) -> None:
        self.calls.relayed(session, message)

    # ------------------------------------------------------------------ for the server

    async def dispatch(self) -> None:
        """Offer waiting tickets to available staff whose skills cover the item."""
        await self.routing.dispatch()

    def quiet(self) -> bool:
        """No call in progress, no ring pending, no dispatch pass running: a moment when a
        pause of the event loop delays nobody's call (core/gcpolicy.FullPasses)."""
        return (
            not self.hub.any_in_call()
            and not any(kind == "ring" for kind, _ in self._timers)
            and not self.routing.busy
        )

    async def check_warnings(self, now: datetime | None = None, every_kind: bool = True) -> bool:
        """Raise and clear time-out warnings as of ``now``; push what changed."""
        return await self.board.check_warnings(now, every_kind)

    async def warnings_changed(self, staff_ids: set[int]) -> None:
        """A warning changed outside the call centre (acknowledged over HTTP): push it."""
        await self.board.warnings_changed(staff_ids)

    async def sign_out_staff(self, staff_id: int) -> None:
        await self.sessions.sign_out_staff(staff_id)

    async def revoke_kiosk_sessions(self, kiosk_id: int) -> None:
        await self.sessions.revoke_kiosk_sessions(kiosk_id)

    # Seams the ordering tests hold (tests/test_queue_core.py): a queue push, and a ring's
    # announcement, which routing makes through here.

    async def _push_all(self) -> None:
        await self.pushes.push_queues()

    async def _announce_offers(self, pairs: Sequence[tuple[int, int]]) -> None:
        await self.routing.announce_offers(pairs)
