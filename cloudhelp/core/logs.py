"""Structured logging: one JSON object per line per event. Never log personal data."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

logger = logging.getLogger("cloudhelp")


RESERVED_FIELDS = ("ts", "level", "event", "error")
# What every LogRecord has; anything else on a record came from the caller's ``extra=``.
RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "fields",
}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields of a record (the hub's ``session``, ``room`` …)."""
    return {
        name: value
        for name, value in vars(record).items()
        if name not in RECORD_ATTRIBUTES and not name.startswith("_")
    }


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record, with the event's fields: ``log_event``'s keyword arguments
    and any ``extra=`` a library or the signaling hub logged with. A field named like a reserved
    one (a rating's ``level``) is written as ``field_<name>``: it never overwrites the line's."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        for name, value in (_extra(record) | getattr(record, "fields", {})).items():
            entry[f"field_{name}" if name in RESERVED_FIELDS else name] = value
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats every request; our own events are enough.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # aioice logs every ICE candidate pair it checks (about nine lines per pre-call network
    # check's echo peer); a failed check is CloudHelp's own event.
    logging.getLogger("aioice").setLevel(logging.WARNING)


def log_event(
    event: str, *, severity: int = logging.INFO, exc_info: bool = False, **fields: Any
) -> None:
    """Log one event with its fields (codes and ids only: no names, phones or ID numbers)."""
    logger.log(severity, event, exc_info=exc_info, extra={"fields": fields})
