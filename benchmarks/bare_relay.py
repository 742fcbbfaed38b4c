"""The baseline: a bare aiohttp WebSocket relay of the same shape as a CloudHelp call.

``python -m benchmarks.bare_relay PORT`` serves ``/ws?room=R``; each text message is forwarded
to the other members of the room. No authentication, validation, sessions or database; the
same garbage-collector settings as ``cloudhelp serve`` (``tune_gc``, young and middle passes
on a beat by ``YoungPasses``, and full passes by ``FullPasses`` when no room has two members).
Prints one line once it listens.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import AsyncIterator

from aiohttp import WSMsgType, web

from cloudhelp.core.gcpolicy import FullPasses, tune_gc, young_passes

rooms: dict[str, set[web.WebSocketResponse]] = defaultdict(set)


async def relay(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=5.0)
    await ws.prepare(request)
    room = rooms[request.query["room"]]
    room.add(ws)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.TEXT:
                for other in room:
                    if other is not ws:
                        await other.send_str(msg.data)
    finally:
        room.discard(ws)
    return ws


async def collect_full_passes(app: web.Application) -> AsyncIterator[None]:
    """As ``cloudhelp serve`` does: quiet means no call (a room of two) in progress."""
    passes = FullPasses(quiet=lambda: not any(len(room) > 1 for room in rooms.values()))
    passes.start()
    young = young_passes()
    yield
    await passes.stop()
    if young is not None:
        await young.stop()


def main() -> None:
    app = web.Application()
    app.router.add_get("/ws", relay)
    app.cleanup_ctx.append(collect_full_passes)
    tune_gc()
    port = int(sys.argv[1])
    web.run_app(app, host="127.0.0.1", port=port, print=lambda *_: print("listening", flush=True))


if __name__ == "__main__":
    main()
