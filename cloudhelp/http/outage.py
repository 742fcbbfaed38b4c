"""HTTP 503 while the database is out, for every route, in one place.

A request whose handler fails because the database cannot be reached (cloudhelp.store.outage)
is answered 503 with ``Retry-After``: under /api/ the JSON error ``service_unavailable``, for a
page the error page with the catalog text ``error.service_unavailable`` (it reloads itself after
the same delay). The handler's transaction was rolled back by its session.
"""

from __future__ import annotations

import logging

from aiohttp import ClientConnectionResetError, web

from cloudhelp.core.logs import log_event
from cloudhelp.http import pages
from cloudhelp.http.errors import ApiError, Handler
from cloudhelp.store.outage import RETRY_AFTER_SECONDS, is_unavailable

MESSAGE = "The service is briefly unavailable (its database cannot be reached); please retry."


@web.middleware
async def database_outage(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer 503 (JSON under /api/, the error page elsewhere) instead of an internal error
    when the database is out; any other failure of a page is the error page too (500, in the
    reader's language), never aiohttp's bare English one (under /api/, json_errors answers)."""
    try:
        return await handler(request)
    except (web.HTTPException, ClientConnectionResetError):
        raise  # a client that went away: nobody to answer, no error page to render
    except Exception as exc:
        if not is_unavailable(exc):
            if request.path.startswith("/api/"):
                raise
            log_event(
                "http.unhandled_error", severity=logging.ERROR, path=request.path, exc_info=True
            )
            return pages.render(
                request, "error.html", status=500, message_key="error.internal_error"
            )
        log_event(
            "http.database_unavailable",
            severity=logging.WARNING,
            path=request.path,
            error=type(exc).__name__,
        )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if request.path.startswith("/api/"):
        raise ApiError(503, "service_unavailable", MESSAGE, headers=headers)
    response = pages.render(
        request,
        "error.html",
        status=503,
        message_key="error.service_unavailable",
        refresh_seconds=RETRY_AFTER_SECONDS,
    )
    response.headers.update(headers)
    return response
