"""A broker over Redis, for several server processes ("nodes") sharing one Redis server.

Keys (``prefix`` is ``signaling`` unless the application names its own):

- ``{prefix}:topic:{topic}`` → the id of the node that holds the topic, with a TTL
  (``topic_ttl``) that the holder renews every third of it. Subscribing sets it (the newest
  subscriber wins); unsubscribing deletes it, but only while it still names this node; a renewal
  never takes a topic that another node has set meanwhile.
- ``{prefix}:node:{node_id}`` → a Stream of what other nodes publish to this node's topics
  (fields ``t``: the topic, ``m``: the message as JSON, ``w``: ``WIRE_VERSION``), capped near
  ``stream_maxlen`` entries (XADD MAXLEN ~) and expiring ``stream_ttl`` after its node last
  renewed it. The node reads it with XREAD from the id of the last entry it delivered, kept in
  memory.
- ``{prefix}:alive:{node_id}`` → a Pub/Sub channel nothing is published on: the node keeps one
  connection subscribed to it, so Redis counts a subscriber while the node's process lives. A
  process that dies (SIGKILL, a crash) has its connections closed by its kernel, and Redis drops
  the subscription at once; publishing to a topic whose holder has no subscriber there answers
  False, as for a topic nobody holds.
- ``{prefix}:card:{key}`` → a card (JSON) a node saved: what another node needs to take a
  session over when its holder died (``save_card``). Renewed with the topics, it expires
  ``card_ttl`` after its node last renewed it; deleted by ``drop_card``.
- ``{prefix}:broadcast`` → one Stream for every node (fields ``c``: the channel, ``m``: the
  message, ``n``: the node that broadcast it, ``w``: ``WIRE_VERSION``), capped near
  ``broadcast_maxlen`` entries and expiring ``stream_ttl`` after the last broadcast. Every node
  reads it in the same XREAD as its own stream, from the last entry there when it started.

- ``{prefix}:link:{node_id}`` → ``host:port`` where the node listens for links from the others
  (only with ``link_key``), with the topics' TTL, renewed with them.

Publishing looks the holder up, checks that it is alive and appends to its stream in one Lua
script (one round trip).

With ``link_key`` (the same on every node), relayed text (``_encoded``) for a topic whose
holder the last message through Redis named goes on a link to that node instead
(signaling/node_link.py): no Redis on its path. The link is a shortcut, Redis stays the truth:

- A frame never overtakes what was sent before it: it names the last entry this node appended
  to the holder's stream for the topic, and the holder delivers it only once its reader is past
  that entry; anything else for the topic goes through Redis only once the link's frames for it
  have been handled there (acknowledged), or sent again through Redis.
- A link that closes (its node stopped or died, the connection broke, or frames went
  unacknowledged ``ack_timeout``): what its node had not handled goes again through Redis, in
  order, marked with the link and frame number; the holder drops what it had already received
  (``link_duplicates``), so nothing is delivered twice or lost while both nodes live.
- A frame for a topic the receiving node does not hold any more (the session moved) goes on
  through Redis to the new holder, and the sender is told to stop using the link for it.
- While Redis cannot be reached, frames on open links still go (a call between nodes goes on).

Guaranteed:

- A message for a topic subscribed in this process is delivered here, without Redis.
- A message appended to a live node's stream is delivered to the topic's subscriber there once,
  in the order appended, even when the reader's connection drops meanwhile: entries stay in the
  stream and the reader starts again from the last one it delivered (Pub/Sub would lose them).
- While Redis cannot be reached, messages for topics not held here wait in an outbox (at most
  ``outbox_max`` messages, each at most ``outbox_seconds``) and are routed once Redis answers
  again, each topic's messages in order; ``publish`` answers True for them (the holder is not
  known yet). On reconnecting, the node re-registers every topic it holds before anything else.

A broadcast reaches this node's listeners at once and every other live node's once, in order,
as its own stream's entries do. Not guaranteed (the resume/replay path above this broker, or a
listener's periodic refresh, must cover these):

- A broadcast while Redis cannot be reached reaches this node only (counted in
  ``broadcasts_missed``).
- A node whose process dies is seen dead at once (its alive channel). A node whose machine
  loses power or network keeps its connections open in Redis until TCP gives up on them (Redis's
  ``tcp-keepalive``), so it keeps its topics for up to ``topic_ttl``: messages published to them
  meanwhile are accepted (True) and never delivered.
- Entries appended to a node's stream but not yet read when Redis restarts without persistence
  are lost (the reader is normally a few milliseconds behind).
- Redis restarted from a snapshot with its clock set back: the reader starts at the stream's
  beginning, and entries it had read before are delivered again.
- A parked message not routed within ``outbox_seconds`` (Redis away that long, or its topic
  without a holder once it is back) is dropped; the oldest are dropped past ``outbox_max``.
- A reader more than ``stream_maxlen`` entries behind loses the oldest ones.
- An entry written by a node of another ``WIRE_VERSION`` (a rolling upgrade across a change of
  this format) is dropped unread, logged and counted in ``wire_mismatches``.
- A node cut off from Redis longer than ``topic_ttl`` while others still reach it: its topics
  expire and publishing to them answers False elsewhere until it reconnects.
- Redis Cluster: the publish script writes a key it does not declare; one Redis server (or a
  primary with replicas behind a failover address) only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from signaling.broker import Deliver
from signaling.node_link import InLink, LinkServer, OutLink

log = logging.getLogger("signaling.redis")

# Redis cannot be reached (refused, reset, timed out): retried, never raised to callers.
_UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)

# The format of what a node appends to another's stream and to the broadcast stream: the fields
# named in the module docstring, and relayed text as ``_encoded`` (signaling/session.py). Every
# entry carries it (``w``). Raise it with any change to that format: a node drops an entry of
# another version, logged and counted (``wire_mismatches``), rather than misreading it, so that a
# rolling upgrade across such a change loses what crosses between old and new nodes visibly
# (docs/scaling.md) and never sends a client a garbled frame. An entry without ``w`` was written
# before the field existed, in this same format (version 1).
WIRE_VERSION = "1"

# KEYS[1] topic key; ARGV: this node, stream key prefix, maxlen, topic, message, alive channel
# prefix, wire version, link id and frame number (empty and 0 unless the message is a link's
# frame sent again: node_link.py). Returns false when nobody holds the topic (or its holder's
# alive channel has no subscriber: its process died), else {holder, id of the entry appended}
# (an empty id when the holder is this node: nothing is appended).
_PUBLISH = """
local holder = redis.call('GET', KEYS[1])
if not holder then return false end
local id = ''
if holder ~= ARGV[1] then
  if redis.call('PUBSUB', 'NUMSUB', ARGV[6] .. holder)[2] == 0 then return false end
  if ARGV[8] == '' then
    id = redis.call('XADD', ARGV[2] .. holder, 'MAXLEN', '~', ARGV[3], '*', 't', ARGV[4],
                    'm', ARGV[5], 'w', ARGV[7])
  else
    id = redis.call('XADD', ARGV[2] .. holder, 'MAXLEN', '~', ARGV[3], '*', 't', ARGV[4],
                    'm', ARGV[5], 'w', ARGV[7], 'l', ARGV[8], 's', ARGV[9])
  end
end
return {holder, id}
"""
# KEYS[1] topic key; ARGV: this node, TTL in ms. Sets the key unless another node holds it.
_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
# KEYS[1] topic key; ARGV[1] this node. Deletes the key only while it names this node.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW_BATCH = 500  # topics per pipeline when re-registering
_PARKED = ("", "")  # what _route_or_park answers for a message left in the outbox
_ACK_DELAY = 0.005  # a link's receiver acknowledges at most this long after handling a frame
_HOLD_SECONDS = 2.0  # a frame waits this long at most for its ``after`` entry (then delivered)
_SETTLE_SECONDS = 2.0  # a message through Redis waits this long at most for the link's frames
_LINK_RETRY = 1.0  # seconds between attempts to open a link to one node
_ROUTE_IDLE = 60.0  # a route unused this long is forgotten
_RECEIVED_MAX = 10_000  # links whose last frame number is remembered (for frames sent again)


class BrokerUnavailable(Exception):
    """Redis cannot be reached at start; the message is one sentence for a person."""


@dataclass
class _Parked:
    """A message waiting in the outbox for Redis (or for its topic's holder); a link's frame
    sent again carries its link and number (the holder drops it if it had it already)."""

    topic: str
    text: str
    since: float
    link_id: str = ""
    seq: int = 0


@dataclass
class _Route:
    """Where this node last sent a topic's messages: its holder, the id of the last entry
    appended to the holder's stream for it, and the last frame sent for it on ``link``."""

    holder: str
    after: str
    used: float
    link: OutLink | None = None
    seq: int = 0
    stale: bool = False  # the holder said it does not hold the topic any more


def _dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def _entries(reply: Any) -> list[tuple[str, list[tuple[str, dict[str, str]]]]]:
    """XREAD's reply as (stream, entries) pairs, whether RESP2 (a list) or RESP3 (a dict)."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(k, v[0] if v and isinstance(v[0], list) else v) for k, v in reply.items()]
    return [(k, v) for k, v in reply]


def _stream_id(value: str) -> tuple[int, int]:
    millis, _, seq = value.partition("-")
    return int(millis), int(seq or 0)


class RedisBroker:
    """The :class:`~signaling.broker.Broker` for several nodes on one Redis server (see the
    module's docstring for the keys and what is and is not guaranteed).

    ``start`` before use (it raises when Redis cannot be reached then); ``close`` at the end.
    """

    def __init__(
        self,
        url: str,
        node_id: str,
        *,
        prefix: str = "signaling",
        topic_ttl: float = 15.0,
        stream_maxlen: int = 10_000,
        stream_ttl: float = 3600.0,
        outbox_max: int = 10_000,
        outbox_seconds: float = 30.0,
        broadcast_maxlen: int = 1000,
        retry_min: float = 0.05,
        retry_max: float = 2.0,
        # 5 s, not 2: a node's own stall (CPU, not Redis) is not Redis away (docs/scaling.md).
        command_timeout: float = 5.0,
        read_block: float = 1.0,
        card_ttl: float = 45.0,
        link_key: bytes | None = None,
        link_host: str = "127.0.0.1",
        link_port: int = 0,
    ) -> None:
        if not node_id or any(c.isspace() for c in node_id):
            raise ValueError(f"node_id {node_id!r}: a non-empty name without spaces")
        self.url = url
        self.node_id = node_id
        self.topic_ttl = topic_ttl
        self.stream_maxlen = stream_maxlen
        self.stream_ttl = stream_ttl
        self.outbox_max = outbox_max
        self.outbox_seconds = outbox_seconds
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.read_block = read_block
        self.card_ttl = card_ttl
        self._card_prefix = f"{prefix}:card:"
        self._link_prefix = f"{prefix}:link:"
        # Links (signaling/node_link.py): relayed frames go straight to the holder's node.
        self._link_key = link_key
        self._link_bind = (link_host, link_port)
        self._link_server: LinkServer | None = None
        self.link_address: str | None = None  # "host:port" the other nodes connect to
        self._links: dict[str, OutLink] = {}  # peer node → its link (open or being opened)
        self._link_retry: dict[str, float] = {}  # peer node → no new attempt before this
        self._routes: dict[str, _Route] = {}
        self._received: dict[str, int] = {}  # link id → its last frame received here
        self._holding: set[InLink] = set()  # links with frames held for their ``after``
        self._cards: dict[str, str] = {}  # key → the card's JSON, renewed with the topics
        self._topic_prefix = f"{prefix}:topic:"
        self._stream_prefix = f"{prefix}:node:"
        self._alive_prefix = f"{prefix}:alive:"
        self.alive_channel = f"{self._alive_prefix}{node_id}"
        self.stream = f"{self._stream_prefix}{node_id}"
        self.broadcast_stream = f"{prefix}:broadcast"
        self.broadcast_maxlen = broadcast_maxlen
        options: dict[str, Any] = {
            "decode_responses": True,
            "socket_connect_timeout": command_timeout,
            "retry": Retry(NoBackoff(), 0),  # this class retries, with its own backoff
        }
        # Named (CLIENT LIST shows each node's connections); the reader blocks in XREAD up to
        # read_block: its own connection, a longer timeout.
        self._redis = Redis.from_url(
            url, socket_timeout=command_timeout, client_name=node_id, **options
        )
        self._reader = Redis.from_url(
            url,
            socket_timeout=read_block + command_timeout,
            client_name=f"{node_id}:reader",
            **options,
        )
        # Subscribed to the alive channel for as long as the node runs; pinged as often as a
        # topic is renewed, so a connection lost without a word is found and replaced.
        self._alive = Redis.from_url(
            url,
            socket_timeout=read_block + command_timeout,
            client_name=f"{node_id}:alive",
            health_check_interval=topic_ttl / 3,
            **options,
        )
        self._publish = self._redis.register_script(_PUBLISH)
        self._renew = self._redis.register_script(_RENEW)
        self._release = self._redis.register_script(_RELEASE)
        self._local: dict[str, Deliver] = {}
        self._listeners: dict[str, list[Deliver]] = {}
        self._last_id = "0-0"
        self._passed_id = "0-0"  # the last entry of this node's stream handed over (or skipped)
        self._broadcast_id = "0-0"
        self._outbox: deque[_Parked] = deque()
        self._parked_topics: set[str] = set()
        self._outbox_ready = asyncio.Event()
        self._healthy = False
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        self._stopping = False
        # Read by tests and metrics.
        self.dropped = 0  # parked messages given up (no holder in time, or outbox full)
        self.reconnects = 0
        self.wire_mismatches = 0  # entries of another WIRE_VERSION, dropped unread
        self.broadcasts_missed = 0  # broadcasts that reached this node only (Redis away)
        self.link_frames = 0  # frames sent on links
        self.link_resent = 0  # frames a closed link had not had handled, sent through Redis
        self.link_forwarded = 0  # frames that came here for a topic held elsewhere now
        self.link_duplicates = 0  # entries sent again that had come on their link already

    def topic_key(self, topic: str) -> str:
        return f"{self._topic_prefix}{topic}"

    @property
    def healthy(self) -> bool:
        """Whether Redis answered the last time this node asked."""
        return self._healthy

    @property
    def links_open(self) -> int:
        """Links from this node to others, open now."""
        return sum(1 for link in self._links.values() if link.is_open)

    @property
    def links_refused(self) -> int:
        """Links other nodes tried to open here with the wrong key."""
        return 0 if self._link_server is None else self._link_server.refused

    @property
    def waiting(self) -> int:
        """Messages waiting in the outbox for Redis (or for their topic's holder)."""
        return len(self._outbox)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect (raises when Redis cannot be reached), start afresh on this node's stream
        (what a previous process of the same id left there is not ours), start the loops."""
        try:
            await self._redis.ping()
            await self._redis.delete(self.stream)
            newest = await self._redis.xrevrange(self.broadcast_stream, count=1)
            alive = self._alive.pubsub()
            await alive.subscribe(self.alive_channel)
        except _UNREACHABLE as exc:
            await self._alive.aclose()
            await self._reader.aclose()
            await self._redis.aclose()
            where = urlsplit(self.url)
            raise BrokerUnavailable(
                f"Redis at {where.hostname}:{where.port or 6379} cannot be reached "
                f"({type(exc).__name__}: {exc}); start it or correct redis_url."
            ) from None
        self._last_id = "0-0"
        self._broadcast_id = str(newest[0][0]) if newest else "0-0"
        self._healthy = True
        if self._link_key is not None:
            self._link_server = LinkServer(self.node_id, self._link_key, self._link_frame)
            host, port = await self._link_server.start(*self._link_bind)
            self.link_address = f"{host}:{port}"
            await self._redis.set(self._link_prefix + self.node_id, self.link_address,
                                  px=self._ttl_ms)  # fmt: skip
        self._tasks = [
            asyncio.create_task(self._read_loop(), name=f"redis-read-{self.node_id}"),
            asyncio.create_task(self._renew_loop(), name=f"redis-renew-{self.node_id}"),
            asyncio.create_task(self._outbox_loop(), name=f"redis-outbox-{self.node_id}"),
            asyncio.create_task(self._alive_loop(alive), name=f"redis-alive-{self.node_id}"),
        ]

    async def close(self, release: bool = True) -> None:
        """Stop the loops and close the connections (the alive channel's too: from then on the
        other nodes take this node for dead). ``release``: delete this node's topic keys and
        stream; without it they stay until their TTLs end, as a killed node's would."""
        # Each loop also checks _stopping: redis-py can turn a cancellation that lands inside a
        # read into one of its own errors, which the loops would take for Redis being away.
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        # A blocking XREAD ends at once when its connection closes (else after read_block).
        with contextlib.suppress(Exception):
            await self._reader.connection_pool.disconnect()
        with contextlib.suppress(Exception):
            await self._alive.connection_pool.disconnect()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self.read_block + 5)
        self._tasks = []
        for task in list(self._background):
            task.cancel()
        for link in list(self._links.values()):
            await link.aclose()
        if self._link_server is not None:
            await self._link_server.close()
        if release:
            with contextlib.suppress(*_UNREACHABLE):
                topics = list(self._local)
                for start in range(0, len(topics), _RENEW_BATCH):
                    async with self._redis.pipeline(transaction=False) as pipe:
                        for topic in topics[start : start + _RENEW_BATCH]:
                            await self._release(
                                keys=[self.topic_key(topic)], args=[self.node_id], client=pipe
                            )
                        await pipe.execute()
                await self._redis.delete(self.stream)
                if self.link_address is not None:
                    await self._release(keys=[self._link_prefix + self.node_id],
                                        args=[self.link_address])  # fmt: skip
        self._cards.clear()  # kept in Redis for card_ttl: sessions may be taken over elsewhere
        self._local.clear()
        self._listeners.clear()
        await self._alive.aclose()
        await self._reader.aclose()
        await self._redis.aclose()

    # ------------------------------------------------------------------ the Broker protocol

    async def subscribe(self, topic: str, deliver: Deliver) -> None:
        """Hold ``topic`` here. Never raises for Redis: unreachable, the topic is registered
        when Redis answers again (until then other nodes cannot reach it).

        A topic this node sent frames for on a link (a session moving here from its holder)
        is taken only once the holder has handled them: it still holds the session then and
        keeps them in its history, and what is sent from here on comes after them. (Without
        the wait, a frame still on the link reached the holder after it had given the session
        up, came back through Redis, and arrived after later ones.)"""
        route = self._routes.get(topic)
        if route is not None:
            route.stale = True  # nothing more on the link for it
            await self._settle(topic, route)
        self._local[topic] = deliver
        if not self._healthy:
            return  # registered with the others when the reader reconnects
        try:
            await self._redis.set(self.topic_key(topic), self.node_id, px=self._ttl_ms)
        except _UNREACHABLE as exc:
            self._lost(exc)

    async def unsubscribe(self, topic: str, deliver: Deliver | None = None) -> None:
        if deliver is not None and self._local.get(topic) != deliver:
            return  # another subscriber holds it here now
        if self._local.pop(topic, None) is None or not self._healthy:
            return  # (unreachable: the key ends with its TTL)
        try:
            await self._release(keys=[self.topic_key(topic)], args=[self.node_id])
        except _UNREACHABLE as exc:  # the key ends with its TTL
            self._lost(exc)

    async def publish(self, topic: str, message: dict[str, Any]) -> bool:
        """Deliver here, on the link to the holder's node, or append to the holder's stream;
        False when nobody holds the topic. While Redis cannot be reached (or earlier messages
        of the topic still wait), the message waits in the outbox and the answer is True.

        Only relayed text (``_encoded``) goes on a link, to a holder known from the last
        message through Redis (the answer is then True without asking Redis); anything else
        goes through Redis once the link's frames for the topic have been handled."""
        deliver = self._local.get(topic)
        if deliver is not None:
            await deliver(message)
            return True
        text = _dumps(message)
        if topic in self._parked_topics:
            self._park(topic, text)
            return True
        route = self._routes.get(topic)
        if route is not None:
            if message.get("type") == "_encoded" and self._send_on_link(topic, text, route):
                return True
            await self._settle(topic, route)
            if topic in self._parked_topics:  # frames sent again through Redis wait there
                self._park(topic, text)
                return True
        routed = await self._route_or_park(topic, text)
        if routed is _PARKED:
            return True
        if routed is None:
            return False
        holder, entry = routed
        if holder != self.node_id:
            self._remember(topic, holder, entry)
            return True
        # This node holds it: subscribed here while the script ran (a session moving here),
        # or a stale key (nobody holds it).
        deliver = self._local.get(topic)
        if deliver is None:
            return False
        await deliver(message)
        return True

    async def save_card(self, key: str, card: dict[str, Any]) -> None:
        """Keep ``card`` under ``key`` in Redis, renewed with this node's topics; once the node
        stops renewing it, it lives ``card_ttl`` more. Never raises for Redis (unreachable: it
        is written when the node re-registers its topics)."""
        text = _dumps(card)
        self._cards[key] = text
        if not self._healthy:
            return
        try:
            await self._redis.set(f"{self._card_prefix}{key}", text, px=self._card_ttl_ms)
        except _UNREACHABLE as exc:
            self._lost(exc)

    async def drop_card(self, key: str) -> None:
        if self._cards.pop(key, None) is None or not self._healthy:
            return  # (unreachable: the key ends with its TTL)
        try:
            await self._redis.delete(f"{self._card_prefix}{key}")
        except _UNREACHABLE as exc:
            self._lost(exc)

    async def card(self, key: str) -> dict[str, Any] | None:
        """The card under ``key``; None when there is none, or Redis cannot be reached."""
        if not self._healthy:
            return None
        try:
            text = await self._redis.get(f"{self._card_prefix}{key}")
        except _UNREACHABLE as exc:
            self._lost(exc)
            return None
        if text is None:
            return None
        card = json.loads(text)
        return card if isinstance(card, dict) else None

    async def listen(self, channel: str, deliver: Deliver) -> None:
        self._listeners.setdefault(channel, []).append(deliver)

    async def unlisten(self, channel: str, deliver: Deliver) -> None:
        listeners = self._listeners.get(channel, [])
        if deliver in listeners:
            listeners.remove(deliver)

    async def broadcast(self, channel: str, message: dict[str, Any]) -> None:
        """Deliver to this node's listeners, then append to the broadcast stream for the
        others. Never raises for Redis: unreachable, the others miss it (counted)."""
        text = _dumps(message)
        await self._hand_over_broadcast(channel, text)
        if not self._healthy:
            self.broadcasts_missed += 1
            return
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                entry = {"c": channel, "m": text, "n": self.node_id, "w": WIRE_VERSION}
                pipe.xadd(self.broadcast_stream, entry,  # type: ignore[arg-type]
                          maxlen=self.broadcast_maxlen, approximate=True)  # fmt: skip
                pipe.pexpire(self.broadcast_stream, max(1, int(self.stream_ttl * 1000)))
                await pipe.execute()
        except _UNREACHABLE as exc:
            self.broadcasts_missed += 1
            self._lost(exc)

    # ------------------------------------------------------------------ internals

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.topic_ttl * 1000))

    @property
    def _card_ttl_ms(self) -> int:
        return max(1, int(self.card_ttl * 1000))

    async def _route_or_park(self, topic: str, text: str) -> tuple[str, str] | None:
        """``_route``, or ``_PARKED`` when Redis cannot be reached (the message waits in the
        outbox)."""
        if not self._healthy:
            self._park(topic, text)
            return _PARKED
        try:
            return await self._route(topic, text)
        except _UNREACHABLE as exc:
            self._lost(exc)
            self._park(topic, text)
            return _PARKED

    async def _route(
        self, topic: str, text: str, link_id: str = "", seq: int = 0
    ) -> tuple[str, str] | None:
        """Append to the holder's stream: (holder, entry id), the id empty when the holder is
        this node; None when nobody (alive) holds the topic."""
        routed = await self._publish(
            keys=[self.topic_key(topic)],
            args=[
                self.node_id,
                self._stream_prefix,
                self.stream_maxlen,
                topic,
                text,
                self._alive_prefix,
                WIRE_VERSION,
                link_id,
                seq,
            ],
        )
        if not routed:
            return None
        return str(routed[0]), str(routed[1])

    # ------------------------------------------------------------------ links

    def _remember(self, topic: str, holder: str, entry: str) -> None:
        """After a message through Redis: the next relayed frames for ``topic`` may go on a
        link to ``holder`` (opened now if need be), after that entry."""
        if self._link_key is None:
            return
        self._routes[topic] = _Route(holder, entry, time.monotonic())
        self._link_to(holder)

    def _link_to(self, peer: str) -> OutLink | None:
        """The open link to ``peer``; None while there is none (one is being opened)."""
        link = self._links.get(peer)
        if link is not None and (link.is_open or not link.closed.is_set()):
            return link if link.is_open else None
        if self._stopping or time.monotonic() < self._link_retry.get(peer, 0.0):
            return None
        link = OutLink(peer, f"{self.node_id}.{secrets.token_hex(6)}")
        self._links[peer] = link
        self._spawn(self._open_link(link))
        return None

    def _send_on_link(self, topic: str, text: str, route: _Route) -> bool:
        """Write the frame on the link to the route's holder; False when it cannot go there
        (no open link, the holder moved it, or a closed link's frames still being sent again)."""
        if route.stale:
            return False
        link = self._link_to(route.holder)
        if link is None or (route.link is not None and route.link is not link):
            return False
        try:
            route.seq = link.send(topic, text, route.after)
        except (ConnectionError, OSError):
            return False
        route.link = link
        route.used = time.monotonic()
        self.link_frames += 1
        return True

    async def _settle(self, topic: str, route: _Route) -> None:
        """Before a message for ``topic`` goes through Redis: wait until the frames sent for it
        on a link have been handled there, or sent again through Redis (the link closed), so
        that it does not overtake them; then forget the route."""
        link = route.link
        if link is not None and route.seq > link.handled:
            if link.is_open:
                await link.wait_handled(route.seq, _SETTLE_SECONDS)
            if not link.is_open:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(link.rerouted.wait(), _SETTLE_SECONDS)
        if self._routes.get(topic) is route:
            del self._routes[topic]

    async def _open_link(self, link: OutLink) -> None:
        try:
            address = await self._redis.get(self._link_prefix + link.peer)
            if not address:
                raise ValueError("it has no link address (links off, or not started)")
            host, _, port = str(address).rpartition(":")
            assert self._link_key is not None
            await link.connect(host, int(port), self._link_key, self.node_id,
                               self._link_moved, self._link_closed)  # fmt: skip
        except Exception as exc:
            log.info("no link to node %s (%s: %s): through Redis meanwhile",
                     link.peer, type(exc).__name__, exc)  # fmt: skip
            self._link_retry[link.peer] = time.monotonic() + _LINK_RETRY
            link.closed.set()
            link.rerouted.set()
            if self._links.get(link.peer) is link:
                del self._links[link.peer]

    def _link_moved(self, link: OutLink, topic: str) -> None:
        route = self._routes.get(topic)
        if route is not None and route.link is link:
            route.stale = True

    def _link_closed(self, link: OutLink) -> None:
        self._link_retry[link.peer] = time.monotonic() + _LINK_RETRY
        self._spawn(self._resend(link))

    async def _resend(self, link: OutLink) -> None:
        """A link closed: what its node had not handled goes again through Redis, in order (the
        holder drops what it had already: ``_read_loop``); waits in the outbox while Redis
        cannot be reached. Then the routes to that node are forgotten: the next message for
        each goes through Redis (and finds where the entry it must follow is)."""
        frames = list(link.unacked)
        link.unacked.clear()
        try:
            for index, frame in enumerate(frames):
                routed: tuple[str, str] | None = _PARKED
                if self._healthy:
                    try:
                        routed = await self._route(frame.topic, frame.text, link.link_id,
                                                   frame.seq)  # fmt: skip
                    except _UNREACHABLE as exc:
                        self._lost(exc)
                if routed is _PARKED:  # the rest wait in the outbox, first, in order
                    waiting = [_Parked(f.topic, f.text, time.monotonic(), link.link_id, f.seq)
                               for f in frames[index:]]  # fmt: skip
                    self._outbox.extendleft(reversed(waiting))
                    self._parked_topics.update(parked.topic for parked in waiting)
                    self._outbox_ready.set()
                    break
                self.link_resent += 1
                if routed is None:
                    self.dropped += 1  # nobody holds it now (the node died): as a publish's False
                elif routed[0] == self.node_id:
                    await self._hand_over(frame.topic, frame.text)
        finally:
            for topic, route in list(self._routes.items()):
                if route.holder == link.peer:
                    del self._routes[topic]
            link.rerouted.set()
            if self._links.get(link.peer) is link:
                del self._links[link.peer]

    async def _link_frame(self, link: InLink, seq: int, after: str, topic: str, text: str) -> None:
        """A frame from another node: handled now, or held until this node's stream reader is
        past its ``after`` entry (what the sender sent before it through Redis)."""
        self._received[link.link_id] = seq
        if len(self._received) > _RECEIVED_MAX:
            del self._received[next(iter(self._received))]
        if link.held or _stream_id(after) > _stream_id(self._passed_id):
            link.held.append((seq, after, topic, text, time.monotonic()))
            self._holding.add(link)
            return
        await self._take_frame(link, seq, topic, text)

    async def _take_frame(self, link: InLink, seq: int, topic: str, text: str) -> None:
        if topic in self._local:
            await self._hand_over(topic, text)
        else:  # moved or ended: to its holder through Redis, and the sender told
            self.link_forwarded += 1
            await self._forward(topic, text)
            link.moved(topic)
        link.done(seq, _ACK_DELAY)

    async def _forward(self, topic: str, text: str) -> None:
        """A frame for a topic held elsewhere now: through Redis (never a link: two nodes'
        stale routes must not send it back and forth)."""
        if topic in self._parked_topics:
            self._park(topic, text)
            return
        routed = await self._route_or_park(topic, text)
        if routed is not _PARKED and routed is not None and routed[0] == self.node_id:
            await self._hand_over(topic, text)

    async def _release_held(self) -> None:
        """Hand over the held frames whose ``after`` entry has been read (or that waited
        ``_HOLD_SECONDS``: the entry is gone, trimmed or lost with a Redis restart)."""
        now = time.monotonic()
        for link in list(self._holding):
            while link.held:
                seq, after, topic, text, since = link.held[0]
                if _stream_id(after) > _stream_id(self._passed_id):
                    if now - since < _HOLD_SECONDS:
                        break
                    log.warning("a node link's frame delivered without the entry it follows",
                                extra={"topic": topic, "after": after})  # fmt: skip
                # Taken off only once handled: a frame arriving meanwhile is held behind it.
                await self._take_frame(link, seq, topic, text)
                link.held.popleft()
            if not link.held:
                self._holding.discard(link)

    def _forget_idle_routes(self) -> None:
        idle = time.monotonic() - _ROUTE_IDLE
        for topic, route in list(self._routes.items()):
            if route.used < idle and (route.link is None or route.seq <= route.link.handled):
                del self._routes[topic]

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _lost(self, exc: BaseException) -> None:
        if self._healthy:
            log.warning("Redis unreachable (%s): retrying", type(exc).__name__)
        self._healthy = False

    def _trouble(self, exc: Exception) -> None:
        """A loop's failure: Redis away, or (logged with its traceback) anything else; either
        way everything is re-asserted before this node counts as reachable again."""
        if not isinstance(exc, _UNREACHABLE):
            log.exception("Redis broker loop failed: retrying", exc_info=exc)
        self._lost(exc)

    def _park(self, topic: str, text: str) -> None:
        if len(self._outbox) >= self.outbox_max:
            oldest = self._outbox.popleft()
            self.dropped += 1
            log.warning("redis outbox full: dropped a message", extra={"topic": oldest.topic})
        self._outbox.append(_Parked(topic, text, time.monotonic()))
        self._parked_topics.add(topic)
        self._outbox_ready.set()

    async def _hand_over(self, topic: str, text: str) -> None:
        deliver = self._local.get(topic)
        if deliver is None:  # unsubscribed meanwhile
            return
        try:
            await deliver(json.loads(text))
        except Exception:
            log.exception("delivering a brokered message failed", extra={"topic": topic})

    async def _hand_over_broadcast(self, channel: str, text: str) -> None:
        for deliver in list(self._listeners.get(channel, ())):
            try:
                await deliver(json.loads(text))
            except Exception:
                log.exception("delivering a broadcast failed", extra={"channel": channel})

    async def _reassert(self) -> None:
        """After (re)connecting: every held topic registered again (unless another node took
        it), the stream's TTL renewed, and the read position checked against the stream (a
        Redis restarted without persistence starts it anew)."""
        topics = list(self._local)
        taken = 0
        for start in range(0, len(topics), _RENEW_BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for topic in topics[start : start + _RENEW_BATCH]:
                    await self._renew(
                        keys=[self.topic_key(topic)], args=[self.node_id, self._ttl_ms], client=pipe
                    )
                results = await pipe.execute()
            taken += sum(1 for result in results if not result)
        if taken:
            log.warning("%d topics are held by other nodes now", taken)
        cards = list(self._cards.items())
        for start in range(0, len(cards), _RENEW_BATCH):
            async with self._redis.pipeline(transaction=False) as pipe:
                for key, text in cards[start : start + _RENEW_BATCH]:
                    pipe.set(f"{self._card_prefix}{key}", text, px=self._card_ttl_ms)
                await pipe.execute()
        await self._redis.pexpire(self.stream, max(1, int(self.stream_ttl * 1000)))
        if self.link_address is not None:
            await self._redis.set(self._link_prefix + self.node_id, self.link_address,
                                  px=self._ttl_ms)  # fmt: skip
        self._forget_idle_routes()

    async def _check_read_position(self) -> None:
        """After a reconnect, keep reading from the last id delivered: entry ids are Redis's
        clock in ms, so what is appended after a restart sorts after it, and what a restored
        snapshot holds up to it is not delivered again. Only a Redis clock behind that id
        (new entries would hide below it) starts the reader at the stream's beginning."""
        try:
            await self._redis.xinfo_stream(self.stream)
        except ResponseError:  # no such stream: nothing in it can be delivered twice
            self._last_id = "0-0"
            return
        seconds, micros = await self._redis.time()
        if _stream_id(self._last_id)[0] > seconds * 1000 + micros // 1000:
            log.warning("Redis's clock is behind this node's read position: reading its stream "
                        "from the start")  # fmt: skip
            self._last_id = "0-0"

    async def _read_loop(self) -> None:
        delay = self.retry_min
        while not self._stopping:
            try:
                # Unhealthy (this connection failed, or a command elsewhere did): everything is
                # re-asserted before this node counts as reachable again.
                if not self._healthy:
                    await self._check_read_position()
                    await self._reassert()
                    delay = self.retry_min
                    self.reconnects += 1
                    self._healthy = True
                    self._outbox_ready.set()
                    log.info("Redis reachable again: topics re-registered")
                if self._holding:
                    await self._release_held()
                reply = await self._reader.xread(
                    {self.stream: self._last_id, self.broadcast_stream: self._broadcast_id},
                    count=200,
                    block=int(self.read_block * 1000),
                )
            except Exception as exc:  # unreachable, or an answer not understood: again later
                if self._stopping:
                    return
                self._trouble(exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)
                continue
            for stream, entries in _entries(reply):
                for entry_id, fields in entries:
                    if fields.get("w", WIRE_VERSION) != WIRE_VERSION:
                        self._misread(stream, str(entry_id), fields)
                        continue
                    if stream != self.broadcast_stream:
                        self._last_id = str(entry_id)
                        if not self._resent_twice(fields):
                            topic, text = str(fields.get("t", "")), str(fields.get("m", "{}"))
                            await self._hand_over(topic, text)
                        self._passed_id = self._last_id
                        if self._holding:
                            await self._release_held()
                        continue
                    self._broadcast_id = str(entry_id)
                    if fields.get("n") != self.node_id:  # this node's own: delivered already
                        channel, text = str(fields.get("c", "")), str(fields.get("m", "{}"))
                        await self._hand_over_broadcast(channel, text)

    def _resent_twice(self, fields: dict[str, str]) -> bool:
        """Whether an entry is a link's frame sent again that had come on the link already."""
        link_id = fields.get("l")
        if not link_id:
            return False
        seq = int(fields.get("s", 0))
        if seq <= self._received.get(link_id, 0):
            self.link_duplicates += 1
            return True
        self._received[link_id] = seq
        return False

    def _misread(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """An entry written by a node of another WIRE_VERSION: skipped (its position is kept, so
        it is not read again), counted and logged."""
        if stream == self.broadcast_stream:
            self._broadcast_id = entry_id
        else:
            self._last_id = self._passed_id = entry_id
        self.wire_mismatches += 1
        log.warning(
            "redis entry of another wire version dropped: run one version on every node",
            extra={"wire": fields.get("w"), "expected": WIRE_VERSION, "topic": fields.get("t"),
                   "channel": fields.get("c"), "from_node": fields.get("n")},
        )  # fmt: skip

    async def _renew_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.topic_ttl / 3)
            if not self._healthy:
                continue  # the reader re-asserts everything once Redis answers
            try:
                await self._reassert()
            except Exception as exc:
                if not self._stopping:
                    self._trouble(exc)

    async def _alive_loop(self, alive: PubSub | None) -> None:
        """Keep the alive channel subscribed (``start`` subscribed it first); after a drop,
        subscribe again on a new connection. Nothing is published on it: reading only finds a
        dropped connection (and answers the health check's pings)."""
        delay = self.retry_min
        while not self._stopping:
            try:
                if alive is None:
                    alive = self._alive.pubsub()
                    await alive.subscribe(self.alive_channel)
                    delay = self.retry_min
                await alive.get_message(timeout=self.read_block)
            except Exception as exc:
                if self._stopping:
                    return
                self._trouble(exc)
                if alive is not None:
                    with contextlib.suppress(Exception):
                        await alive.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis-py 8
                alive = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max)

    async def _outbox_loop(self) -> None:
        delay = self.retry_min
        while not self._stopping:
            if self._outbox:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outbox_ready.wait(), delay)
            else:
                await self._outbox_ready.wait()
            self._outbox_ready.clear()
            if not self._outbox or not self._healthy:
                delay = min(delay * 2, self.retry_max)
                continue
            try:
                await self._flush()
                delay = self.retry_min if not self._outbox else self.retry_max
            except Exception as exc:
                if self._stopping:
                    return
                self._trouble(exc)
                delay = min(delay * 2, self.retry_max)

    async def _flush(self) -> None:
        """Route what waits in the outbox, oldest first. A topic with no holder yet (its node
        may not have re-registered) keeps its messages, in order; a message older than
        ``outbox_seconds`` is dropped."""
        waiting: list[_Parked] = []
        blocked: set[str] = set()
        try:
            while self._outbox:
                parked = self._outbox[0]
                if parked.topic in blocked:
                    waiting.append(self._outbox.popleft())
                    continue
                deliver = self._local.get(parked.topic)
                if deliver is not None:
                    self._outbox.popleft()
                    await self._hand_over(parked.topic, parked.text)
                    continue
                if time.monotonic() - parked.since > self.outbox_seconds:
                    self._outbox.popleft()
                    self.dropped += 1
                    log.warning("brokered message dropped: waited too long for its topic",
                                extra={"topic": parked.topic})  # fmt: skip
                    continue
                routed = await self._route(parked.topic, parked.text, parked.link_id,
                                           parked.seq)  # may raise: kept  # fmt: skip
                self._outbox.popleft()
                if routed is None or routed[0] == self.node_id:
                    blocked.add(parked.topic)
                    waiting.append(parked)
        finally:
            self._outbox.extendleft(reversed(waiting))
            self._parked_topics = {parked.topic for parked in self._outbox}
