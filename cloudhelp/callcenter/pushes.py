"""Snapshots pushed to kiosks, consoles and boards, in order, and coalesced.

Every change is written to the database before it is announced; an announcement reads the
rows again and sends a snapshot. :class:`SnapshotGate` keeps an older snapshot from ever
following a newer one for the same key. A change the board shows is broadcast through the
hub's broker (``board.changed`` on ``BOARD_CHANNEL``) to every node, each of which pushes the
board to its own watchers.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Callable
from typing import Any

from cloudhelp.callcenter import frames
from cloudhelp.callcenter.tasks import TaskSet
from cloudhelp.domain import estimates, presence, queue, timeouts
from cloudhelp.store.db import Database
from cloudhelp.store.models import StaffPresence, Ticket, utcnow
from cloudhelp.views import board, warning_labels
from signaling.hub import Hub
from signaling.session import Encoded

Order = int | tuple[int, ...]
# A snapshot key (a ticket, a ring, a board page…) not used for this long is forgotten, so the
# gate holds only what is current, not every ticket ever seen: memory levels off after this
# long, however many calls. No read is in flight that long (SQLite's busy timeout is 5 s).
SNAPSHOT_IDLE_SECONDS = 30.0
PUSH_COALESCE_SECONDS = 0.05
BOARD_COALESCE_SECONDS = 1.0  # the board is pushed at most once a second
BOARD_CHANNEL = "board"  # the broker channel of board.changed notices
QUEUE_LIST_LIMIT = 50


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


def ring_key(ticket_id: int, staff_id: int) -> str:
    """The gate key of a ticket's ring at one staff member's console (``ring`` and
    ``ring.cancelled``): per staff member, so that a cancel to one is never held back by the
    ticket's next ring at another's."""
    return f"ring:{ticket_id}:{staff_id}"


def _as_tuple(order: Order) -> tuple[int, ...]:
    return order if isinstance(order, tuple) else (order,)


class Pushes:
    """Sends the snapshots: a kiosk's ticket, a console's presence, queue and warnings, and
    the board to every supervisor watching it (``board_watchers``: their session ids)."""

    def __init__(
        self,
        database: Database,
        hub: Hub,
        gate: SnapshotGate,
        tasks: TaskSet,
        board_watchers: set[str],
    ) -> None:
        self.db = database
        self.hub = hub
        self.gate = gate
        self.tasks = tasks
        self.board_watchers = board_watchers
        self._push_pending = False
        self._tell_nodes = False  # the pending queue push follows a change made here
        self._push_seconds = 0.0  # how long the last queue push took
        # Names this process's notices: a node pushes queue state to the sessions it holds
        # when another node's notice says the queues changed (never for its own).
        self.origin = secrets.token_hex(6)
        self._notice_queues = False
        self._board_pending = False
        self._board_pushed = -BOARD_COALESCE_SECONDS  # monotonic time of the last board push
        self._notice_pending = False
        # Each call's quality now, by ticket number (the call centre's Quality.board_view).
        self.call_quality: Callable[[], dict[str, dict[str, Any]]] = dict

    async def send_if_changed(
        self, key: str, session_id: str | None, message: dict[str, Any], order: Order
    ) -> None:
        """Send a snapshot unless it is unchanged or older than the last one sent for ``key``
        (no await between the check and the send: frames leave in the order admitted)."""
        if session_id is None or not self.gate.admit(key, order, message):
            return
        await self.hub.send(session_id, message)

    async def send_staff(
        self, staff_id: int, message: dict[str, Any], gate: tuple[str, Order] | None = None
    ) -> None:
        """Send to the staff member's console; with ``gate`` (key, order) only if nothing newer
        was sent for that key (see SnapshotGate)."""
        async with self.db.read() as s:
            session_id = await presence.console_session(s, staff_id)
        if not session_id:
            return
        if gate is not None and not self.gate.admit(gate[0], gate[1], message):
            return
        await self.hub.send(session_id, message)

    async def push_ticket(self, ticket_id: int) -> None:
        """Tell the kiosk about its ticket (queued tickets go through ``push_queues`` too)."""
        stamp = self.gate.read()
        async with self.db.read() as s:
            ticket = await s.get(Ticket, ticket_id)
            if ticket is None or ticket.session_id is None:
                return
            estimate = None
            if ticket.status in queue.QUEUED:
                queued = await queue.queued_tickets(s)
                estimate = (await estimates.queue_estimates(s, queued)).get(ticket_id)
            body = frames.ticket_body(ticket, estimate)
        await self.send_if_changed(
            f"ticket:{ticket_id}",
            ticket.session_id,
            {"type": "ticket", "ticket": body, "_key": "ticket"},
            (ticket.version, stamp),
        )

    async def push_presence(self, staff_id: int) -> None:
        """Send the staff member's console its presence snapshot."""
        stamp = self.gate.read()
        async with self.db.read() as s:
            row = await s.get(StaffPresence, staff_id)
        if row is None:
            return
        message = frames.presence_frame(row)
        await self.send_if_changed(f"presence:{staff_id}", row.session_id, message, stamp)

    async def push_warnings(self, staff_id: int) -> None:
        """Send the staff member's console the time-out warnings that concern them."""
        stamp = self.gate.read()
        async with self.db.read() as s:
            session_id = await presence.console_session(s, staff_id)
            mine = timeouts.by_severity(await timeouts.active(s, staff_id))
        message = {
            "type": "warnings",
            "warnings": [warning_labels.warning_json(w) for w in mine],
            "_key": "warnings",
        }
        await self.send_if_changed(f"warnings:{staff_id}", session_id, message, stamp)

    def schedule_queues(self, tell_nodes: bool = True) -> None:
        """Push queue state soon to the sessions held here; events close together share one
        push. ``tell_nodes``: the change was made here, so the other nodes are told to push
        to theirs (a notice from another node pushes here without telling anyone)."""
        self._tell_nodes = self._tell_nodes or tell_nodes
        if self._push_pending:
            return
        self._push_pending = True
        self.tasks.spawn(self._soon())

    async def _soon(self) -> None:
        # A push that took long waits as long again before the next: pushes never take more
        # than about half of the loop, whatever the size of the queue.
        await asyncio.sleep(max(PUSH_COALESCE_SECONDS, self._push_seconds))
        self._push_pending = False
        tell_nodes, self._tell_nodes = self._tell_nodes, False
        started = time.monotonic()
        await self.push_queues()
        self._push_seconds = time.monotonic() - started
        if tell_nodes:
            self.board_changed(queues=True)

    async def push_queues(self) -> None:
        """Send each waiting kiosk its position and estimate, and each staff member their queue,
        for the sessions held here. Each session's queue state comes from the node holding it
        only: the gate remembers what this node sent, and a list sent by another node would
        make that memory wrong (a console left showing a ticket already answered)."""
        stamp = self.gate.read()
        held = self.hub.sessions
        async with self.db.read() as s:
            queued = await queue.queued_tickets(s)
            estimated = await estimates.queue_estimates(s, queued)
            online = await presence.online_staff(s)
            handles = await presence.skill_sets(s, [p.staff_id for p in online])
        summaries = {t.id: frames.ticket_summary(t) for t in queued}
        for ticket in queued:
            if ticket.session_id not in held:
                continue
            body = frames.ticket_body(ticket, estimated[ticket.id])
            message = {"type": "ticket", "ticket": body, "_key": "ticket"}
            await self.send_if_changed(
                f"ticket:{ticket.id}", ticket.session_id, message, (ticket.version, stamp)
            )
        now = utcnow()
        # Staff who handle the same departments and items see the same list: it is built and
        # serialised once for all of them.
        groups: dict[tuple[frozenset[int], frozenset[int]], list[StaffPresence]] = {}
        for row in online:
            if row.session_id in held:
                handled = handles[row.staff_id]
                groups.setdefault((frozenset(handled[0]), frozenset(handled[1])), []).append(row)
        for (departments, items), rows in groups.items():
            visible = [t for t in queued if t.department_id in departments or t.item_id in items]
            # Waiting seconds change every second: push when the list itself changes.
            signature = [(t.id, t.status) for t in visible]
            listing: Encoded | None = None
            for row in rows:
                # Admitted and sent with no await in between (see send_if_changed).
                if row.session_id is None or not self.gate.admit(
                    f"queue:{row.staff_id}", stamp, signature
                ):
                    continue
                if listing is None:
                    tickets = [
                        summaries[t.id]
                        | {"waiting_seconds": int((now - t.enqueued_at).total_seconds())}
                        for t in visible[:QUEUE_LIST_LIMIT]
                    ]
                    listing = Encoded.of(
                        {"type": "queue", "tickets": tickets, "total": len(visible),
                         "_key": "queue"}
                    )  # fmt: skip
                await self.hub.send(row.session_id, listing)

    async def board_frame(self) -> dict[str, Any]:
        """The board snapshot (from the rollups as they are: pushes never write them)."""
        frame = await board.snapshot(self.db, utcnow())
        quality = self.call_quality()
        for call in frame["calls"]:
            call["quality"] = quality.get(call["ticket"])
        return frame | {"_key": "board"}

    def board_changed(self, queues: bool = False) -> None:
        """Something the board shows changed (written already): tell every node, this one
        included, to push the board to its watchers soon."""
        self._notice_queues = self._notice_queues or queues
        if self._notice_pending:
            return
        self._notice_pending = True
        self.tasks.spawn(self._notify_board())

    async def _notify_board(self) -> None:
        # Cleared first: a change written while this notice is on its way sends another.
        self._notice_pending = False
        queues, self._notice_queues = self._notice_queues, False
        notice = {"type": "board.changed", "origin": self.origin, "queues": queues}
        await self.hub.broker.broadcast(BOARD_CHANNEL, notice)

    async def on_board_notice(self, message: dict[str, Any]) -> None:
        """A node (this one or another) changed what the board shows; another node's change
        of the queues is pushed to the sessions held here."""
        self.schedule_board()
        if message.get("queues") and message.get("origin") != self.origin:
            self.schedule_queues(tell_nodes=False)

    def schedule_board(self) -> None:
        """Push the board to whoever watches it here: now, or a second after the last push
        (at most once a second)."""
        if self._board_pending or not self.board_watchers:
            return
        self._board_pending = True
        self.tasks.spawn(self._board_soon())

    async def _board_soon(self) -> None:
        due = self._board_pushed + BOARD_COALESCE_SECONDS - time.monotonic()
        await asyncio.sleep(max(0.0, due))
        self._board_pending = False
        await self.push_board()

    async def push_board(self) -> None:
        """Send the board to every supervisor watching it."""
        if not self.board_watchers:
            return
        self._board_pushed = time.monotonic()
        stamp = self.gate.read()
        message = await self.board_frame()
        for session_id in list(self.board_watchers):
            await self.send_if_changed(f"board:{session_id}", session_id, message, stamp)
