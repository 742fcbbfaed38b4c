"""The call centre's background loops, each run guarded (callcenter.tasks.run_guarded):

- revocations: kiosks revoked by another process (the CLI) are disconnected within seconds;
- warnings: time-out warnings checked every few seconds, the board kept fresh meanwhile;
- rollups: today's daily figures rebuilt while a board shows them (a push never writes them):
  every TODAY_MAX_AGE, and TODAY_GAP_SECONDS after a change the board heard of;
- ended calls: what this node gathered of a call another node ended (one side's quality
  figures, its session log) is saved or forgotten within seconds;
- orphans: the kiosk sessions and consoles of a node that died are ended as their node would
  have ended them.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from cloudhelp.callcenter.calls import SCREEN_LOG_MAX
from cloudhelp.core.clock import today
from cloudhelp.core.logs import log_event
from cloudhelp.domain import accounts, metrics, netquality, presence, queue
from cloudhelp.views import board

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

REVOCATION_CHECK_SECONDS = 3.0
BOARD_REFRESH_SECONDS = 10.0  # the board is pushed at least this often while someone watches
CASE_WARNING_CHECK_SECONDS = 60.0  # case and follow-up deadlines move by the day
ENDED_CALLS_CHECK_SECONDS = 5.0
# After a change the board heard of (a ticket taken, a call answered…), today's figures are
# rebuilt this long after the last rebuild at the soonest: the tiles follow the live panels within
# seconds, and a busy hall costs one rebuild per gap, not one per change.
TODAY_GAP_SECONDS = 2.0
# How often rows naming sessions no node holds are looked for (see Watchers.end_orphans).
ORPHAN_CHECK_SECONDS = 5.0


class Watchers:
    """Starts the loops; CallCenter.stop() stops them (TaskSet.stop cancels and awaits)."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self._rollups_due = asyncio.Event()
        self._rollups_last = 0.0  # loop time of the last rebuild of today's figures
        self._rollups_soon: asyncio.TimerHandle | None = None
        self._last_board = self._last_full = 0.0
        # Sessions rows named that no node held at the last check: since when (loop time).
        self._unheld_since: dict[str, float] = {}

    def start(self) -> None:
        tasks = self.center._tasks
        tasks.loop("kiosks.revocation_check", self.check_revocations, REVOCATION_CHECK_SECONDS)
        tasks.loop("calls.ended_elsewhere", self.forget_ended_calls, ENDED_CALLS_CHECK_SECONDS)
        tasks.loop("sessions.orphans", self.end_orphans, ORPHAN_CHECK_SECONDS)
        # The board's figures may lag TODAY_MAX_AGE behind: rebuilt that often while watched.
        seconds = board.TODAY_MAX_AGE.total_seconds()
        tasks.loop("rollups.refresh", self.refresh_rollups, seconds, wake=self._rollups_due)
        interval = self.center.warning_check_seconds
        if interval > 0:  # 0: whoever needs them calls check_warnings (tests)
            tasks.loop("warnings.check", self.check_warnings, interval)

    async def check_revocations(self) -> None:
        """Disconnect the kiosks connected here whose credential has been revoked. Costs the
        few kiosks without a credential, not the connected ones (a walk over 5,000 sessions
        every 3 s held the loop ~5 ms: benchmarks/loop_probe.py)."""
        hub = self.center.hub
        async with self.db.read() as s:
            without = await accounts.kiosks_without_credential(s)
        connected = [k for k in without if hub.find_sessions("kiosk", str(k))]
        if not connected:
            return
        # Read again before ending anything: a kiosk enrolled while the first read ran, whose
        # page connected with its new credential meanwhile, has a credential now (a CI run saw
        # such a kiosk told 本终端已被停用 right after its enrolment).
        async with self.db.read() as s:
            still_without = await accounts.kiosks_without_credential(s)
        for kiosk_id in connected:
            if kiosk_id in still_without:
                await self.center.revoke_kiosk_sessions(kiosk_id)

    async def check_warnings(self) -> None:
        """Check the time-out warnings (every kind once a minute); keep the board's figures
        fresh when nothing changed for a while."""
        loop = asyncio.get_running_loop()
        every_kind = loop.time() - self._last_full >= CASE_WARNING_CHECK_SECONDS
        changed = await self.center.check_warnings(every_kind=every_kind)
        if every_kind:
            self._last_full = loop.time()
        if not changed and loop.time() - self._last_board >= BOARD_REFRESH_SECONDS:
            await self.center.pushes.push_board()
            self._last_board = loop.time()

    async def forget_ended_calls(self) -> None:
        """A call's members may be on two nodes, each gathering its own member's reports;
        the node that ends the call saves what it holds. The other node saves its side here:
        its quality figures (one row per side) and its part of the session log (chat lines and
        screen toggles, added to the event that ended the call)."""
        center = self.center
        rooms = set(center.quality.calls) | set(center._call_log)
        if not rooms:
            return
        async with self.db.read() as s:
            ended = await netquality.ended_calls(s, (int(r.removeprefix("call-")) for r in rooms))
        for call_id in ended:
            log = center._call_log.pop(f"call-{call_id}", None)
            figures = center.quality.take(f"call-{call_id}")
            if figures is None and not log:
                continue
            async with self.db.write() as s:
                if figures is not None:
                    await netquality.save_summaries(s, call_id, figures.ticket_id, figures)
                if log:
                    await queue.merge_call_log(s, call_id, log, SCREEN_LOG_MAX)

    async def end_orphans(self) -> None:
        """End the sessions that ticket and console rows name but no node holds: their node
        died (SIGKILL, power) with nobody left to end them. Each ends as on its own node
        (``Sessions.gone``): a queued ticket is abandoned, a call ends, a ring goes to someone
        else, the staff member is offline. A console ends once unheld on two checks in a row;
        a kiosk only once unheld for the grace time, as its own node would have waited for it
        to come back. A kiosk or console that came back (hello on another node) holds its row
        under a new session, so nothing happens to it. The broker sees a dead process at once;
        a machine lost with its connections open counts as held until its registrations
        expire (``topic_ttl``, 15 s). While the broker cannot reach Redis, nothing is decided
        (and no clock restarts)."""
        center, hub = self.center, self.center.hub
        if not hub.broker.healthy:
            return  # the other nodes cannot be asked: nothing is known, the clocks run on
        async with self.db.read() as s:
            consoles = await presence.console_sessions(s)
            kiosks = await queue.kiosk_sessions(s)
        named = {sid: ("staff", staff_id) for sid, staff_id in consoles.items()}
        named |= {sid: ("kiosk", kiosk_id) for sid, kiosk_id in kiosks.items()}
        now = asyncio.get_running_loop().time()
        unheld = {
            sid: self._unheld_since.get(sid, now)
            for sid in named
            if sid not in hub.sessions and not await hub.session_alive(sid)
        }
        if not hub.broker.healthy:
            return  # lost meanwhile: a probe kept for later answered "held" without asking
        self._unheld_since = unheld
        grace = hub.settings.grace_seconds
        orphans = [
            sid
            for sid, since in unheld.items()
            if since < now and (named[sid][0] == "staff" or now - since >= grace)
        ]
        for session_id in sorted(orphans):
            kind, principal_id = named[session_id]
            log_event("session.orphaned", kind=kind, principal=principal_id, session=session_id)
            await center.sessions.gone(kind, principal_id, session_id, "node_gone")
            self._unheld_since.pop(session_id, None)

    def refresh_rollups_soon(self) -> None:
        """Have the rollups loop run now (a board was opened) rather than at its next turn."""
        self._rollups_due.set()

    async def on_board_notice(self, _message: dict[str, Any]) -> None:
        """Something the board shows changed, on any node: today's figures are rebuilt
        TODAY_GAP_SECONDS after the last rebuild at the soonest (one wake-up for many changes)."""
        if self._rollups_soon is not None or not self.center._board_watchers:
            return
        loop = asyncio.get_running_loop()
        wait = max(0.0, self._rollups_last + TODAY_GAP_SECONDS - loop.time())
        self._rollups_soon = loop.call_later(wait, self._wake_rollups)

    def _wake_rollups(self) -> None:
        self._rollups_soon = None
        self._rollups_due.set()

    async def refresh_rollups(self) -> None:
        """While anyone watches the board, rebuild today's rollup rows (run every
        TODAY_MAX_AGE, so the figures lag no more than that) and push the board."""
        center = self.center
        if not center._board_watchers:
            return
        self._rollups_last = asyncio.get_running_loop().time()
        day = today()
        if await metrics.refresh(self.db, day, day, timedelta(0), center.metric_rules):
            await center.pushes.push_board()
