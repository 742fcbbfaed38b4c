"""Direct sockets between nodes, for relayed frames: the Redis hop without Redis on it.

A frame relayed across nodes through Redis passes two more processes than one relayed on one
node (Redis, then the other node's reader); on a busy machine each is a wait to be scheduled,
and that wait is the cross-node tail (docs/scaling.md). A link is one TCP connection from this
node to another, on which this node writes the frames it relays to sessions held there; the
other node writes back which frames it has handled. ``RedisBroker`` decides what goes on a link
and keeps Redis as the truth (who holds a topic, what is still to deliver when a link fails).

One line per message, UTF-8 (a frame's text is JSON, which has no raw newline):

- ``hello <nonce> <node>``: the listening node, on accepting a connection.
- ``auth <mac> <node> <link id>``: the connecting node; ``mac`` is HMAC-SHA256 (hex) over
  ``<nonce> <listening node> <connecting node> <link id>`` with the key every node shares. A
  wrong one closes the connection.
- ``ok``: the listening node accepts.
- ``d <seq> <after> <topic> <text>``: a frame for ``topic``, numbered from 1 on each link;
  ``after`` is the id of the last entry the sender appended to the receiver's Redis stream
  for the topic (``0-0`` for none): the receiver delivers the frame only once its stream
  reader is past that entry, so a frame never overtakes what was sent before it through Redis.
- ``a <seq>``: every frame up to ``seq`` has been handled (delivered, or forwarded through
  Redis); sent at most every ``ack_delay`` seconds.
- ``m <topic>``: the topic is not held by the receiving node (its session moved or ended):
  the frame was forwarded through Redis, and the sender stops using the link for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger("signaling.link")

LINE_LIMIT = 4 * 1024 * 1024  # the longest line read (a frame is far smaller: the hub's limit)
HANDSHAKE_SECONDS = 5.0


def mac(key: bytes, nonce: str, listening: str, connecting: str, link_id: str) -> str:
    text = f"{nonce} {listening} {connecting} {link_id}".encode()
    return hmac.new(key, text, hashlib.sha256).hexdigest()


@dataclass
class Frame:
    seq: int
    topic: str
    text: str
    sent: float  # time.monotonic() when written


@dataclass(eq=False)
class OutLink:
    """This node's connection to ``peer``: frames written and kept until the peer has handled
    them. Invariant: ``unacked`` holds, in order, every frame numbered after ``handled``."""

    peer: str
    link_id: str
    max_unacked: int = 10_000
    ack_timeout: float = 5.0
    handled: int = 0
    seq: int = 0
    unacked: deque[Frame] = field(default_factory=deque)
    is_open: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    rerouted: asyncio.Event = field(default_factory=asyncio.Event)  # set by the broker
    _progress: asyncio.Event = field(default_factory=asyncio.Event)
    _writer: asyncio.StreamWriter | None = None
    _reader_task: asyncio.Task[None] | None = None

    async def connect(
        self,
        host: str,
        port: int,
        key: bytes,
        node_id: str,
        on_moved: Callable[[OutLink, str], None],
        on_closed: Callable[[OutLink], None],
    ) -> None:
        """Connect and authenticate; raises OSError, ValueError or TimeoutError on failure."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=LINE_LIMIT), HANDSHAKE_SECONDS
        )
        try:
            hello = (await asyncio.wait_for(reader.readline(), HANDSHAKE_SECONDS)).decode()
            kind, nonce, listening = hello.split()
            if kind != "hello" or listening != self.peer:
                raise ValueError(f"not the node {self.peer}: {hello.strip()[:80]!r}")
            proof = mac(key, nonce, listening, node_id, self.link_id)
            writer.write(f"auth {proof} {node_id} {self.link_id}\n".encode())
            answer = await asyncio.wait_for(reader.readline(), HANDSHAKE_SECONDS)
            if answer != b"ok\n":
                raise ValueError(f"the node {self.peer} refused this node's key")
        except BaseException:
            writer.close()
            raise
        with contextlib.suppress(OSError):
            writer.transport.set_write_buffer_limits(high=LINE_LIMIT)
        self._writer = writer
        self.is_open = True
        self._reader_task = asyncio.create_task(
            self._read(reader, on_moved, on_closed), name=f"link-{self.peer}"
        )

    def send(self, topic: str, text: str, after: str) -> int:
        """Write a frame for ``topic``; its number. Closes the link instead when the peer has
        fallen too far behind (too many frames, or the oldest too long, not handled)."""
        if self.unacked and (
            len(self.unacked) >= self.max_unacked
            or time.monotonic() - self.unacked[0].sent > self.ack_timeout
        ):
            self.close("the other node stopped answering")
        if not self.is_open or self._writer is None:
            raise ConnectionError("link closed")
        self.seq += 1
        self.unacked.append(Frame(self.seq, topic, text, time.monotonic()))
        self._writer.write(f"d {self.seq} {after} {topic} {text}\n".encode())
        return self.seq

    async def wait_handled(self, seq: int, timeout: float) -> bool:
        """Until the peer has handled frame ``seq`` (True) or the link closed or the time ran
        out (False)."""
        deadline = time.monotonic() + timeout
        while self.handled < seq and self.is_open:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        return self.handled >= seq

    def close(self, reason: str) -> None:
        """Stop using the link; what was not handled stays in ``unacked`` for the broker."""
        if not self.is_open:
            return
        log.info("node link closed", extra={"peer": self.peer, "reason": reason})
        self.is_open = False
        if self._writer is not None:
            self._writer.close()
        self._progress.set()
        self.closed.set()

    async def _read(
        self,
        reader: asyncio.StreamReader,
        on_moved: Callable[[OutLink, str], None],
        on_closed: Callable[[OutLink], None],
    ) -> None:
        reason = "the other node closed it"
        try:
            while self.is_open:
                line = await reader.readline()
                if not line:
                    break
                kind, _, rest = line.decode().rstrip("\n").partition(" ")
                if kind == "a":
                    self.handled = max(self.handled, int(rest))
                    while self.unacked and self.unacked[0].seq <= self.handled:
                        self.unacked.popleft()
                    self._progress.set()
                elif kind == "m":
                    on_moved(self, rest)
        except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except asyncio.CancelledError:
            reason = "stopping"
        finally:
            was_open = self.is_open
            self.close(reason)
            if was_open or reason != "stopping":
                on_closed(self)

    async def aclose(self) -> None:
        self.close("stopping")
        if self._reader_task is not None:
            self._reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader_task


@dataclass(eq=False)
class InLink:
    """A connection another node opened to this one. ``held``: frames received but not yet
    deliverable (their ``after`` entry not yet read from this node's stream), in order."""

    peer: str
    link_id: str
    handled: int = 0
    held: deque[tuple[int, str, str, str, float]] = field(default_factory=deque)
    writer: asyncio.StreamWriter | None = None
    _ack_timer: asyncio.TimerHandle | None = None

    def done(self, seq: int, ack_delay: float) -> None:
        """Frame ``seq`` handled: acknowledged within ``ack_delay`` (with those after it)."""
        self.handled = seq
        if self._ack_timer is None and self.writer is not None and not self.writer.is_closing():
            self._ack_timer = asyncio.get_running_loop().call_later(ack_delay, self._ack)

    def moved(self, topic: str) -> None:
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(f"m {topic}\n".encode())

    def _ack(self) -> None:
        self._ack_timer = None
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(f"a {self.handled}\n".encode())


FrameHandler = Callable[[InLink, int, str, str, str], Awaitable[None]]


class LinkServer:
    """Accepts links from the other nodes and hands each frame to ``on_frame`` in order."""

    def __init__(self, node_id: str, key: bytes, on_frame: FrameHandler) -> None:
        self.node_id = node_id
        self.key = key
        self.on_frame = on_frame
        self.links: set[InLink] = set()
        self.refused = 0  # connections whose key did not match (read by tests and metrics)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int) -> tuple[str, int]:
        self._server = await asyncio.start_server(self._accept, host, port, limit=LINE_LIMIT)
        sockname = self._server.sockets[0].getsockname()
        return str(sockname[0]), int(sockname[1])

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            if link.writer is not None:
                link.writer.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=2)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        link: InLink | None = None
        try:
            nonce = secrets.token_hex(16)
            writer.write(f"hello {nonce} {self.node_id}\n".encode())
            line = await asyncio.wait_for(reader.readline(), HANDSHAKE_SECONDS)
            kind, proof, peer, link_id = line.decode().split()
            expected = mac(self.key, nonce, self.node_id, peer, link_id)
            if kind != "auth" or not hmac.compare_digest(proof, expected):
                self.refused += 1
                log.warning("node link refused: wrong key", extra={"peer": peer[:100]})
                return
            writer.write(b"ok\n")
            link = InLink(peer, link_id, writer=writer)
            self.links.add(link)
            while True:
                line = await reader.readline()
                if not line:
                    return
                kind, _, rest = line.decode().rstrip("\n").partition(" ")
                if kind != "d":
                    continue
                seq, after, topic, text = rest.split(" ", 3)
                await self.on_frame(link, int(seq), after, topic, text)
        except (OSError, ValueError, TimeoutError, asyncio.IncompleteReadError):
            return
        except asyncio.CancelledError:
            return
        finally:
            if link is not None:
                self.links.discard(link)
            writer.close()
            if task is not None:
                self._tasks.discard(task)
