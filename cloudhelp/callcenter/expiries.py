"""Deadlines firing (cloudhelp.domain.deadlines): on time from the server process that set
them, and from a sweep on every process, which fires what a process that died left behind.

The process that sets a deadline arms an in-process timer for it (Timers), a little after it:
the fast path. Whatever comes first, that timer or any process's sweep (every
``SWEEP_SECONDS``), claims the deadline in the database, and only the claimer does its work.

The sweep also runs a dispatch pass, so a ticket queued or a staff member made available on
another process is offered from here within a sweep; a pass claims each offer in the
database, so it is safe to run on any process at any time.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import TYPE_CHECKING

from cloudhelp.domain import deadlines
from cloudhelp.domain.deadlines import Kind
from cloudhelp.store.models import utcnow

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter

SWEEP_SECONDS = 1.0
# The in-process timer fires this long after the deadline, so that the claim (which compares
# with the wall clock) finds it due.
LATE_MARGIN_SECONDS = 0.05


class Expiries:
    """Arms the in-process timer of each deadline set here; sweeps for due ones everywhere."""

    def __init__(self, center: CallCenter, sweep_seconds: float = SWEEP_SECONDS) -> None:
        self.center = center
        self.db = center.db
        self.timers = center._timers
        self.sweep_seconds = sweep_seconds

    def arm(self, kind: Kind, key: int, deadline: datetime) -> None:
        """Fire the deadline of ``kind`` on row ``key``, just set to ``deadline``, on time."""
        seconds = max(0.0, (deadline - utcnow()).total_seconds()) + LATE_MARGIN_SECONDS
        self.timers.arm(kind, key, seconds, functools.partial(self.fire, kind, key))

    def start(self) -> None:
        """Start the sweep; its first pass, a sweep after start-up, fires what a previous
        process left due."""
        self.center._tasks.loop("deadlines.sweep", self.sweep, self.sweep_seconds)

    async def sweep(self) -> None:
        """Fire every deadline due now (claimed one by one), then run a dispatch pass."""
        async with self.db.read() as s:
            due = await deadlines.due(s, utcnow())
        for kind, key in due:
            await self.fire(kind, key)
        await self.center.routing.dispatch()

    async def fire(self, kind: Kind, key: int) -> None:
        """Claim the deadline and do its work, if it is due and nobody has."""
        center = self.center
        if kind == "ring":
            await center.routing.ring_expired(key)
        elif kind == "wrapup":
            await center.calls.wrapup_expired(key)
        else:
            await center.tickets.abandon_expired(key)
