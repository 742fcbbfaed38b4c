"""HTTP errors as JSON bodies a person can read: {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from cloudhelp.logs import log_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(web.HTTPException):
    """An HTTP error with a stable code and a plain message, rendered as JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        self.status_code = status
        super().__init__(
            text=json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False),
            content_type="application/json",
        )
        self.code = code


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)


def bad_request(message: str, code: str = "bad_request") -> ApiError:
    return ApiError(400, code, message)


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, every error (including aiohttp's own 404/405 and crashes) is JSON."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except ApiError:
        raise
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        raise ApiError(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason) from exc
    except Exception:
        log_event("http.unhandled_error", severity=logging.ERROR, path=request.path, exc_info=True)
        raise ApiError(
            500, "internal_error", "The server hit an unexpected error; please try again."
        ) from None
