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

Publishing looks the holder up, checks that it is alive and appends to its stream in one Lua
script (one round trip).

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
# prefix, wire version. Returns the holder (false when none, or when its alive channel has no
# subscriber: its process died); appends to the holder's stream unless the holder is this node.
_PUBLISH = """
local holder = redis.call('GET', KEYS[1])
if not holder then return false end
if holder ~= ARGV[1] then
  if redis.call('PUBSUB', 'NUMSUB', ARGV[6] .. holder)[2] == 0 then return false end
  redis.call('XADD', ARGV[2] .. holder, 'MAXLEN', '~', ARGV[3], '*', 't', ARGV[4], 'm', ARGV[5],
             'w', ARGV[7])
end
return holder
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


class BrokerUnavailable(Exception):
    """Redis cannot be reached at start; the message is one sentence for a person."""


@dataclass
class _Parked:
    """A message waiting in the outbox for Redis (or for its topic's holder)."""

    topic: str
    text: str
    since: float


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
        self._broadcast_id = "0-0"
        self._outbox: deque[_Parked] = deque()
        self._parked_topics: set[str] = set()
        self._outbox_ready = asyncio.Event()
        self._healthy = False
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        # Read by tests and metrics.
        self.dropped = 0  # parked messages given up (no holder in time, or outbox full)
        self.reconnects = 0
        self.wire_mismatches = 0  # entries of another WIRE_VERSION, dropped unread
        self.broadcasts_missed = 0  # broadcasts that reached this node only (Redis away)

    def topic_key(self, topic: str) -> str:
        return f"{self._topic_prefix}{topic}"

    @property
    def healthy(self) -> bool:
        """Whether Redis answered the last time this node asked."""
        return self._healthy

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
        self._cards.clear()  # kept in Redis for card_ttl: sessions may be taken over elsewhere
        self._local.clear()
        self._listeners.clear()
        await self._alive.aclose()
        await self._reader.aclose()
        await self._redis.aclose()

    # ------------------------------------------------------------------ the Broker protocol

    async def subscribe(self, topic: str, deliver: Deliver) -> None:
        """Hold ``topic`` here. Never raises for Redis: unreachable, the topic is registered
        when Redis answers again (until then other nodes cannot reach it)."""
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
        """Deliver here, or append to the holder's stream; False when nobody holds the topic.
        While Redis cannot be reached (or earlier messages of the topic still wait), the
        message waits in the outbox and the answer is True."""
        deliver = self._local.get(topic)
        if deliver is not None:
            await deliver(message)
            return True
        text = _dumps(message)
        if not self._healthy or topic in self._parked_topics:
            self._park(topic, text)
            return True
        try:
            holder = await self._route(topic, text)
        except _UNREACHABLE as exc:
            self._lost(exc)
            self._park(topic, text)
            return True
        if holder != self.node_id:
            return holder is not None
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

    async def _route(self, topic: str, text: str) -> str | None:
        holder = await self._publish(
            keys=[self.topic_key(topic)],
            args=[
                self.node_id,
                self._stream_prefix,
                self.stream_maxlen,
                topic,
                text,
                self._alive_prefix,
                WIRE_VERSION,
            ],
        )
        return None if holder is None else str(holder)

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
                        await self._hand_over(str(fields.get("t", "")), str(fields.get("m", "{}")))
                        continue
                    self._broadcast_id = str(entry_id)
                    if fields.get("n") != self.node_id:  # this node's own: delivered already
                        channel, text = str(fields.get("c", "")), str(fields.get("m", "{}"))
                        await self._hand_over_broadcast(channel, text)

    def _misread(self, stream: str, entry_id: str, fields: dict[str, str]) -> None:
        """An entry written by a node of another WIRE_VERSION: skipped (its position is kept, so
        it is not read again), counted and logged."""
        if stream == self.broadcast_stream:
            self._broadcast_id = entry_id
        else:
            self._last_id = entry_id
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
                holder = await self._route(parked.topic, parked.text)  # may raise: kept
                self._outbox.popleft()
                if holder is None or holder == self.node_id:
                    blocked.add(parked.topic)
                    waiting.append(parked)
        finally:
            self._outbox.extendleft(reversed(waiting))
            self._parked_topics = {parked.topic for parked in self._outbox}
