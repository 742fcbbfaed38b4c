"""The signaling hub: authenticated, resumable WebSocket sessions; call rooms; relay.

The hub knows nothing of what the calls are for. An application authenticates connections,
registers its own message types, and opens and closes rooms; the hub relays offer, answer,
candidate and app messages only between the members of one room.

With a broker shared by several processes, a resume that reaches a process which does not hold
the session moves it here from its holder (``_take_over``, ``_hand_over``; docs/scaling.md), and
``drain`` lets a stopping process's clients resume elsewhere.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiohttp import web
from pydantic import BaseModel, ValidationError

from signaling.broker import Broker, Deliver, InProcessBroker
from signaling.errors import (
    CLOSE_AUTH_FAILED,
    CLOSE_HELLO_TIMEOUT,
    CLOSE_REPLACED,
    CLOSE_SESSION_ENDED,
    SignalingError,
)
from signaling.frames import FrameGate, describe, send_error
from signaling.ice import IceSettings, ice_servers
from signaling.messages import (
    CSEQ_MAX,
    PROTOCOL_VERSION,
    RELAYED,
    SESSION_ID_MAX,
    Hello,
    Numbered,
    Ping,
    Resume,
)
from signaling.session import Encoded, Principal, Session, dumps, write

# What applications use (Principal and Session live in signaling.session, named here too).
__all__ = ["Handler", "Hub", "HubApplication", "HubSettings", "Principal", "Session", "drain"]

log = logging.getLogger("signaling")


class HubApplication(Protocol):
    async def authenticate(self, auth: dict[str, Any] | None, request: web.Request) -> Principal:
        """Return the principal or raise SignalingError('auth_failed', ...)."""
        ...

    async def session_started(self, session: Session) -> None: ...

    async def may_resume(self, session: Session, request: web.Request) -> bool:
        """Whether this request may take the session back (e.g. the same person signed in)."""
        ...

    async def session_resumed(self, session: Session, reloaded: bool) -> None:
        """A client came back within the grace period; ``reloaded``: its page lost all state
        (it is sent no replay, so the application sends its current snapshots)."""
        ...

    async def session_ended(self, session: Session, reason: str) -> None: ...

    async def session_moved(self, session: Session) -> None:
        """The session was resumed in another process and lives on there (it did not end):
        forget what this process keeps for it."""
        ...

    def relayed(self, session: Session, message: dict[str, Any]) -> None:
        """Told of each ``app`` message relayed within a call (for the session log)."""
        ...


Handler = Callable[["Session", Any], Awaitable[None]]
# Turns an exception a handler raised into the error frame to answer (e.g. a database outage
# into ``service_unavailable``), or None: then it is an internal error.
FailureTranslator = Callable[[Exception], SignalingError | None]


@dataclass(frozen=True)
class _Registered:
    model: type[BaseModel]
    handler: Handler
    kinds: frozenset[str] | None


@dataclass
class HubSettings:
    grace_seconds: float = 30.0
    heartbeat_seconds: float = 5.0
    hello_timeout_seconds: float = 10.0
    max_message_bytes: int = 64 * 1024
    rate_per_second: float = 40.0
    burst: float = 80.0
    flood_drops: int = 200
    # How long a process waits for each answer of a session's holder when it moves the
    # session here (docs/scaling.md); past it the resume is answered no_such_session.
    handover_seconds: float = 2.0
    ice: IceSettings = field(default_factory=IceSettings)


class Hub:
    def __init__(
        self,
        app: HubApplication,
        settings: HubSettings | None = None,
        broker: Broker | None = None,
        failures: FailureTranslator | None = None,
    ) -> None:
        self.app = app
        self.settings = settings or HubSettings()
        self.broker: Broker = broker or InProcessBroker()
        self.failures = failures
        # Cheap counters read by the operations metrics (cloudhelp/http/ops_routes.py).
        self.relayed_messages = 0
        self.turn_credentials_issued = 0
        self.sessions: dict[str, Session] = {}
        # (kind, principal id) → that principal's sessions, so a hello finds them at once.
        self._by_principal: dict[tuple[str, str], dict[str, Session]] = {}
        self._handlers: dict[str, _Registered] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.closing = False
        self.draining = False  # new connections refused (503); see drain
        self._sockets: set[web.WebSocketResponse] = set()  # every open one, said hello or not
        # session id → its broker subscription (unsubscribed by identity: another hub on the
        # same in-process broker may hold the topic by then).
        self._delivers: dict[str, Deliver] = {}
        # session id → the timer that keeps it here if a handover stalls (see _hand_over).
        self._moving: dict[str, asyncio.TimerHandle] = {}
        self._giving_up = 0  # handovers between giving a session up and sending it on
        self._left = asyncio.Event()  # set when a session leaves (drain waits on it)
        self.sessions_moved_here = 0
        self.sessions_moved_away = 0
        self.sessions_recovered = 0  # re-created here from their card: their holder had died

    # ------------------------------------------------------------------ application API

    def register(
        self,
        type_: str,
        model: type[BaseModel],
        handler: Handler,
        kinds: set[str] | None = None,
    ) -> None:
        """Route messages of ``type_`` (validated by ``model``) from ``kinds`` to ``handler``."""
        self._handlers[type_] = _Registered(model, handler, frozenset(kinds) if kinds else None)

    async def send(self, session_id: str, message: dict[str, Any] | Encoded) -> bool:
        """Send to a session in this process or, through the broker, in another. An
        :class:`Encoded` message (serialised once for many sessions) is never a control one."""
        session = self.sessions.get(session_id)
        if isinstance(message, Encoded):
            if session is not None:
                await session.send(message)
                return True
            return await self.broker.publish(_topic(session_id), message.brokered())
        if session is not None:
            await self._deliver(session, message)
            return True
        return await self.broker.publish(_topic(session_id), message)

    async def session_alive(self, session_id: str) -> bool:
        """Whether a session is held by this process or, through the broker, by another."""
        if session_id in self.sessions:
            return True
        return await self.broker.publish(_topic(session_id), {"type": "_probe"})

    async def open_room(self, room: str, members: dict[str, dict[str, Any]]) -> None:
        """Put the sessions in ``members`` (id → info shown to peers) in one call room.

        Each member gets ``joined`` with its peers; the first member listed is the initiator,
        who sends the first offer. Every local member is in the room before the first
        ``joined`` leaves, so a ``close_room`` racing with this one reaches them all. The
        initiator's ``joined`` leaves last, and nothing is awaited between the others' and
        it but their sending: its offer, relayed as soon as it has joined, can never reach a
        peer before that peer's own ``joined`` (which would drop it: no call there yet).
        """
        ids = list(members)
        joins = []
        for index, session_id in enumerate(ids):
            peers = {other: members[other] for other in ids if other != session_id}
            join = {"type": "_join", "room": room, "peers": peers, "initiator": index == 0}
            local = self.sessions.get(session_id)
            if local is not None:
                local.room, local.peers, local.initiator = room, dict(peers), index == 0
            joins.append((session_id, join))
        joined: list[Session] = []
        for session_id, join in reversed(joins):  # the initiator last
            local = self.sessions.get(session_id)
            if local is None:
                await self.send(session_id, join)
            elif local.room == room:  # not closed meanwhile
                await local.send(_joined(local))
                joined.append(local)
        for local in joined:
            await self._keep_card(local)

    async def close_room(self, room: str, session_ids: list[str], reason: str) -> None:
        for session_id in session_ids:
            await self.send(session_id, {"type": "_leave", "room": room, "reason": reason})

    async def end_session(
        self, session: Session, reason: str, close_code: int = CLOSE_SESSION_ENDED
    ) -> None:
        """End a session for good: the application is told, the socket (if any) is closed."""
        if session.ended:
            return
        session.ended = True
        if session._grace is not None:
            session._grace.cancel()
        self._remove(session)
        await self._unsubscribe(session)
        if session.room is not None:
            await self.broker.drop_card(_topic(session.id))
        ws = session.ws
        session.detach()
        try:
            await self.app.session_ended(session, reason)
        except Exception:
            log.exception("session_ended handler failed")
        if ws is not None and not ws.closed:
            await ws.close(code=close_code, message=reason.encode()[:120])

    def any_in_call(self) -> bool:
        """Whether any session in this process is in a call room."""
        return any(session.room is not None for session in self.sessions.values())

    def find_sessions(
        self, kind: str, principal_id: str, purpose: str | None = None
    ) -> list[Session]:
        """The live sessions of one principal (of one purpose, when given)."""
        held = self._by_principal.get((kind, principal_id), {})
        return [s for s in held.values() if purpose is None or s.principal.purpose == purpose]

    def _index(self, session: Session) -> None:
        key = (session.principal.kind, session.principal.id)
        self._by_principal.setdefault(key, {})[session.id] = session

    async def _subscribe(self, session: Session, deliver: Deliver) -> None:
        self._delivers[session.id] = deliver
        await self.broker.subscribe(_topic(session.id), deliver)

    async def _unsubscribe(self, session: Session) -> None:
        deliver = self._delivers.pop(session.id, None)
        if deliver is not None:
            await self.broker.unsubscribe(_topic(session.id), deliver)

    def _remove(self, session: Session) -> None:
        """The session is no longer held here (ended, never taken up, or moved away)."""
        self.sessions.pop(session.id, None)
        self._unindex(session)
        self._left.set()

    def _unindex(self, session: Session) -> None:
        key = (session.principal.kind, session.principal.id)
        held = self._by_principal.get(key)
        if held is not None:
            held.pop(session.id, None)
            if not held:
                del self._by_principal[key]

    async def close(self) -> None:
        """Stop: close every socket, cancel timers, finish running work (sessions are kept:
        they live on in the database and clients resume or sign in again)."""
        self.closing = True
        for session in list(self.sessions.values()):
            if session._grace is not None:
                session._grace.cancel()
            session.detach()
        # All at once: one client slow to answer the close must not hold up the others.
        await asyncio.gather(
            *(ws.close(code=1001, message=b"server shutting down") for ws in self._sockets),
            return_exceptions=True,
        )
        await drain(self._tasks)

    # ------------------------------------------------------------------ delivery

    async def _deliver(self, session: Session, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "_encoded":  # Encoded.brokered (a relayed message, …): written as it came
            key = message.get("key")
            await session.send(Encoded(str(message["body"]), None if key is None else str(key)))
        elif kind == "_probe":
            return
        elif kind == "_handover":
            await self._hand_over(session, message)
        elif kind == "_join":
            session.room = message["room"]
            session.peers = dict(message["peers"])
            session.initiator = bool(message["initiator"])
            await session.send(_joined(session))
            await self._keep_card(session)
        elif kind == "_leave":
            if session.room == message["room"]:
                session.room, session.peers = None, {}
                await session.send(
                    {"type": "left", "room": message["room"], "reason": message["reason"]}
                )
                await self._keep_card(session)
        else:
            await session.send(message)

    # ------------------------------------------------------------------ connections

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket endpoint: a connection's frames, one at a time, until it closes.
        While draining, 503 before the upgrade (a proxy tries another process)."""
        if self.draining:
            return web.Response(status=503, text="This server is stopping; connect again.")
        cfg = self.settings
        ws = web.WebSocketResponse(
            heartbeat=cfg.heartbeat_seconds, max_msg_size=cfg.max_message_bytes * 4
        )
        await ws.prepare(request)
        self._sockets.add(ws)
        gate = FrameGate(cfg.rate_per_second, cfg.burst, cfg.flood_drops, cfg.max_message_bytes)
        session: Session | None = None
        hello_timer = asyncio.get_running_loop().call_later(
            cfg.hello_timeout_seconds, lambda: self._spawn(self._hello_timeout(ws))
        )
        try:
            async for msg in ws:
                raw = await gate.admit(ws, msg)
                if raw is None:
                    if ws.closed:  # closed for flooding
                        break
                    continue
                try:
                    if raw["type"] == "hello":
                        if session is not None:
                            raise SignalingError(
                                "already_authenticated", "This connection already said hello."
                            )
                        session = await self._hello(ws, request, raw)
                        if session is not None:
                            hello_timer.cancel()
                        elif ws.closed:
                            break
                        continue
                    if session is None:
                        raise SignalingError("not_authenticated", "Say hello first.")
                    if session.ended:
                        break
                    if "cseq" in raw and not session.receive(_cseq(raw.pop("cseq"))):
                        continue  # handled already: sent again after a resume
                    await self._dispatch(session, raw, msg.data)
                except SignalingError as exc:
                    await send_error(ws, exc.code, exc.message, ref=raw.get("type"))
                except Exception as exc:
                    translated = self.failures(exc) if self.failures is not None else None
                    if translated is not None:
                        log.warning(
                            "message handler failed: %s",
                            translated.code,
                            extra={"type": raw.get("type"), "exception": type(exc).__name__},
                        )
                        await send_error(
                            ws, translated.code, translated.message, ref=raw.get("type")
                        )
                        continue
                    log.exception("message handler failed")
                    await send_error(
                        ws,
                        "internal_error",
                        "The server could not handle that message; please try again.",
                        ref=raw.get("type"),
                    )
        finally:
            self._sockets.discard(ws)
            hello_timer.cancel()
            await self._socket_closed(ws, session)
        return ws

    async def _socket_closed(self, ws: web.WebSocketResponse, session: Session | None) -> None:
        """A session whose socket this was waits for its client the grace period (unless the
        hub is closing); its peers hear it is reconnecting."""
        if session is not None and session.ws is ws and not session.ended:
            session.detach()
            if not self.closing:
                self._start_grace(session)
                await self._tell_peers(session, "peer_reconnecting")

    async def _tell_peers(self, session: Session, type_: str, **fields: Any) -> None:
        """Tell the other members of the session's call that it went away or came back."""
        if session.room is None:
            return
        message = {"type": type_, "room": session.room, "session": session.id, **fields}
        for peer in list(session.peers):
            await self.send(peer, message)

    async def _hello_timeout(self, ws: web.WebSocketResponse) -> None:
        if not ws.closed:
            await send_error(ws, "hello_timeout", "No hello received in time.")
            await ws.close(code=CLOSE_HELLO_TIMEOUT, message=b"hello timeout")

    async def _hello(
        self, ws: web.WebSocketResponse, request: web.Request, raw: dict[str, Any]
    ) -> Session | None:
        """A new session for an authenticated hello, or a resumed one; None when the
        authentication failed (``ws`` is closed then)."""
        try:
            hello = Hello.model_validate(raw)
        except ValidationError as exc:
            raise SignalingError("bad_message", describe(exc)) from None
        if hello.v != PROTOCOL_VERSION:
            raise SignalingError(
                "version_unsupported",
                f"This server speaks protocol version {PROTOCOL_VERSION}; update the client.",
            )
        if hello.resume is not None:
            return await self._resume(ws, request, hello.resume)
        try:
            principal = await self.app.authenticate(hello.auth, request)
        except SignalingError as exc:
            await send_error(ws, exc.code, exc.message, ref="hello")
            await ws.close(code=CLOSE_AUTH_FAILED, message=exc.code.encode())
            return None
        session = Session(principal)
        self.sessions[session.id] = session
        self._index(session)
        await self._subscribe(session, functools.partial(self._deliver, session))
        try:
            # Started before the welcome: a client welcomed has a session the application
            # took up. Frames the application sends the session meanwhile are kept, and
            # attach() replays them after the welcome.
            await self.app.session_started(session)
        except Exception:
            # Not started (e.g. the database is out): forget the session, so that nothing
            # half-made stays; the client hears the error (no welcome) and says hello again.
            await self._forget(session)
            raise
        # A client already gone is left to its reader (write() swallows the reset).
        await write(ws, dumps(self._welcome(session, resumed=False)))
        await session.attach(ws, 0)
        return session

    async def _forget(self, session: Session) -> None:
        """Drop a session the application never took up, without telling the application."""
        session.ended = True
        self._remove(session)
        await self._unsubscribe(session)
        session.detach()

    async def _resume(
        self, ws: web.WebSocketResponse, request: web.Request, resume: Resume
    ) -> Session:
        """Give a session back to its client on ``ws``: what it missed is replayed (or, for a
        reloaded page, nothing: the application sends its current state); the old socket is
        closed; its peers hear it is back. A session held by another process is moved here
        first (``_take_over``, which checks the token and ``may_resume`` there)."""
        session = self.sessions.get(resume.session)
        if session is None:
            if resume.session not in self._moving:
                session = await self._take_over(request, resume)
        elif (
            session.ended
            or session.id in self._moving
            or not hmac.compare_digest(session.token.encode(), resume.token.encode())
            or not await self.app.may_resume(session, request)
        ):
            session = None
        if session is None:
            raise SignalingError(
                "no_such_session",
                "That session has ended or never existed; start a new one.",
            )
        reloaded = resume.reloaded
        if reloaded:
            session.received = 0  # the reloaded page numbers its messages from 1 again
        else:
            session.check_resume(resume.last_seq)
        old = session.ws
        if session._grace is not None:
            session._grace.cancel()
            session._grace = None
        await write(ws, dumps(self._welcome(session, resumed=True)))
        if reloaded:  # the page lost everything: no replay, current state instead
            session.acknowledge(session._seq)
            await session.attach(ws, session._seq)
        else:
            await session.attach(ws, resume.last_seq)
        if old is not None and old is not ws and not old.closed:
            await old.close(code=CLOSE_REPLACED, message=b"resumed elsewhere")
        try:
            await self.app.session_resumed(session, reloaded)
        except Exception:
            # Not taken back (e.g. the database is out): the session waits again, as if this
            # socket had dropped, for the client's next try.
            session.detach()
            if not self.closing:
                self._start_grace(session)
            raise
        if reloaded and session.room is not None and not session.ended:
            await session.send(_joined(session, resumed=True))
        # Peers hear of it only now: a new offer they send at once must find the resumed
        # page already past ``joined``.
        await self._tell_peers(session, "peer_back", reloaded=reloaded)
        return session

    # ------------------------------------------------------------------ moving sessions

    async def _take_over(self, request: web.Request, resume: Resume) -> Session | None:
        """Move a session held by another process here, through the broker; None when nobody
        answers for it (no holder, a dead one, a wrong token, or ``may_resume`` refuses).

        1. ``_handover`` (token, reply topic) published on the session's topic: its holder
           checks the token and answers ``_handover_offer`` (the session, a topic of its own).
        2. Here: ``may_resume``; then the session's topic is subscribed here (the newest
           subscriber wins: what is published from now on comes here and is held), and
           ``_handover_taken`` is sent to the holder's topic.
        3. The holder gives the session up (what reached it until then is in its history) and
           answers ``_handover_rest``: the session as it is now. It is re-created here, the held
           messages follow it, numbered after its history.
        """
        wait = self.settings.handover_seconds
        replies = _Replies()
        reply = f"handover:{secrets.token_urlsafe(12)}"
        await self.broker.subscribe(reply, replies.put)
        try:
            asked = {"type": "_handover", "token": resume.token, "reply": reply}
            if not await self.broker.publish(_topic(resume.session), asked):
                return await self._recover(request, resume)
            offer = await replies.get("_handover_offer", wait)
            offered = _restored(offer)
            if offer is None or offered is None:
                return None
            back = str(offer.get("back"))
            if not await self.app.may_resume(offered, request):
                await self.broker.publish(back, {"type": "_handover_keep"})
                return None
            arrival = _Arrival(self)
            self._delivers[resume.session] = arrival
            await self.broker.subscribe(_topic(resume.session), arrival)
            session = None
            if await self.broker.publish(back, {"type": "_handover_taken"}):
                session = _restored(await replies.get("_handover_rest", wait))
            if session is None or session.id != resume.session:
                self._delivers.pop(resume.session, None)
                await self.broker.unsubscribe(_topic(resume.session), arrival)
                return None
        finally:
            await self.broker.unsubscribe(reply, replies.put)
        self.sessions[session.id] = session
        self._index(session)
        self.sessions_moved_here += 1
        self._start_grace(session)  # held here now, detached until the resume attaches it
        await arrival.open(session)  # what came meanwhile, numbered after the history
        await self._keep_card(session)
        log.info("session moved here", extra={"session": session.id})
        return session

    async def _recover(self, request: web.Request, resume: Resume) -> Session | None:
        """No process holds the session (its holder died): one in a call room left its card
        with the broker (``_keep_card``); re-create the session here from it. Its history died
        with its holder: it goes on numbering from what the client last saw (or the card, if
        later), and what the dead holder sent past that is lost. None without a card, with a
        wrong token, or when ``may_resume`` refuses."""
        card = await self.broker.card(_topic(resume.session))
        if card is None or not hmac.compare_digest(
            str(card.get("token", "")).encode(), resume.token.encode()
        ):
            return None
        try:
            # Numbered on after the card or what the client saw, whichever is later; nothing
            # before that can be replayed (lost), nothing is missing for check_resume.
            seq = max(int(card["seq"]), resume.last_seq)
            state = {**card, "seq": seq, "lost": min(resume.last_seq, seq), "history": []}
            session = Session.restored(state)
        except (KeyError, TypeError, ValueError, AttributeError):
            log.warning("a session's card could not be read")
            return None
        if session.id != resume.session or not await self.app.may_resume(session, request):
            return None
        self.sessions[session.id] = session
        self._index(session)
        await self._subscribe(session, functools.partial(self._deliver, session))
        self.sessions_recovered += 1
        self._start_grace(session)  # held here now, detached until the resume attaches it
        await self._keep_card(session)
        log.info("session recovered here", extra={"session": session.id})
        return session

    async def _keep_card(self, session: Session) -> None:
        """A session in a call room keeps its card with the broker (who it is, its call, its
        numbering), so that another process can re-create it if this one dies mid-call
        (``_recover``); out of a room it has none (a new session does as well)."""
        if session.room is None:
            await self.broker.drop_card(_topic(session.id))
        else:
            await self.broker.save_card(_topic(session.id), session.card())

    async def _hand_over(self, session: Session, asked: dict[str, Any]) -> None:
        """Another process asks for this session (step 1 of ``_take_over``): offer it when the
        token matches; give it up when that process has taken its topic. Until then it stays
        here, out of reach of a resume; past ``handover_seconds`` without an answer it stays."""
        reply, token = asked.get("reply"), asked.get("token")
        if not isinstance(reply, str) or not reply.startswith("handover:"):
            return
        if (
            session.ended
            or session.id in self._moving
            or not isinstance(token, str)
            or not hmac.compare_digest(session.token.encode(), token.encode())
        ):
            await self.broker.publish(reply, {"type": "_handover_refused"})
            return
        back = f"handover:{secrets.token_urlsafe(12)}"
        if session._grace is not None:
            session._grace.cancel()
            session._grace = None

        async def answered(message: dict[str, Any]) -> None:
            timer = self._moving.pop(session.id, None)
            if timer is None:
                return  # already given up or kept
            timer.cancel()
            await self.broker.unsubscribe(back, answered)
            if message.get("type") == "_handover_taken":
                await self._give_up(session, reply)
            else:
                self._keep(session)

        async def stalled() -> None:
            if self._moving.pop(session.id, None) is not None:
                await self.broker.unsubscribe(back, answered)
                self._keep(session)

        loop = asyncio.get_running_loop()
        wait = self.settings.handover_seconds
        self._moving[session.id] = loop.call_later(wait, lambda: self._spawn(stalled()))
        await self.broker.subscribe(back, answered)
        offer = {"type": "_handover_offer", "back": back, "session": session.handover()}
        if not await self.broker.publish(reply, offer):
            await stalled()

    def _keep(self, session: Session) -> None:
        """A handover that did not happen: the session waits here again."""
        if session.ws is None and not session.ended and not self.closing:
            self._start_grace(session)

    async def _give_up(self, session: Session, reply: str) -> None:
        """The session's topic is held elsewhere now: send it there as it is, and forget it
        here (without ending it); its socket, if still open, is closed as replaced."""
        ws = session.ws
        session.detach()
        self._giving_up += 1
        try:
            self._remove(session)
            # From here on what is sent to the session goes through the broker to its new
            # holder; nothing more reaches this object.
            await self._unsubscribe(session)
            if session.room is not None:  # before the new holder saves its own
                await self.broker.drop_card(_topic(session.id))
            session.ended = True  # for this process: nothing here may end it again
            self.sessions_moved_away += 1
            rest = {"type": "_handover_rest", "session": session.handover()}
            await self.broker.publish(reply, rest)
        finally:
            self._giving_up -= 1
            self._left.set()
        if ws is not None and not ws.closed:
            self._spawn(ws.close(code=CLOSE_REPLACED, message=b"resumed elsewhere"))
        try:
            await self.app.session_moved(session)
        except Exception:
            log.exception("session_moved handler failed")

    async def drain(self, seconds: float) -> None:
        """Before stopping with other processes on the broker: refuse new connections (503),
        close every socket with 1001 and wait up to ``seconds`` for the clients to resume
        their sessions elsewhere (each session moves through the broker, as any resume on
        another process does); what is left stays here until ``close``."""
        self.draining = True
        await asyncio.gather(
            *(ws.close(code=1001, message=b"server going away") for ws in list(self._sockets)),
            return_exceptions=True,
        )
        deadline = time.monotonic() + seconds
        while (self.sessions or self._giving_up) and (left := deadline - time.monotonic()) > 0:
            self._left.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._left.wait(), left)

    def _welcome(self, session: Session, resumed: bool) -> dict[str, Any]:
        servers = ice_servers(self.settings.ice, session.id)
        self.turn_credentials_issued += sum("credential" in server for server in servers)
        return {
            "type": "welcome",
            "v": PROTOCOL_VERSION,
            "session": session.id,
            "token": session.token,
            "resumed": resumed,
            "principal": {
                "kind": session.principal.kind,
                "id": session.principal.id,
                **session.principal.info,
            },
            "ice_servers": servers,
            "ice_transport_policy": self.settings.ice.transport_policy,
            "grace_seconds": self.settings.grace_seconds,
            "heartbeat_seconds": self.settings.heartbeat_seconds,
            **({"received": session.received} if resumed and session.received is not None else {}),
        }

    def _start_grace(self, session: Session) -> None:
        loop = asyncio.get_running_loop()
        session._grace = loop.call_later(
            self.settings.grace_seconds,
            lambda: self._spawn(self.end_session(session, "timeout")),
        )

    def _spawn(self, coro: Awaitable[Any]) -> None:
        if self.closing:
            coro.close()  # type: ignore[attr-defined]
            return
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ messages

    async def _dispatch(self, session: Session, raw: dict[str, Any], text: str) -> None:
        kind = raw["type"]
        if kind == "ping":
            try:
                ping = Ping.model_validate(raw)
            except ValidationError as exc:
                raise SignalingError("bad_message", describe(exc)) from None
            if ping.seq is not None:
                session.acknowledge(ping.seq)
            pong: dict[str, Any] = {"type": "pong"}
            if ping.id is not None:
                pong["id"] = ping.id
            if session.received is not None:
                pong["received"] = session.received
            await session.reply(pong)
            return
        if kind == "bye":
            await self.end_session(session, "left")
            return
        if kind in RELAYED:
            to = raw.get("to")
            if not (kind == "app" and _plain_app(raw, to)):
                try:
                    to = RELAYED[kind].model_validate(raw).to
                except ValidationError as exc:
                    raise SignalingError("bad_message", describe(exc)) from None
            await self._relay(session, kind, to, raw, text)
            return
        registered = self._handlers.get(kind)
        if registered is None:
            raise SignalingError("unknown_type", f"Unknown message type {kind!r}.")
        if registered.kinds is not None and session.principal.kind not in registered.kinds:
            raise SignalingError("forbidden", f"A {session.principal.kind} may not send {kind!r}.")
        try:
            message = registered.model.model_validate(raw)
        except ValidationError as exc:
            raise SignalingError("bad_message", describe(exc)) from None
        await registered.handler(session, message)

    async def _relay(
        self, session: Session, kind: str, to: str | None, raw: dict[str, Any], text: str
    ) -> None:
        """Forward a validated ``kind`` message to ``to`` or, without one, to every peer."""
        if session.room is None:
            raise SignalingError(
                "not_in_call", "You are not in a call, so there is nobody to send this to."
            )
        if to is not None and to not in session.peers:
            log.warning(
                "relay refused: target outside the sender's call",
                extra={"session": session.id, "room": session.room, "type": kind},
            )
            raise SignalingError("not_in_call", "That session is not in your call.")
        if kind == "app":
            self.app.relayed(session, raw)
        self.relayed_messages += 1
        # The validated text is forwarded as it came (a ``to`` in it names the receiver), with
        # ``from`` and ``seq`` appended (the models refuse them, and any unknown field, from
        # the sender), instead of the payload being serialised again.
        body = text.rstrip()
        forwarded = Encoded(f'{body[:-1]},"from":"{session.id}"}}')
        for target in (to,) if to is not None else tuple(session.peers):
            await self.send(target, forwarded)


_APP_FIELDS = frozenset(("type", "data", "to"))


def _plain_app(raw: dict[str, Any], to: Any) -> bool:
    """Whether an ``app`` message is valid as :class:`AppData` says, checked by hand (the
    pages' chat and file lines; cheaper than the model); anything else goes to the model,
    which names what is wrong."""
    return (
        "data" in raw
        and raw.keys() <= _APP_FIELDS
        and (to is None or (type(to) is str and 0 < len(to) <= SESSION_ID_MAX))
    )


def _restored(answer: dict[str, Any] | None) -> Session | None:
    """The session an answer of its holder carries; None without one, or a malformed one."""
    if answer is None:
        return None
    try:
        return Session.restored(answer["session"])
    except (KeyError, TypeError, ValueError, AttributeError):
        log.warning("a handed-over session could not be read")
        return None


class _Replies:
    """Answers arriving on a handover's reply topic, awaited one at a time."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def put(self, message: dict[str, Any]) -> None:
        self._queue.put_nowait(message)

    async def get(self, expected: str, timeout: float) -> dict[str, Any] | None:
        """The next answer if it is of type ``expected`` within ``timeout``; else None."""
        try:
            message = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        return message if message.get("type") == expected else None


class _Arrival:
    """A moving session's subscription here: holds what arrives until the session's history
    is in (``open``), then delivers as the hub's own subscription does."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.session: Session | None = None
        self.held: list[dict[str, Any]] = []

    async def __call__(self, message: dict[str, Any]) -> None:
        if self.session is None or self.held:
            self.held.append(message)
            return
        await self.hub._deliver(self.session, message)

    async def open(self, session: Session) -> None:
        """Deliver what was held, in order (what arrives meanwhile queues behind it)."""
        self.session = session
        while self.held:
            await self.hub._deliver(session, self.held[0])
            self.held.pop(0)


async def drain(tasks: set[asyncio.Task[Any]], timeout: float = 5.0) -> None:
    """Let running tasks finish (cancelling those still running after ``timeout``)."""
    pending = [t for t in tasks if not t.done()]
    if not pending:
        return
    _done, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        task.cancel()
    if late:
        await asyncio.wait(late)


def _joined(session: Session, resumed: bool = False) -> dict[str, Any]:
    """The ``joined`` message for a member of a call room."""
    message: dict[str, Any] = {
        "type": "joined",
        "room": session.room,
        "peers": [{"session": sid, **info} for sid, info in session.peers.items()],
        "initiator": session.initiator,
    }
    if resumed:
        message["resumed"] = True
    return message


def _cseq(value: Any) -> int:
    """A client's message number (``cseq``): a whole number from 1 to 2**53; checked by hand
    (every message of the pages has one), the model only names what is wrong."""
    if type(value) is int and 1 <= value <= CSEQ_MAX:
        return value
    try:
        return Numbered.model_validate({"cseq": value}).cseq
    except ValidationError as exc:
        raise SignalingError("bad_message", describe(exc)) from None


def _topic(session_id: str) -> str:
    return f"session:{session_id}"
