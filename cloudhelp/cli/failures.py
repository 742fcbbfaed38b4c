"""How a failed command is told to the person: one sentence on stderr and an exit status.

Light on purpose (``main`` imports it before any command runs): the error types it recognises
are imported when a command has failed, and by then the command has imported them already.
"""

from __future__ import annotations

from dataclasses import dataclass


class CommandFailed(Exception):
    """A command could not do its work; ``str(exc)`` is one sentence for the person, and
    ``details`` (one problem a line, e.g. the rejected records of a file) follow it."""

    def __init__(self, message: str, details: list[str] | None = None) -> None:
        super().__init__(message)
        self.details = details or []


@dataclass(frozen=True)
class Told:
    """What ``cloudhelp`` prints for a failure (``message`` after ``cloudhelp: ``, then each
    detail on its own line) and its exit status."""

    status: int
    message: str
    details: tuple[str, ...] = ()


def rejected(what: str, problems: list[str]) -> CommandFailed:
    """The refusal of a whole input (a file, a staff record), each problem on its own line."""
    count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
    return CommandFailed(f"{what} was rejected and nothing was changed ({count}):", problems)


def explain(exc: Exception) -> Told | None:
    """The person's account of ``exc``, or None for a fault of the program (the traceback
    shows): a refusal (CommandFailed, a domain CodedError, a database another server uses)
    → 1, database or Redis unreachable → 2."""
    if isinstance(exc, CommandFailed):
        return Told(1, str(exc), tuple(exc.details))
    from cloudhelp.core.errors import CodedError
    from cloudhelp.store.db import DatabaseUnavailable, MigrationFailed
    from cloudhelp.store.serverlock import DatabaseInUse
    from signaling.redis_broker import BrokerUnavailable

    if isinstance(exc, DatabaseUnavailable | BrokerUnavailable):
        return Told(2, str(exc))
    if isinstance(exc, MigrationFailed | DatabaseInUse):
        return Told(1, str(exc))
    if isinstance(exc, CodedError):
        return Told(1, exc.message)
    return None
