"""Errors with a stable code and a message for a person.

Every refusal the application raises is a ``CodedError``: the domain's (``CaseError``,
``AccountError`` …) carry a code and an English message; their HTTP form is
``cloudhelp.http.errors.ApiError``. Pages and kiosks show the catalog text ``error.<code>``
(web/i18n), never the message. No web framework here: the command line imports this module.
"""

from __future__ import annotations

from typing import TypeVar

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
