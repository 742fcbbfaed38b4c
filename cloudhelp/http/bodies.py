"""Reading what a request carries: its JSON body (validated by a pydantic model), ids in its
path and numbers, flags and dates in its query. Anything out of bounds is a 400 (or a 404 for a
path id that is no number) here, where it is read, never an overflow further on."""

from __future__ import annotations

from datetime import date
from typing import TypeVar, overload

from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from cloudhelp.core import validation
from cloudhelp.core.inputs import EARLIEST_DATE, LATEST_DATE, ROW_ID_MAX
from cloudhelp.http.errors import Handler, bad_request, not_found
from signaling import safejson


class Body(BaseModel):
    """A request body: unknown fields refused, text stripped of surrounding white space."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


BodyT = TypeVar("BodyT", bound=BaseModel)


async def parse_body(request: web.Request, model: type[BodyT]) -> BodyT:
    """The JSON body validated by ``model``; 400 with the first problem otherwise."""
    try:
        raw = safejson.loads(await request.read())
    except safejson.JSONRefused as exc:
        raise bad_request(str(exc)) from None
    except ValueError:
        raise bad_request("The request body must be JSON.") from None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise bad_request(validation.summary(exc)) from None


@web.middleware
async def refuse_nul_in_address(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for a path or query holding the NUL character (``%00``): PostgreSQL cannot store or
    compare it in text, so every lookup by a segment or parameter would fail there (as JSON
    bodies, ``safejson`` refuses it)."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.query.items()):
        raise bad_request("The address may not contain the NUL character (%00).")
    return await handler(request)


def _row_id(raw: str) -> int | None:
    """``raw`` as a row id (ASCII digits, 1 to ROW_ID_MAX), or None."""
    if not raw.isascii() or not raw.isdigit() or len(raw) > len(str(ROW_ID_MAX)):
        return None
    return int(raw) if 1 <= int(raw) <= ROW_ID_MAX else None


def path_id(request: web.Request, name: str, what: str) -> int:
    """The row id in URL segment ``name``: 404 if it is no number, 400 if out of range."""
    raw = request.match_info[name]
    if not raw.isascii() or not raw.isdigit():
        raise not_found(f"There is no such {what}.")
    row_id = _row_id(raw)
    if row_id is None:
        raise bad_request(f"'{name}' in the address must be a number from 1 to {ROW_ID_MAX}.")
    return row_id


def query_id(request: web.Request, name: str, what: str) -> int | None:
    """The row id in query parameter ``name`` (None when absent or empty); 400 otherwise."""
    raw = request.query.get(name)
    if not raw:
        return None
    row_id = _row_id(raw)
    if row_id is None:
        raise bad_request(f"Parameter '{name}' must be a {what} id.")
    return row_id


@overload
def query_int(request: web.Request, name: str, low: int, high: int, default: int) -> int: ...
@overload
def query_int(
    request: web.Request, name: str, low: int, high: int, default: None = None
) -> int | None: ...
def query_int(
    request: web.Request, name: str, low: int, high: int, default: int | None = None
) -> int | None:
    """Whole number ``name`` (ASCII digits) from ``low`` to ``high``; ``default`` when absent
    or empty; 400 otherwise."""
    raw = request.query.get(name)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(high))) or not (
        low <= int(raw) <= high
    ):
        raise bad_request(f"Parameter '{name}' must be a whole number from {low} to {high}.")
    return int(raw)


def query_bool(request: web.Request, name: str) -> bool | None:
    """Flag ``name`` (1/true/yes, 0/false/no; None when absent or empty); 400 otherwise."""
    raw = request.query.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("1", "true", "yes"):
        return True
    if raw.lower() in ("0", "false", "no"):
        return False
    raise bad_request(f"Parameter '{name}' must be true or false, not {raw!r}.")


def bounded_date(raw: str, name: str) -> date:
    """``raw`` (like 2026-11-27) as a date between EARLIEST_DATE and LATEST_DATE, else 400."""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        raise bad_request(f"Parameter '{name}' must be a date like 2026-11-27.") from None
    if not EARLIEST_DATE <= value <= LATEST_DATE:
        raise bad_request(
            f"Parameter '{name}' must be a date from {EARLIEST_DATE} to {LATEST_DATE}."
        )
    return value


def query_date(request: web.Request, name: str) -> date | None:
    """Date ``name`` in the query (None when absent or empty); 400 if it is no bounded date."""
    raw = request.query.get(name)
    return bounded_date(raw, name) if raw else None
