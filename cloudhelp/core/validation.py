"""The one way a pydantic validation error is put into words, for HTTP answers and the CLI.

``field items.0.name: String should have at most 50 characters`` — where (dotted path, or a
default such as ``body`` for the whole value) and pydantic's own message, without its
``Value error, `` prefix (a validator's message is shown as the validator wrote it).
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails


def describe(error: ErrorDetails, whole: str = "body") -> str:
    """One problem: ``field <where>: <message>``; ``whole`` names a value with no path."""
    where = ".".join(str(part) for part in error["loc"]) or whole
    return f"field {where}: {error['msg'].removeprefix('Value error, ')}"


def summary(exc: ValidationError, whole: str = "body") -> str:
    """The first problem as a sentence, saying how many more there are:
    ``Field age: Input should be a valid integer (and 2 more).``"""
    first = describe(exc.errors()[0], whole)
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"F{first[1:]}{more}."
