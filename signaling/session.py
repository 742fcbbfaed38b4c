"""A client's session: who it is, and the messages kept for replay until acknowledged.

A session outlives its socket for the hub's grace period; a client that comes back resumes it
and is sent what it missed (``attach``), bounded in bytes (``HISTORY_BYTES``), snapshots
replacing their elders. ``handover``/``restored`` carry a session to another process.

The client numbers its own messages (``cseq``) and keeps them until the server says it has
them (``received``, in ``welcome`` and ``pong``); after a resume it sends again what the server
never got, and ``receive`` drops what arrives twice.

Invariants: the kept history's seqs increase and are all above ``_lost`` and at most ``_seq``;
``_history_bytes`` is the sum of their lengths; ``received`` only grows, except when a reloaded
page (which lost its numbering) resumes the session.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from signaling.errors import SignalingError

# Kept for replay per session until acknowledged (ping.seq); snapshots replace their elders.
HISTORY_BYTES = 256 * 1024


@dataclass(frozen=True)
class Principal:
    """Who a session belongs to. ``kind`` gates message types; ``info`` is shown to peers.

    ``purpose`` tells apart the sessions one person holds at once for different pages (a staff
    member's console and their board): a new sign-in replaces only a session of the same purpose.
    """

    kind: str
    id: str
    info: dict[str, Any] = field(default_factory=dict)
    purpose: str = ""


def dumps(message: dict[str, Any]) -> str:
    """A message as compact JSON text (non-ASCII kept as is)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


class Encoded:
    """A message serialised once (without ``_key``), however many sessions it goes to, and
    carried as that text to sessions in other processes (``brokered``).

    ``body`` is a JSON object with at least one member, so ``seq`` can be appended to it.
    """

    __slots__ = ("body", "key")

    def __init__(self, body: str, key: str | None = None) -> None:
        self.body = body
        self.key = key

    @classmethod
    def of(cls, message: dict[str, Any]) -> Encoded:
        """``message`` serialised; its ``_key``, if any, makes it a snapshot."""
        key = message.get("_key")
        if key is None:
            return cls(dumps(message))
        return cls(dumps({k: v for k, v in message.items() if k != "_key"}), key)

    def brokered(self) -> dict[str, Any]:
        """What goes through the broker to a session in another process: the text itself, not
        the message again (its holder writes ``body`` as it is: ``Hub._deliver``)."""
        if self.key is None:
            return {"type": "_encoded", "body": self.body}
        return {"type": "_encoded", "body": self.body, "key": self.key}


class Session:
    """One client's session; outlives its socket for the grace period."""

    __slots__ = ("_grace", "_history", "_history_bytes", "_lost", "_seq", "ended", "id",
                 "initiator", "peers", "principal", "received", "room", "started", "token",
                 "ws")  # fmt: skip

    def __init__(self, principal: Principal) -> None:
        self.id: str = secrets.token_urlsafe(12)
        self.token: str = secrets.token_urlsafe(32)
        self.principal = principal
        # When it began (wall clock, comparable across processes): which of a principal's
        # sessions on two nodes is the newer (a newer sign-in replaces the older one).
        self.started: float = time.time()
        self.ws: web.WebSocketResponse | None = None
        self.room: str | None = None
        self.peers: dict[str, dict[str, Any]] = {}
        self.initiator = False
        self.ended = False
        self._seq = 0
        self._history: deque[tuple[int, str, str | None]] = deque()
        self._history_bytes = 0
        self._lost = 0  # the newest seq dropped unacknowledged to respect HISTORY_BYTES
        self._grace: asyncio.TimerHandle | None = None
        # The newest ``cseq`` of the client's handled so far; None when not known (re-created
        # from a card: what its dead holder received died with it).
        self.received: int | None = 0

    def receive(self, cseq: int) -> bool:
        """Whether the client's message numbered ``cseq`` is new (it is recorded as received);
        False for one handled already (sent again after a resume that raced its first copy)."""
        if self.received is not None and cseq <= self.received:
            return False
        self.received = cseq
        return True

    async def send(self, message: dict[str, Any] | Encoded) -> None:
        """Number the message, keep it for replay, and write it if a socket is attached.

        A message with a ``_key`` is a snapshot (a queue list, a ticket's state): it replaces the
        earlier kept message with the same key, so a resumed client gets only the latest one.
        aiohttp writes each frame before its first await, so frames leave in call order.
        """
        encoded = message if isinstance(message, Encoded) else Encoded.of(message)
        self._seq += 1
        if encoded.key is not None:
            self._forget(lambda entry: entry[2] == encoded.key)
        text = f'{encoded.body[:-1]},"seq":{self._seq}}}'
        self._history.append((self._seq, text, encoded.key))
        self._history_bytes += len(text)
        while self._history_bytes > HISTORY_BYTES and len(self._history) > 1:
            seq, dropped, _key = self._history.popleft()
            self._history_bytes -= len(dropped)
            self._lost = seq
        if self.ws is not None:
            await write(self.ws, text)

    async def reply(self, message: dict[str, Any]) -> None:
        """Write an answer that only matters now (a ``pong``), if a socket is attached: not
        numbered, not kept for replay (a resumed client asks again)."""
        if self.ws is not None:
            await write(self.ws, dumps(message))

    def acknowledge(self, seq: int) -> None:
        """The client has everything up to ``seq``: no need to keep it for a resume."""
        while self._history and self._history[0][0] <= seq:
            self._history_bytes -= len(self._history.popleft()[1])

    def _forget(self, drop: Any) -> None:
        kept = [entry for entry in self._history if not drop(entry)]
        if len(kept) != len(self._history):
            self._history = deque(kept)
            self._history_bytes = sum(len(entry[1]) for entry in kept)

    def check_resume(self, last_seq: int) -> None:
        if last_seq < self._lost:
            raise SignalingError(
                "resume_gap", "Too many messages were missed to resume; start a new session."
            )
        if last_seq > self._seq:
            raise SignalingError("bad_resume", "last_seq is ahead of what the server sent.")

    async def attach(self, ws: web.WebSocketResponse, last_seq: int) -> None:
        """Replay what the client has not seen, then write to ``ws`` from now on."""
        self.ws = None
        sent = last_seq
        while pending := [(seq, text) for seq, text, _key in self._history if seq > sent]:
            for seq, text in pending:
                await write(ws, text)
                sent = seq
        self.ws = ws  # no await since the last check: nothing can slip in between

    def detach(self) -> None:
        self.ws = None

    def handover(self) -> dict[str, Any]:
        """What another process needs to hold this session (JSON): who, the call, the numbering
        and the unacknowledged history (at most ``HISTORY_BYTES``, as here)."""
        principal = self.principal
        return {
            "id": self.id,
            "token": self.token,
            "principal": {"kind": principal.kind, "id": principal.id, "info": principal.info,
                          "purpose": principal.purpose},
            "room": self.room,
            "peers": self.peers,
            "initiator": self.initiator,
            "seq": self._seq,
            "lost": self._lost,
            "history": [list(entry) for entry in self._history],
            "received": self.received,
            "started": self.started,
        }  # fmt: skip

    def card(self) -> dict[str, Any]:
        """``handover`` without the history, nor what the client's messages were received
        (a card is saved now and then, not after each message): what another process needs to
        re-create this session after its holder died (``Hub._recover``)."""
        return {**self.handover(), "history": [], "lost": self._seq, "received": None}

    @classmethod
    def restored(cls, state: dict[str, Any]) -> Session:
        """The session ``handover`` described (raises KeyError, TypeError or ValueError for a
        malformed one)."""
        who = state["principal"]
        session = cls(Principal(str(who["kind"]), str(who["id"]), dict(who["info"]),
                                str(who["purpose"])))  # fmt: skip
        session.id, session.token = str(state["id"]), str(state["token"])
        session.room = None if state["room"] is None else str(state["room"])
        session.peers = {str(k): dict(v) for k, v in state["peers"].items()}
        session.initiator = bool(state["initiator"])
        session._seq, session._lost = int(state["seq"]), int(state["lost"])
        received = state.get("received", None)  # absent: handed over by an older version
        session.received = None if received is None else int(received)
        session.started = float(state.get("started", 0.0))  # absent: the oldest
        history = [(int(seq), str(text), None if key is None else str(key))
                   for seq, text, key in state["history"]]  # fmt: skip
        seqs = [entry[0] for entry in history]
        in_range = not seqs or session._lost < seqs[0] <= seqs[-1] <= session._seq
        if seqs != sorted(set(seqs)) or not in_range:
            raise ValueError("a handed-over history out of order")
        session._history = deque(history)
        session._history_bytes = sum(len(entry[1]) for entry in history)
        return session


async def write(ws: web.WebSocketResponse, text: str) -> None:
    """Write a frame; a closed socket is left to its reader (which starts the grace period)."""
    try:
        await ws.send_str(text)
    except (ConnectionError, RuntimeError):
        pass  # the reader notices the close and starts the grace period
