"""The supervisors' board over the WebSocket, and the time-out warnings it and the consoles
are told of (raised, cleared, acknowledged)."""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

from cloudhelp.callcenter.messages import AckWarning, WatchBoard
from cloudhelp.core.errors import must_exist
from cloudhelp.core.logs import log_event
from cloudhelp.domain import timeouts
from cloudhelp.store.models import SUPERVISOR_ROLES, Staff, utcnow
from signaling.errors import SignalingError
from signaling.hub import Session

if TYPE_CHECKING:
    from cloudhelp.callcenter.center import CallCenter


class Board:
    """Board watchers (supervisors' board sessions) and the warnings pushed to them."""

    def __init__(self, center: CallCenter) -> None:
        self.center = center
        self.db = center.db
        self.gate = center._gate
        self.pushes = center.pushes
        self.watchers = center._board_watchers

    async def on_watch_board(self, session: Session, message: WatchBoard) -> None:
        if session.principal.info.get("role") not in SUPERVISOR_ROLES:
            raise SignalingError("forbidden", "The board is for supervisors.")
        self.watchers.add(session.id)
        self.gate.reset(f"board:{session.id}")
        stamp = self.gate.read()
        frame = await self.pushes.board_frame()
        await self.pushes.send_if_changed(f"board:{session.id}", session.id, frame, stamp)
        self.center.watchers.refresh_rollups_soon()  # today's figures, as fresh as allowed

    async def on_ack_warning(self, session: Session, message: AckWarning) -> None:
        async with self.db.write() as s:
            staff_id = int(session.principal.id)
            staff = must_exist(await s.get(Staff, staff_id), f"staff {staff_id}")
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
        """Tell the consoles of ``staff_ids`` the warnings now (through the hub, on whichever
        node), and every node's board watchers soon."""
        for staff_id in staff_ids:
            await self.pushes.push_warnings(staff_id)
        self.pushes.board_changed()
