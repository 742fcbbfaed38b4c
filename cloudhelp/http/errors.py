"""The HTTP form of a refusal: ``ApiError``, a ``CodedError`` with a status, rendered as a JSON
body ``{"error": {"code", "message"}}``; and the middleware that makes every error under /api/
such a body."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cloudhelp.core.errors import CodedError
from cloudhelp.core.logs import log_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(web.HTTPException, CodedError):
    """A CodedError with an HTTP status, rendered as JSON.

    Pages show the catalog text ``error.<code>`` (web/i18n), never ``message``; ``details``
    (numbers such as ``minutes``) go into the body beside them to fill the text's placeholders.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
        **details: Any,
    ) -> None:
        self.status_code = status
        body = {"error": {"code": code, "message": message, **details}}
        super().__init__(
            text=json.dumps(body, ensure_ascii=False),
            content_type="application/json",
            headers=headers,
        )
        self.code = code
        self.message = message

    @classmethod
    def of(cls, error: CodedError, status: int = 400) -> ApiError:
        """The HTTP form of a domain refusal: same code and message, with ``status``."""
        return cls(status, error.code, error.message)


# aiohttp's own errors (unknown path, wrong method, body too large …) get one of these codes.
HTTP_STATUS_CODES = {
    401: "not_signed_in",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


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
        fallback = "bad_request" if exc.status < 500 else "internal_error"
        raise ApiError(exc.status, HTTP_STATUS_CODES.get(exc.status, fallback), exc.reason) from exc
    except Exception:
        log_event("http.unhandled_error", severity=logging.ERROR, path=request.path, exc_info=True)
        raise ApiError(
            500, "internal_error", "The server hit an unexpected error; please try again."
        ) from None
