"""The wire: which frames a connection may send, and the error frames it is answered with."""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import WSMessage, WSMsgType, web
from pydantic import ValidationError

from signaling import safejson
from signaling.errors import CLOSE_FLOOD
from signaling.ratelimit import TokenBucket
from signaling.session import dumps

log = logging.getLogger("signaling")


class FrameGate:
    """One connection's door: frames over its rate are dropped (the connection is closed after
    ``flood_drops`` of them); the others must be JSON text objects with a ``type`` within
    ``max_bytes``."""

    __slots__ = ("bucket", "drops", "flood_drops", "max_bytes")

    def __init__(self, rate: float, burst: float, flood_drops: int, max_bytes: int) -> None:
        self.bucket = TokenBucket(rate, burst)
        self.drops = 0
        self.flood_drops = flood_drops
        self.max_bytes = max_bytes

    async def admit(self, ws: web.WebSocketResponse, msg: WSMessage) -> dict[str, Any] | None:
        """The frame as a JSON object with a string ``type``, or None when it was refused:
        dropped over the rate (``ws`` closed after too many), or answered with an error frame
        (binary, too large, not JSON, no ``type``)."""
        # Every frame counts against the rate, binary ones too (each is answered).
        if not self.bucket.take():
            self.drops += 1
            if self.drops >= self.flood_drops:
                log.warning("connection closed for flooding", extra={"drops": self.drops})
                await ws.close(code=CLOSE_FLOOD, message=b"too many messages")
            elif self.drops == 1 or self.drops % 20 == 0:
                await send_error(ws, "rate_limited", "Too many messages; slow down.")
            return None
        if msg.type != WSMsgType.TEXT:
            await send_error(ws, "bad_message", "Send JSON text frames, not binary.")
            return None
        if len(msg.data) * 4 > self.max_bytes and len(msg.data.encode()) > self.max_bytes:
            await send_error(ws, "too_large", f"A message may be at most {self.max_bytes} bytes.")
            return None
        try:
            raw = safejson.loads(msg.data)
        except safejson.JSONRefused as exc:
            await send_error(ws, "bad_message", str(exc))
            return None
        except ValueError:
            await send_error(ws, "bad_message", "The message is not valid JSON.")
            return None
        if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
            await send_error(ws, "bad_message", "A message is a JSON object with a 'type'.")
            return None
        return raw


def describe(exc: ValidationError) -> str:
    """A refused message's first problem as a sentence: ``Field sdp: Field required.``"""
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "message"
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"Field {where}: {first['msg']}{more}."


async def send_error(
    ws: web.WebSocketResponse, code: str, message: str, ref: str | None = None
) -> None:
    """An ``error`` frame (``ref``: the type of the message refused), unless ``ws`` closed."""
    if ws.closed:
        return
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        frame["ref"] = ref
    try:
        await ws.send_str(dumps(frame))
    except (ConnectionError, RuntimeError):
        pass
