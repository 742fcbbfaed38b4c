"""The JSON log lines: an event's own fields never overwrite the line's reserved ones, and
fields logged with ``extra=`` (the signaling hub's session and room) are kept."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from cloudhelp.core import logs
from tests.callkit import running_server
from tests.test_call_core import answer, take_ticket


@contextmanager
def json_lines(logger: logging.Logger, level: int = logging.INFO) -> Iterator[io.StringIO]:
    """What ``logger`` writes while the block runs, as the server's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonLineFormatter())
    logger.addHandler(handler)
    old_level = logger.level
    logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


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


def test_extra_fields_are_written_and_never_clobber_reserved_ones() -> None:
    with json_lines(logging.getLogger("signaling")) as stream:
        logging.getLogger("signaling").warning(
            "relay refused", extra={"session": "s-1", "room": "r-9", "level": 3, "drops": 20}
        )
    line = json.loads(stream.getvalue())
    assert line["event"] == "relay refused" and line["level"] == "warning"
    assert (line["session"], line["room"], line["drops"], line["field_level"]) == (
        "s-1", "r-9", 20, 3,
    )  # fmt: skip
    assert "lineno" not in line and "msg" not in line  # the record's own attributes stay out


async def test_the_hubs_relay_warning_names_the_session_and_room(sqlite_demo_url: str) -> None:
    """A kiosk outside the call that sends to a staff member in it: the warning the hub logs
    says which session tried and which room it was in."""
    async with running_server(sqlite_demo_url) as server:
        staff = await server.staff("zhaogang")
        kiosk = await server.kiosk()
        await take_ticket(kiosk, "NYNC-002")
        await answer(staff)
        await kiosk.expect("joined")
        with json_lines(logging.getLogger("signaling")) as stream:
            await kiosk.send({"type": "app", "data": "x", "to": "not-a-member"})
            assert (await kiosk.expect("error"))["code"] == "not_in_call"
    (line,) = [json.loads(text) for text in stream.getvalue().splitlines()]
    assert line["event"] == "relay refused: target outside the sender's call"
    assert line["session"] == kiosk.session_id and line["room"] and line["type"] == "app"
