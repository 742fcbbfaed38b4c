"""The JSON log lines: an event's own fields never overwrite the line's reserved ones."""

from __future__ import annotations

import io
import json
import logging

from cloudhelp.core import logs


def test_event_fields_do_not_clobber_reserved_fields() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonLineFormatter())
    logs.logger.addHandler(handler)
    old_level = logs.logger.level
    logs.logger.setLevel(logging.INFO)
    try:
        logs.log_event("ticket.rated", ticket=7, level=1, ts="y", error="z")
    finally:
        logs.logger.removeHandler(handler)
        logs.logger.setLevel(old_level)
    line = json.loads(stream.getvalue())
    assert line["level"] == "info" and line["event"] == "ticket.rated" and line["ts"] != "y"
    assert "error" not in line
    assert (line["field_level"], line["field_ts"], line["field_error"]) == (1, "y", "z")
    assert line["ticket"] == 7
