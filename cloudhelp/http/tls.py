"""HTTPS served by CloudHelp itself: the TLS context, its reload, and the plain-HTTP redirect.

The certificate and key are loaded into one ``ssl.SSLContext`` for the life of the server.
``reload`` loads them again into that same context (on SIGHUP, after a renewal): connections
already open keep the certificate they were made with, new handshakes get the new one. A
renewal that cannot be loaded (a half-written file, a key that does not match) is refused
before the live context is touched, so the server keeps serving the old certificate.
See docs/deployment.md.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from aiohttp import hdrs, web


class TlsError(Exception):
    """A certificate or key that cannot be used; ``str(exc)`` is one sentence."""


def _load(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    for path in (cert, key):
        try:
            path.open("rb").close()
        except FileNotFoundError:
            raise TlsError(f"The TLS file {path} does not exist.") from None
        except OSError as exc:
            raise TlsError(f"The TLS file {path} cannot be read ({exc.strerror}).") from None
    try:
        context.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
        raise TlsError(
            f"The TLS certificate {cert} and key {key} cannot be used together ({reason})."
        ) from None


def _new_context() -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])  # aiohttp speaks HTTP/1.1
    return context


def server_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context (TLS 1.2 or later) holding ``cert`` (PEM chain) and ``key`` (PEM)."""
    context = _new_context()
    _load(context, cert, key)
    return context


def reload(context: ssl.SSLContext, cert: Path, key: Path) -> None:
    """Load ``cert`` and ``key`` again into the live ``context``; checked on a spare context
    first, so a bad renewal raises TlsError and leaves the context as it was."""
    _load(_new_context(), cert, key)
    _load(context, cert, key)


def redirect_app(https_port: int) -> web.Application:
    """A plain-HTTP application answering every request with 308 to the same host, path and
    query over HTTPS on ``https_port`` (308 keeps the method and body, unlike 301)."""

    async def to_https(request: web.Request) -> web.StreamResponse:
        target = request.url.with_scheme("https").with_port(
            None if https_port == 443 else https_port
        )
        raise web.HTTPPermanentRedirect(target, headers={hdrs.SERVER: "CloudHelp"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", to_https)
    return app
