"""``cloudhelp serve`` and ``cloudhelp db upgrade``: run the server, bring its database up to
date."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import signal
import socket
import ssl

from aiohttp import web

from cloudhelp.cli.failures import CommandFailed
from cloudhelp.cli.runtime import settings_of, with_database
from cloudhelp.core import gcpolicy, logs
from cloudhelp.core.config import Settings
from cloudhelp.core.gcpolicy import CHECK_SECONDS, MIN_INTERVAL_SECONDS, FullPasses, tune_gc
from cloudhelp.http import tls
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


def listen(settings: Settings, port: int | None = None, flag: str = "--port") -> socket.socket:
    """The server's listening socket (on ``port``, else the setting), bound now: a port in use
    is one sentence naming ``flag``, no traceback."""
    host = settings.host
    port = settings.port if port is None else port
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CommandFailed(f"Cannot listen on {host!r}: {exc.strerror}.") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CommandFailed(
                f"Port {port} on {host} is already in use (is CloudHelp already "
                f"running?); stop that program or pick another port with {flag}."
            ) from None
        raise CommandFailed(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    return sock


def url_of(settings: Settings, sock: socket.socket | None = None) -> str:
    """The address a person opens: the bound port, 127.0.0.1 for a wildcard host."""
    port = sock.getsockname()[1] if sock is not None else (settings.port or 8080)
    host = settings.host if settings.host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    scheme = "https" if settings.tls_cert is not None else "http"
    return f"{scheme}://{host}:{port}/"


async def serve(settings: Settings, sock: socket.socket) -> int:
    """Serve the application on ``sock`` (HTTPS when ``tls_cert`` is set, with the plain-HTTP
    redirect on ``http_redirect_port``) until SIGTERM or SIGINT, then close every socket (with
    ``redis_url``, after draining: clients resume on the other nodes). SIGHUP reloads the TLS
    certificate."""
    from cloudhelp.app import create_app, drain
    from cloudhelp.domain import passwords
    from cloudhelp.http.state import AppState

    logs.configure(settings.log_level)
    app = create_app(settings)
    # SIGTERM and SIGINT only set an event (aiohttp's own handlers raise out of the event loop,
    # which cancels every WebSocket handler mid-frame: clients saw 1006). The cleanup below then
    # closes each socket with 1001 (going away), as docs/protocol.md promises.
    try:
        context = tls_context(settings)
        redirect_sock = (
            listen(settings, settings.http_redirect_port, "--http-redirect-port")
            if settings.http_redirect_port is not None
            else None
        )
    except BaseException:
        sock.close()
        raise
    # handler_cancellation stays False (aiohttp's default): the hub counts a client's message
    # received before handling it, so a dropped connection must not cut the handling short.
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    redirect = (
        web.AppRunner(tls.redirect_app(sock.getsockname()[1]), access_log=None)
        if redirect_sock is not None
        else None
    )
    try:
        await runner.setup()  # opens the database and applies migrations
        await web.SockSite(runner, sock, ssl_context=context).start()
        if redirect is not None and redirect_sock is not None:
            await redirect.setup()
            await web.SockSite(redirect, redirect_sock).start()
    except BaseException:
        sock.close()
        if redirect_sock is not None:
            redirect_sock.close()
        if redirect is not None:
            await redirect.cleanup()
        await runner.cleanup()
        raise
    print(f"CloudHelp is running: open {url_of(settings, sock)}", flush=True)
    print(f"Database: {db.display_url(settings.effective_database_url)}", flush=True)
    if passwords.INSECURE_TEST_HASHES:  # new passwords hashed so are weak for good
        logs.log_event(
            "passwords.insecure_test_hashes", severity=logging.WARNING,
            setting="CLOUDHELP_INSECURE_TEST_PASSWORD_HASHES", action="unset it",
        )  # fmt: skip
    if redirect_sock is not None:
        port = redirect_sock.getsockname()[1]
        print(f"Plain HTTP on port {port} redirects to HTTPS.", flush=True)
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
    young_passes = gcpolicy.young_passes()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.add_signal_handler(signal.SIGHUP, reload_tls, settings, context)
    try:
        await stop.wait()
        if settings.redis_url is not None:  # other nodes take this one's clients over
            await drain(app, settings.drain_seconds)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.remove_signal_handler(signum)
        await state.full_passes.stop()
        if young_passes is not None:
            await young_passes.stop()
        if redirect is not None:
            await redirect.cleanup()
        await runner.cleanup()
    return 0


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The TLS context when ``tls_cert`` and ``tls_key`` are set; a bad file is one sentence."""
    if settings.tls_cert is None or settings.tls_key is None:
        return None
    try:
        return tls.server_context(settings.tls_cert, settings.tls_key)
    except tls.TlsError as exc:
        raise CommandFailed(str(exc)) from None


def reload_tls(settings: Settings, context: ssl.SSLContext | None) -> None:
    """SIGHUP: load the certificate and key again (new handshakes use them). Without TLS, or
    when the new files cannot be used, the server goes on as it was and the log says why."""
    if context is None or settings.tls_cert is None or settings.tls_key is None:
        logs.log_event("tls.reload_skipped", reason="tls_off")
        return
    try:
        tls.reload(context, settings.tls_cert, settings.tls_key)
    except tls.TlsError as exc:
        logs.log_event("tls.reload_failed", severity=logging.ERROR, reason=str(exc))
        return
    logs.log_event("tls.reloaded", cert=str(settings.tls_cert))
