"""``cloudhelp serve`` and ``cloudhelp db upgrade``: run the server, bring its database up to
date."""

from __future__ import annotations

import argparse
import asyncio
import errno
import signal
import socket

from aiohttp import web

from cloudhelp.cli.failures import CommandFailed
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core import logs
from cloudhelp.core.config import Settings
from cloudhelp.core.gcpolicy import CHECK_SECONDS, MIN_INTERVAL_SECONDS, FullPasses, tune_gc
from cloudhelp.store import db


async def cmd_db_upgrade(args: argparse.Namespace) -> int:
    """Apply the migrations and say which revision the database is at."""

    async def work(engine: db.AsyncEngine) -> int:
        revision = await db.current_revision(engine)
        print(f"Database {db.display_url(engine.url)} is at revision {revision}.")
        return 0

    return await with_database(settings_of(args), work)


async def cmd_serve(args: argparse.Namespace) -> int:
    """Run the web server until SIGTERM or SIGINT."""
    settings = settings_of(args)
    return await serve(settings, listen(settings))


def listen(settings: Settings) -> socket.socket:
    """The server's listening socket, bound now: a port in use is one sentence, no traceback."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            settings.host, settings.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandFailed(f"Cannot listen on {settings.host!r}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandFailed(
                f"Port {settings.port} on {settings.host} is already in use (is CloudHelp already "
                "running?); stop that program or pick another port with --port."
            ) from None
        raise CommandFailed(
            f"Cannot listen on {settings.host}:{settings.port}: {exc.strerror or exc}."
        ) from None
    return sock


def url_of(settings: Settings, sock: socket.socket | None = None) -> str:
    """The address a person opens: the bound port, 127.0.0.1 for a wildcard host."""
    port = sock.getsockname()[1] if sock is not None else (settings.port or 8080)
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{port}/"


async def serve(settings: Settings, sock: socket.socket) -> int:
    """Serve the application on ``sock`` until SIGTERM or SIGINT, then close every socket."""
    from cloudhelp.app import create_app
    from cloudhelp.http.state import AppState

    logs.configure(settings.log_level)
    app = create_app(settings)
    # SIGTERM and SIGINT only set an event (aiohttp's own handlers raise out of the event loop,
    # which cancels every WebSocket handler mid-frame: clients saw 1006). The cleanup below then
    # closes each socket with 1001 (going away), as docs/protocol.md promises.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    try:
        await runner.setup()  # opens the database and applies migrations
        await web.SockSite(runner, sock).start()
    except BaseException:
        sock.close()
        await runner.cleanup()
        raise
    print(f"CloudHelp is running: open {url_of(settings, sock)}", flush=True)
    print(f"Database: {db.display_url(settings.effective_database_url)}", flush=True)
    tune_gc()
    state = AppState.of(app)
    longest = settings.gc_full_pass_max_seconds
    state.full_passes = FullPasses(
        quiet=state.callcenter.quiet,
        min_interval=min(MIN_INTERVAL_SECONDS, longest / 2),
        max_interval=longest,
        check_every=min(CHECK_SECONDS, longest / 4),
    )
    state.full_passes.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await state.full_passes.stop()
        await runner.cleanup()
    return 0
