"""Security headers on every response, and the Origin check on state-changing requests.

See docs/security.md ("Headers and origins").
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from yarl import URL

from cloudhelp.http import forwarded
from cloudhelp.http.errors import ApiError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

# Pages the kiosk shows in an iframe of its own page (the correction notice); every other page
# may not be framed at all.
FRAMEABLE_PREFIX = "/notices/"


def content_security_policy(frame_ancestors: str) -> str:
    """The CSP: scripts only from our own files, never inline."""
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            # 'unsafe-inline' for styles only: ECharts writes style="…" attributes into the
            # tooltip HTML it builds, and the pages set style attributes (meter widths, hidden
            # print frames). Styles cannot run code; scripts stay strict.
            "style-src 'self' 'unsafe-inline'",
            # data: for the empty favicon and inline images; blob: for received photos.
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "font-src 'self'",
            # 'self' covers ws:/wss: to this host too (CSP Level 3, Chromium ≥ 82).
            "connect-src 'self'",
            # The kiosk frames /notices/… and prints received files from blob: URLs; the staff
            # console previews received PDFs from blob: URLs.
            "frame-src 'self' blob:",
            "worker-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


PAGE_CSP = content_security_policy("'none'")
NOTICE_CSP = content_security_policy("'self'")
PERMISSIONS_POLICY = "camera=(self), microphone=(self), display-capture=(self), geolocation=()"
HSTS = "max-age=31536000"


def _add_headers(request: web.Request, response: web.StreamResponse) -> None:
    frameable = request.path.startswith(FRAMEABLE_PREFIX)
    headers = response.headers
    headers["Content-Security-Policy"] = NOTICE_CSP if frameable else PAGE_CSP
    headers["X-Frame-Options"] = "SAMEORIGIN" if frameable else "DENY"
    headers["X-Content-Type-Options"] = "nosniff"
    # Same-origin: a page's own forms (退出) carry its Origin; other sites never see a Referer.
    headers["Referrer-Policy"] = "same-origin"
    headers["Permissions-Policy"] = PERMISSIONS_POLICY
    headers[hdrs.SERVER] = "CloudHelp"  # no product versions
    if forwarded.is_secure(request):
        headers["Strict-Transport-Security"] = HSTS


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: runs for every response, also WebSocket upgrades, streamed
    downloads and aiohttp's own errors, which a middleware would miss once prepared."""
    _add_headers(request, response)


def normalized_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in canonical form (lowercase, default port dropped), or None."""
    try:
        url = URL(value.strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.host:
        return None
    return str(url.origin())


def same_host(origin: str, request: web.Request) -> bool:
    """The Origin names the host (and port) the request was sent to.

    The scheme is not compared: behind a TLS-terminating proxy the server sees plain HTTP while
    the browser's Origin says https; the host and port the browser used are what matter.
    """
    url = URL(origin)
    try:
        target = URL(f"{url.scheme}://{request.host}")
    except ValueError:
        return False
    return (url.host, url.port) == ((target.host or "").lower(), target.port)


def origin_check(allowed_origins: Iterable[str]) -> Middleware:
    """A middleware refusing state-changing requests and the WebSocket upgrade from a foreign
    Origin (403 ``bad_origin``). Requests without Origin (CLI, test peers) pass."""
    allowed = {o for o in (normalized_origin(v) for v in allowed_origins) if o is not None}

    @web.middleware
    async def check_origin(request: web.Request, handler: Handler) -> web.StreamResponse:
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and (request.method in STATE_CHANGING_METHODS or upgrade):
            canonical = normalized_origin(origin)
            if canonical is None or not (canonical in allowed or same_host(canonical, request)):
                raise ApiError(
                    403,
                    "bad_origin",
                    "This request came from another site's page and was refused.",
                )
        return await handler(request)

    return check_origin


def setup(app: web.Application, allowed_origins: Iterable[str]) -> None:
    """Wire the Origin check (first middleware) and the headers on every response."""
    app.middlewares.insert(0, origin_check(allowed_origins))
    app.on_response_prepare.append(add_security_headers)
