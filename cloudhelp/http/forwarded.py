"""Who sent a request and over what, when a reverse proxy stands in front of the server.

`X-Forwarded-For` and `X-Forwarded-Proto` are believed only from a peer listed in the setting
``trusted_proxies`` (addresses or networks); from anyone else they are ignored, so a client
cannot make itself look like another address (the sign-in throttle and the audit trail key on
it) or make a plain-HTTP request look like TLS. See docs/security.md ("Behind a proxy").
"""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web

from cloudhelp.core.config import Network, parse_networks
from cloudhelp.domain import audit

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

TRUSTED_PROXIES_KEY = web.AppKey("trusted_proxies", tuple)


def _is_trusted(address: str | None, trusted: tuple[Network, ...]) -> bool:
    if not address or not trusted:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in trusted)


@dataclass(frozen=True)
class Origin:
    """The client as the server should see it: its address and whether it used TLS."""

    remote: str | None
    secure: bool


def origin_of(request: web.BaseRequest, trusted: tuple[Network, ...]) -> Origin:
    """The client's address and scheme: from the socket, or, when the socket's peer is a
    trusted proxy, from the forwarding headers (the right-most address not itself a trusted
    proxy: the left part of X-Forwarded-For is whatever the client wrote)."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    peer_address = peer[0] if isinstance(peer, tuple) and peer else None
    socket_secure = request.transport is not None and (
        request.transport.get_extra_info("sslcontext") is not None
    )
    if not _is_trusted(peer_address, trusted):
        return Origin(peer_address, socket_secure)
    remote = peer_address
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        remote = hop
        if not _is_trusted(hop, trusted):
            break
    proto = request.headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    secure = proto == "https" if proto else socket_secure
    return Origin(remote, secure)


def peer_is_trusted(request: web.BaseRequest, trusted: tuple[Network, ...]) -> bool:
    """Whether the socket's peer is one of the trusted proxies."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    return _is_trusted(peer[0] if isinstance(peer, tuple) and peer else None, trusted)


def is_secure(request: web.Request) -> bool:
    """Whether the client reached us over TLS (directly, or through a trusted proxy)."""
    return origin_of(request, request.app.get(TRUSTED_PROXIES_KEY, ())).secure


@web.middleware
async def apply_forwarded(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Hand the rest of the app a request whose ``remote`` and ``secure`` are the client's."""
    trusted = request.app[TRUSTED_PROXIES_KEY]
    if not trusted:
        return await handler(request)
    origin = origin_of(request, trusted)
    scheme = "https" if origin.secure else "http"
    if origin.remote is None:  # no peer address: the request's own (none) stays
        return await handler(request.clone(scheme=scheme))
    return await handler(request.clone(scheme=scheme, remote=origin.remote))


@web.middleware
async def remember_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Make the request's address (the client's, once apply_forwarded ran) known to audit
    appends made while handling it."""
    with audit.request_address(request.remote or ""):
        return await handler(request)


def setup(app: web.Application, trusted_proxies: Iterable[str]) -> None:
    app[TRUSTED_PROXIES_KEY] = parse_networks(trusted_proxies)
