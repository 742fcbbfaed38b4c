"""Errors with a stable code and a message for a person, and their HTTP form.

Every refusal the application raises is a ``CodedError``: the domain's (``CaseError``,
``AccountError`` …) carry a code and an English message; ``ApiError`` adds an HTTP status and is
rendered as a JSON body ``{"error": {"code", "message"}}``. Pages and kiosks show the catalog
text ``error.<code>`` (web/i18n), never the message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import web

from cloudhelp.core.logs import log_event

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")


class CodedError(Exception):
    """A refused operation: ``code`` is stable (a catalog key ``error.<code>``), ``message``
    says in plain English what was wrong."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MissingRow(RuntimeError):
    """A row (or a connection, a channel) the code relies on is not there: a bug or a
    concurrent delete, never a user's mistake (a request fails as an internal error)."""


def must_exist(value: T | None, what: str) -> T:
    """``value``, or MissingRow naming ``what`` when it is None (instead of an ``assert``)."""
    if value is None:
        raise MissingRow(f"{what} is missing")
    return value


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
